"""Checkpoints: bit-exact round trip with the embedded config, and the promised errors for bad files."""

import argparse
from pathlib import Path

import pytest
import torch

from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config, to_dict
from uni_encoder_core.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder

TINY = Path(__file__).resolve().parents[1] / "config" / "model" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_cfg() -> ModelConfig:
    return load_config(TINY, ModelConfig)


@pytest.fixture(scope="module")
def saved(tiny_cfg, tmp_path_factory):
    torch.manual_seed(11)
    model = UniEncoder(tiny_cfg).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(model, path, step=1234, note="smoke")
    return model, path


def test_round_trip_is_bit_exact(saved, tiny_cfg):
    model, path = saved
    loaded = load_checkpoint(path)
    assert isinstance(loaded, UniEncoder) and not loaded.training
    assert loaded.cfg == tiny_cfg
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(original) == list(restored)
    assert all(torch.equal(original[k], restored[k]) for k in original)
    images = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.encode(images), loaded.encode(images)))
        assert torch.equal(model.predict_depth(model.encode(images))[1], loaded.predict_depth(loaded.encode(images))[1])
    payload = read_checkpoint(path)
    assert payload["step"] == 1234 and payload["note"] == "smoke" and payload["model_config"] == to_dict(tiny_cfg)


def test_teacher_round_trip(tmp_path, tiny_cfg):
    torch.manual_seed(0)
    teacher = Teacher(tiny_cfg)
    save_checkpoint(teacher, tmp_path / "teacher.pt")
    loaded = load_checkpoint(tmp_path / "teacher.pt")
    assert isinstance(loaded, Teacher)
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), loaded.state_dict().values()))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated_file(saved, tmp_path):
    data = saved[1].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(cut)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a uni-encoder checkpoint"):
        load_checkpoint(path)
    # arbitrary pickled objects are refused (weights_only=True)
    torch.save({"format": "uni-encoder-checkpoint", "version": 1, "obj": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="objects other than weights, refused by weights_only=True"):
        load_checkpoint(path)


def _rewrite(path: Path, out: Path, change) -> Path:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, out)
    return out


def test_missing_and_unexpected_keys_are_named(saved, tmp_path):
    def edit(payload):
        del payload["state_dict"]["depth.disp.0.1.weight"]
        payload["state_dict"]["depth.extra.weight"] = torch.zeros(1)

    path = _rewrite(saved[1], tmp_path / "edited.pt", edit)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "1 missing keys: depth.disp.0.1.weight" in message
    assert "1 unexpected keys: depth.extra.weight" in message


def test_config_and_weights_that_disagree(saved, tmp_path):
    def edit(payload):
        payload["model_config"]["pose"]["head_channels"] = 48

    path = _rewrite(saved[1], tmp_path / "mismatch.pt", edit)
    expected = r"shape mismatches: pose\.head\.net\.0\.weight: \(32, 32, 1, 1\) vs model \(48, 32, 1, 1\)"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)

    def bad_config(payload):
        payload["model_config"]["pose"]["channelz"] = [1]

    path = _rewrite(saved[1], tmp_path / "badcfg.pt", bad_config)
    with pytest.raises(CheckpointError, match="embedded model config is invalid.*unknown key 'pose.channelz'"):
        load_checkpoint(path)


def test_save_rejects_reserved_extra_names(saved, tmp_path):
    with pytest.raises(ValueError, match="state_dict"):
        save_checkpoint(saved[0], tmp_path / "x.pt", state_dict={})


def test_init_command_writes_a_loadable_checkpoint_and_a_summary(tmp_path, capsys, tiny_cfg):
    out = tmp_path / "init.pt"
    assert main(["init", "--model", str(TINY), "--out", str(out), "--seed", "3", "--summary"]) == 0
    text = capsys.readouterr().out
    model = load_checkpoint(out)
    counts = model.parameter_counts()
    for name in ("encoder", "depth", "pose", "scene_flow", "motion_mask", "segmentation", "steering"):
        assert f"{counts[name]:,d}" in text and name in text
    assert f"{sum(counts.values()):,d}" in text
    assert read_checkpoint(out)["seed"] == 3
    # the same seed gives the same weights
    again = tmp_path / "again.pt"
    assert main(["init", "--model", str(TINY), "--out", str(again), "--seed", "3"]) == 0
    reloaded = load_checkpoint(again).state_dict()
    assert all(torch.equal(v, reloaded[k]) for k, v in model.state_dict().items())
    assert main(["init", "--model", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "new.pt")]) == 2
    assert "file not found" in capsys.readouterr().err
