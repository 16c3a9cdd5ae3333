"""Bad checkpoints: each gives one line naming the file, the problem and the fix, exit 2, no traceback, and is
refused before the model it describes is allocated."""

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import uni_encoder_core.commands.export  # noqa: F401 - imported before a test drops privileges
from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from uni_encoder_core.models.unified import UniEncoder

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "model" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(UniEncoder(load_config(TINY, ModelConfig)), path)
    return path


def export_fails(checkpoint: Path, out: Path, capsys) -> str:
    """Run ``uni-encoder export`` in-process; it must exit 2 with one stderr line, and write nothing."""
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("uni-encoder export: ")
    assert str(checkpoint) in err
    assert not out.exists()
    return err


def rewrite(src: Path, dst: Path, change) -> Path:
    payload = torch.load(src, weights_only=True)
    change(payload)
    torch.save(payload, dst)
    return dst


def test_text_file_and_random_bytes(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("epoch 3: loss 0.42\n")
    err = export_fails(text, tmp_path / "o", capsys)
    assert "not a checkpoint (a PyTorch zip archive) but a text file; use a checkpoint written by" in err
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes([0x80, 0xFF, 0x00, 0x13]) + np.random.default_rng(0).bytes(500))
    assert "but binary data starting 80 ff 00 13" in export_fails(noise, tmp_path / "o", capsys)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in export_fails(empty, tmp_path / "o", capsys)
    assert "is a directory, not a checkpoint file" in export_fails(tmp_path, tmp_path / "o", capsys)


@contextlib.contextmanager
def unprivileged():
    """Drop the effective uid to nobody while the body runs when running as root (root reads any file)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file(tiny_file, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "locked.pt"
        path.write_bytes(tiny_file.read_bytes())
        path.chmod(0)
        with unprivileged():
            err = export_fails(path, Path(tmp) / "o", capsys)
    assert "cannot read the checkpoint (Permission denied); check its permissions" in err


def test_truncated_file(tiny_file, tmp_path, capsys):
    data = tiny_file.read_bytes()
    for keep in (len(data) // 3, len(data) - 100):
        cut = tmp_path / f"cut{keep}.pt"
        cut.write_bytes(data[:keep])
        assert "not a readable checkpoint (truncated or corrupt?)" in export_fails(cut, tmp_path / "o", capsys)


def test_config_out_of_bounds_is_refused_before_building(tiny_file, tmp_path, capsys):
    def huge(payload):
        payload["model_config"]["segmentation"]["hidden_dim"] = 1 << 20

    err = export_fails(rewrite(tiny_file, tmp_path / "wide.pt", huge), tmp_path / "o", capsys)
    assert "embedded model config is invalid" in err
    assert "key 'segmentation.hidden_dim' must be in [64, 2048], a multiple of 64; got 1048576" in err


def test_small_file_claiming_a_huge_model_allocates_nothing_large(tiny_file, tmp_path):
    def huge(payload):  # every size within its bound, together 5.84 G parameters (23 GB in fp32)
        payload["model_config"]["segmentation"].update(
            hidden_dim=2048, decoder_layers=32, dim_feedforward=16384, encoder_layers=32,
            encoder_feedforward_dim=16384, num_heads=32)

    path = rewrite(tiny_file, tmp_path / "huge.pt", huge)
    assert path.stat().st_size < 20e6
    code = ("import resource, sys; from uni_encoder_core.cli import main; "
            f"code = main(['export', '--checkpoint', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert "(model_config): the model config describes 5,840 M parameters" in run.stderr
    assert "more than the 1,000 M allowed; check its sizes" in run.stderr
    peak_kib = int(run.stdout.split()[-1])
    assert peak_kib < 2 * 1024 * 1024  # < 2 GiB peak: the 23 GB model was never allocated


def test_config_that_disagrees_with_the_weights_names_both_sizes(tiny_file, tmp_path, capsys):
    def wider(payload):
        payload["model_config"]["pose"]["head_channels"] = 2048

    err = export_fails(rewrite(tiny_file, tmp_path / "wider.pt", wider), tmp_path / "o", capsys)
    assert "weights do not match the model its config describes" in err
    assert "pose.head.net.0.weight: (32, 32, 1, 1) vs model (2048, 32, 1, 1)" in err
    n_file = sum(t.numel() for t in torch.load(tiny_file, weights_only=True)["state_dict"].values())
    assert f"the file holds {n_file / 1e6:.3f} M" in err


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_name(tiny_file, tmp_path, capsys, value):
    def poison(payload):
        payload["state_dict"]["depth.disp.0.1.weight"].view(-1)[[0, 3]] = value

    path = rewrite(tiny_file, tmp_path / "nan.pt", poison)
    err = export_fails(path, tmp_path / "o", capsys)
    n = torch.load(path, weights_only=True)["state_dict"]["depth.disp.0.1.weight"].numel()
    assert f"weight 'depth.disp.0.1.weight' has 2 of {n} entries NaN or Inf" in err
    assert "use an earlier checkpoint of the run" in err


def test_embedded_size_not_divisible_by_32_is_refused_at_load(tiny_file, tmp_path):
    def odd(payload):
        payload["model_config"].update(height=100, width=300)

    with pytest.raises(CheckpointError, match=r"key 'height' must be in \[32, 4096\], a multiple of 32; got 100"):
        load_checkpoint(rewrite(tiny_file, tmp_path / "odd.pt", odd))


def test_pretrained_file_of_the_embedded_config_is_not_read(tiny_file, tmp_path):
    def elsewhere(payload):  # trained on another machine from local pretrained weights
        payload["model_config"]["encoder"]["pretrained"] = "/nowhere/swin_tiny.pth"

    model = load_checkpoint(rewrite(tiny_file, tmp_path / "moved.pt", elsewhere))
    stored = torch.load(tiny_file, weights_only=True)["state_dict"]
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_teacher_is_refused_by_export_in_one_line(tmp_path, capsys):
    from uni_encoder_core.models.teacher import Teacher

    torch.manual_seed(0)
    save_checkpoint(Teacher(load_config(TINY, ModelConfig)), tmp_path / "teacher.pt")
    err = export_fails(tmp_path / "teacher.pt", tmp_path / "o", capsys)
    assert "holds a Teacher, not a UniEncoder; export a checkpoint of the unified model" in err


def test_debug_flag_shows_the_traceback(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not weights\n")
    with pytest.raises(CheckpointError, match="a text file"):
        main(["--debug", "export", "--checkpoint", str(text), "--out", str(tmp_path / "o")])
