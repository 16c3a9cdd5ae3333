#!/usr/bin/env bash
# Generate the interface packages in msgs/ (ackermann_msgs, tf2_msgs) into a virtual environment with the
# PyPI ROS 2 wheels' own rosidl toolchain. Usage: tools/build_msgs.sh VENV
set -euo pipefail
venv=$(cd "$1" && pwd)
py="$venv/bin/python"
root=$(cd "$(dirname "$0")/.." && pwd)

# The wheels' CMake exports name the build machine's interpreter paths; point them at ours.
inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
want_inc=/opt/python/cp311-cp311/include/python3.11
want_np=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
link() {  # link TARGET NAME: create or repair the symlink NAME -> TARGET
  if [ "$(readlink "$2" 2>/dev/null)" != "$1" ]; then
    mkdir -p "$(dirname "$2")" && ln -sfn "$1" "$2"
  fi
}
link "$inc" "$want_inc"
link "$npinc" "$want_np"

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
for pkg in ackermann_msgs tf2_msgs; do
  echo "building $pkg"
  AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" \
    cmake -S "$root/msgs/$pkg" -B "$build/$pkg" -DCMAKE_BUILD_TYPE=Release \
      -DPython3_EXECUTABLE="$py" -DCMAKE_INSTALL_PREFIX="$venv" -DBUILD_TESTING=OFF >"$build/$pkg.log" 2>&1 \
    && PATH="$venv/bin:$PATH" cmake --build "$build/$pkg" -j "$(nproc)" >>"$build/$pkg.log" 2>&1 \
    && cmake --install "$build/$pkg" >>"$build/$pkg.log" 2>&1 \
    || { cat "$build/$pkg.log"; echo "error: building $pkg failed (log above)" >&2; exit 1; }
done
"$py" -c 'from ackermann_msgs.msg import AckermannDriveStamped; from tf2_msgs.msg import TFMessage; print("ackermann_msgs and tf2_msgs import")'
