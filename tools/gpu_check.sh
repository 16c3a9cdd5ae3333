#!/usr/bin/env bash
# GPU check of the per-frame path (NVIDIA GPU, about 3-5 minutes): the captured CUDA graph gives the eager outputs,
# then `uni-encoder bench --device cuda` measures the pipeline (eager fp32/fp16, CUDA graph fp32/fp16), the
# streaming paths, the steering ring and the node overhead at 192x512 with the Swin-T model, for panoptic only,
# no segmentation and all three tasks. Prints the tables; results in results/gpu_check/ (or $OUT).
#
#   tools/gpu_check.sh                 # uses .venv (made by `make setup` when missing)
#   PYTHON=/path/to/python tools/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-75}" PYTHONPATH="$PWD"
OUT="${OUT:-results/gpu_check}"
FRAMES="${FRAMES:-60}"
if [[ -z "${PYTHON:-}" ]]; then
  [[ -x .venv/bin/python ]] || make setup
  PYTHON=.venv/bin/python
fi
"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: CUDA is not available to this Python (torch %s)" % torch.__version__)
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
mkdir -p "$OUT"

echo "== 1. the captured CUDA graph gives the eager outputs (Swin-T, 192x512, all three tasks)"
"$PYTHON" - <<'PY'
import logging, time, numpy as np, torch
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.inference.frame_pass import GraphPass
from uni_encoder_core.inference.pipeline import CameraFrame, PerceptionPipeline
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from uni_encoder_core.models.unified import UniEncoder
torch.manual_seed(0)
model = UniEncoder(load_config("config/model/swin_t.yaml", ModelConfig)).eval()
tasks = ["panoptic", "semantic", "instance"]
rng = np.random.default_rng(0)
K = np.array([[300.0, 0, 256], [0, 300.0, 96], [0, 0, 1]])
frames = [CameraFrame(rng.integers(0, 256, (192, 512, 3), dtype=np.uint8), 0.1 * i, K) for i in range(18)]
eager = PerceptionPipeline(PipelineConfig(device="cuda", segmentation_tasks=tasks), model=model)
ref = [eager.process(f) for f in frames]
graph = PerceptionPipeline(PipelineConfig(device="cuda", segmentation_tasks=tasks, cuda_graphs=True), model=model)
assert isinstance(graph.runner, GraphPass), f"capture fell back to {type(graph.runner).__name__} (see the warning)"
got = [graph.process(f) for f in frames]
worst = {}
for a, b in zip(got, ref):
    worst["depth"] = max(worst.get("depth", 0), float(np.nanmax(np.abs(a.depth - b.depth))))
    if b.relative_pose is not None:
        worst["pose"] = max(worst.get("pose", 0), float(np.abs(a.relative_pose - b.relative_pose).max()))
        worst["flow"] = max(worst.get("flow", 0), float(np.nanmax(np.abs(a.scene_flow - b.scene_flow))))
    for t in tasks:
        worst[t] = max(worst.get(t, 0), float(np.mean(getattr(a, t) != getattr(b, t))))
    if b.curvature is not None:
        worst["curvature"] = max(worst.get("curvature", 0), abs(a.curvature - b.curvature))
print("max |graph - eager| (label maps: fraction of pixels that differ):", {k: f"{v:.2e}" for k, v in worst.items()})
assert worst["depth"] < 1e-3 and worst["panoptic"] < 1e-3 and worst["curvature"] < 1e-4
for precision in ("fp16", "bf16"):
    half = PerceptionPipeline(PipelineConfig(device="cuda", segmentation_tasks=["panoptic"], cuda_graphs=True,
                                             precision=precision), model=UniEncoder(model.cfg).eval())
    assert isinstance(half.runner, GraphPass), f"{precision} capture fell back"
    out = [half.process(f) for f in frames][-1]
    assert np.isfinite(out.depth).all() and out.curvature is not None
    t0 = time.perf_counter(); [half.process(f) for f in frames]; torch.cuda.synchronize()
    print(f"{precision} CUDA graph: {1e3 * (time.perf_counter() - t0) / len(frames):.1f} ms/frame (quick look)")
print("OK: CUDA graph outputs equal eager")
PY

run_bench() {  # name, tasks, sections
  "$PYTHON" -m uni_encoder_core.cli bench --device cuda --model config/model/swin_t.yaml --height 192 --width 512 \
    --frames "$FRAMES" --warmup 10 --tasks "$2" --only "$3" --out "$OUT/$1" --overwrite > "$OUT/$1.log" 2>&1 \
    || { tail -30 "$OUT/$1.log"; exit 1; }
  echo; echo "== $1 (segmentation: ${2:-none})"; cat "$OUT/$1/bench.md"
}
echo "== 2. measurements"
run_bench panoptic panoptic execution,streaming,steering,node
run_bench no_segmentation "" execution
run_bench three_tasks panoptic,semantic,instance execution
echo; echo "Results: $OUT/*/bench.json (ratios at the top level), tables: $OUT/*/bench.md"
