"""``uni-encoder train`` as a user runs it: bad input gives one clear line and exit 2, a 2-process torchrun (gloo)
run ends with identical weights on both ranks and one set of checkpoints, SIGINT and SIGTERM leave a valid last
checkpoint."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import yaml
from train_helpers import ROOT, small_stage

from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config, save_config
from uni_encoder_core.models.checkpoint import read_checkpoint, save_checkpoint
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train import checkpoints as ckpt

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def recipe(tmp_path, name="student_stage1", **overrides):
    stage = small_stage(name, tmp_path / "run", **overrides)
    path = tmp_path / f"{name}.yaml"
    save_config(stage, path)
    return path, stage


def train(capsys, *args):
    code = main(["train", "--device", "cpu", "--no-progress", *map(str, args)])
    return code, capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def tiny():
    return load_config(ROOT / "config" / "model" / "tiny.yaml", ModelConfig)


def test_bad_init_checkpoints_give_one_clear_line(tmp_path, capsys, tiny):
    path, _ = recipe(tmp_path)
    code, err = train(capsys, "--config", path, "--init", tmp_path / "none.pt")
    assert code == 2 and err.startswith(f"uni-encoder train: {tmp_path / 'none.pt'}: checkpoint file not found")
    good = tmp_path / "good.pt"
    save_checkpoint(UniEncoder(tiny), good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:5000])
    code, err = train(capsys, "--config", path, "--init", tmp_path / "cut.pt")
    assert code == 2 and "cut.pt: not a readable checkpoint (truncated or corrupt?)" in err and "\n" not in err
    save_checkpoint(Teacher(tiny), tmp_path / "teacher.pt")
    code, err = train(capsys, "--config", path, "--init", tmp_path / "teacher.pt")
    assert code == 2 and err.endswith("teacher.pt: holds a Teacher, this stage trains a UniEncoder")
    other = load_config(ROOT / "config" / "model" / "tiny.yaml", ModelConfig)
    other.depth.channels = [8, 8, 8, 8, 8]
    save_checkpoint(UniEncoder(other), tmp_path / "other.pt")
    code, err = train(capsys, "--config", path, "--init", tmp_path / "other.pt")
    assert code == 2 and err.endswith("other.pt: model configuration differs from the recipe's in ['depth']")


def test_bad_resume_and_bad_recipes_give_one_clear_line(tmp_path, capsys):
    path, stage = recipe(tmp_path, steps=1)
    code, err = train(capsys, "--config", path, "--resume")
    assert code == 2 and err.endswith("checkpoints: no step checkpoint to resume from")
    assert train(capsys, "--config", path)[0] == 0
    code, err = train(capsys, "--config", path)
    assert code == 2 and "already holds a run (up to step 1): pass --resume" in err
    code, err = train(capsys, "--config", path, "--resume", "--steps", 5)
    assert code == 2 and "started for 1 steps and resume continues that schedule; drop --steps" in err
    changed = yaml.safe_load(path.read_text())
    changed["lr"] = 0.5
    path.write_text(yaml.safe_dump(changed))
    code, err = train(capsys, "--config", path, "--resume")
    assert code == 2 and "was written by a different recipe (keys ['lr'] differ)" in err
    last = ckpt.step_path(tmp_path / "run", 1)
    last.write_bytes(last.read_bytes()[:-4000])
    code, err = train(capsys, "--config", path, "--resume")
    assert code == 2 and "step_0000001.pt: not a readable checkpoint (truncated or corrupt?)" in err
    (tmp_path / "bad.yaml").write_text("steps: 10\nschedule: {kind: linear}\n")
    code, err = train(capsys, "--config", tmp_path / "bad.yaml")
    assert code == 2 and "key 'schedule.kind' expects one of ['cosine', 'step'], got 'linear'" in err
    code, err = train(capsys, "--config", path, "--steps", "0")
    assert code == 2 and "key 'steps' must be >= 1, got 0" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_torchrun_ends_with_identical_weights_and_one_checkpoint(tmp_path):
    path, _ = recipe(tmp_path, "student_stage3", steps=3, checkpoint_every=2)
    cmd = [PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
           str(free_port()), str(ROOT / "test" / "train_ddp_probe.py"), str(path), str(tmp_path / "ranks")]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert [s for s, _ in ckpt.step_checkpoints(run)] == [2, 3]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "final.pt", "recipe.yaml", "tensorboard"]
    assert len(list((run / "tensorboard").iterdir())) == 1  # rank 0 logs alone
    ranks = [torch.load(tmp_path / "ranks" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    final = read_checkpoint(run / "final.pt")["state_dict"]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) and torch.equal(ranks[0][k], final[k]) for k in final)
    shares = [set(r["batches"].tolist()) for r in ranks]
    assert shares[0] and not shares[0] & shares[1]  # each rank reads its own share of the data
    step3 = read_checkpoint(ckpt.step_path(run, 3))
    assert len(step3["rng"]) == 2 and step3["data"]["triplets"] == (1, 1)  # 2 batches of 2 per rank and epoch


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_leave_a_valid_last_checkpoint(tmp_path, signum):
    path, _ = recipe(tmp_path, "student_stage2", steps=100000)
    cmd = [PY, "-m", "uni_encoder_core.cli", "train", "--config", str(path), "--device", "cpu", "--no-progress"]
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "run" / "recipe.yaml").exists():  # written once the signal handlers are in place
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signum)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 128 + signum, err
    assert "stopped at step" in err and "continue with --resume" in err and "Traceback" not in err
    (step, last), = ckpt.step_checkpoints(tmp_path / "run")
    payload = read_checkpoint(last)
    assert payload["step"] == step and set(ckpt.RESUME_KEYS) <= set(payload)
    assert not (tmp_path / "run" / "final.pt").exists()
