"""Nothing half-written ever looks valid: ``atomic_directory`` and the commands that write through it, up to a
real SIGKILL of ``uni-encoder synth`` in the middle of replacing a finished data set."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uni_encoder_core import atomic_io
from uni_encoder_core.atomic_io import PARTIAL, atomic_directory
from uni_encoder_core.cli import main
from uni_encoder_core.errors import OutputExistsError

ROOT = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (byte-identical trees give equal snapshots)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def fill(directory: Path, **files: str) -> None:
    for name, text in files.items():
        (directory / name).write_text(text)


def test_new_directory_appears_whole_and_leaves_nothing_beside_it(tmp_path):
    out = tmp_path / "run"
    with atomic_directory(out) as staged:
        assert staged.name == "run" and staged.is_dir() and not out.exists()
        fill(staged, a="1", b="2")
        assert not out.exists()  # still hidden while being written
    assert (out / "a").read_text() == "1" and sorted(p.name for p in out.iterdir()) == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_non_empty_directory_is_refused_unless_overwrite_and_then_replaced_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    fill(out, old="old", keep="old")
    with pytest.raises(OutputExistsError, match="run: output directory is not empty; .* --overwrite"):
        with atomic_directory(out):
            pytest.fail("the body must not run")
    with atomic_directory(out, overwrite=True) as staged:
        fill(staged, new="new")
    assert sorted(p.name for p in out.iterdir()) == ["new"]  # no mix of the two runs
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as staged:  # an empty directory needs no overwrite
        fill(staged, x="x")
    assert (tmp_path / "empty" / "x").read_text() == "x"
    (tmp_path / "file").write_text("f")
    with pytest.raises(OutputExistsError, match="exists and is not a directory"):
        with atomic_directory(tmp_path / "file", overwrite=True):
            pass


def test_failure_inside_leaves_the_old_directory_byte_identical(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    fill(out, a="old a", b="old b")
    before = snapshot(out)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_directory(out, overwrite=True) as staged:
            fill(staged, a="new a")
            raise RuntimeError("disk on fire")
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_two_rename_fallback_where_no_atomic_exchange_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_io, "_exchange", lambda a, b: False)  # e.g. macOS or a file system without it
    out = tmp_path / "run"
    out.mkdir()
    fill(out, old="old")
    with atomic_directory(out, overwrite=True) as staged:
        fill(staged, new="new")
    assert sorted(p.name for p in out.iterdir()) == ["new"] and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_writer_that_creates_the_directory_itself(tmp_path):
    out = tmp_path / "bag"
    with atomic_directory(out, create=False) as staged:
        assert not staged.exists()
        staged.mkdir()
        fill(staged, **{"bag.mcap": "m"})
    assert (out / "bag.mcap").read_text() == "m"
    with pytest.raises(FileNotFoundError, match="never created"):
        with atomic_directory(tmp_path / "never", create=False):
            pass
    assert not (tmp_path / "never").exists()


def test_staging_areas_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".run{PARTIAL}{int(dead.stdout)}-abc" / "run"
    live = tmp_path / f".run{PARTIAL}{os.getppid()}-def"
    other = tmp_path / f".runner{PARTIAL}{int(dead.stdout)}-abc"
    for d in (stale, live, other):
        d.mkdir(parents=True)
    with atomic_directory(tmp_path / "run") as staged:
        fill(staged, a="a")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", live.name, other.name])


def synth_args(out: Path, frames: int, *extra: str) -> list[str]:
    return ["synth", "--out", str(out), "--frames", str(frames), "--height", "96", "--width", "256", *extra]


def test_synth_refuses_a_finished_run_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(synth_args(out, 2, "--seed", "1")) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(synth_args(out, 3)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"uni-encoder synth: {out}: output directory is not empty; choose a new or empty directory" in err
    assert snapshot(out) == before
    assert main(synth_args(out, 3, "--overwrite")) == 0
    assert json.loads((out / "meta.json").read_text())["frames"] == [f"frame_{i:06d}.npz" for i in range(3)]
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "frame_000000.npz", "frame_000001.npz",
                                                     "frame_000002.npz", "meta.json"]


def test_sigkill_while_replacing_a_finished_run_leaves_it_byte_identical(tmp_path):
    out, bag = tmp_path / "data", tmp_path / "drive.mcap"
    assert main(synth_args(out, 4, "--seed", "2")) == 0
    before = snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "uni_encoder_core.cli", *synth_args(out, 900, "--overwrite", "--bag", str(bag))]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started, written = time.monotonic(), []
    try:
        while time.monotonic() - started < 120 and proc.poll() is None:
            written = list(tmp_path.glob(f".data{PARTIAL}*/data/frame_*.npz"))
            if len(written) >= 3 and time.monotonic() - started >= 2.0:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "synth finished before it could be killed; render more frames"
    assert len(written) >= 3  # it was killed mid-run, with new frames on disk
    assert snapshot(out) == before  # the old data set, byte for byte, and nothing of the new run
    assert not (tmp_path / "drive").exists()  # the bag appears complete or not at all
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "data")
    assert leftovers and all(name.startswith((f".data{PARTIAL}", f".drive{PARTIAL}")) for name in leftovers)
    assert main(synth_args(out, 2, "--overwrite")) == 0  # the next run clears the dead run's staging area
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", *[n for n in leftovers if "drive" in n]])
