"""Typed configuration: YAML load with precise errors, and a lossless round trip."""

import pytest

from uni_encoder_core.config import ModelConfig, StageConfig
from uni_encoder_core.config_yaml import load_config, save_config
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.inference.settings import PipelineConfig


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_values_are_read_into_nested_dataclasses(tmp_path):
    path = write(tmp_path, "height: 192\nwidth: 640\nencoder:\n  backbone: resnet18\ndepth:\n  max_depth: 80\n")
    cfg = load_config(path, ModelConfig)
    assert (cfg.height, cfg.width) == (192, 640)
    assert cfg.encoder.backbone == "resnet18"
    assert cfg.depth.max_depth == 80.0 and isinstance(cfg.depth.max_depth, float)
    assert cfg.depth.min_depth == 0.1  # default kept


def test_unknown_key_names_file_and_dotted_key(tmp_path):
    path = write(tmp_path, "encoder:\n  backbon: x\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'encoder\.backbon' in EncoderConfig"):
        load_config(path, ModelConfig)


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = write(tmp_path, "steps: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: key 'steps' expects int, got str"):
        load_config(path, StageConfig)
    path = write(tmp_path, "data:\n  frame_offsets: [-1, zero, 1]\n")
    with pytest.raises(ConfigError, match=r"key 'data\.frame_offsets\[1\]' expects int"):
        load_config(path, StageConfig)


def test_bool_is_not_an_int_and_literal_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="key 'steps' expects int, got bool"):
        load_config(write(tmp_path, "steps: true\n"), StageConfig)
    with pytest.raises(ConfigError, match=r"key 'precision' expects one of \['fp32', 'fp16', 'bf16'\]"):
        load_config(write(tmp_path, "precision: fp8\n"), PipelineConfig)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml", ModelConfig)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"), ModelConfig)
    with pytest.raises(ConfigError, match="<top level> must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"), ModelConfig)


def test_optional_accepts_null_and_value(tmp_path):
    assert load_config(write(tmp_path, "encoder: {pretrained: null}\n"), ModelConfig).encoder.pretrained is None
    cfg = load_config(write(tmp_path, "encoder: {pretrained: /w/swin.pth}\n"), ModelConfig)
    assert cfg.encoder.pretrained == "/w/swin.pth"


def test_round_trip_is_lossless(tmp_path):
    cfg = StageConfig(name="stage4", steps=250000, lr=5e-5, trainable=["encoder", "motion"])
    cfg.loss.motion_consistency_weight = 2.5
    cfg.data.kind = "kitti"
    save_config(cfg, tmp_path / "out" / "stage.yaml")
    assert load_config(tmp_path / "out" / "stage.yaml", StageConfig) == cfg
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["stage.yaml"]  # no temp files left


def test_failed_save_keeps_the_good_file(tmp_path):
    path = tmp_path / "stage.yaml"
    save_config(StageConfig(steps=10), path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save_config(object(), path)  # not a dataclass: serialisation fails half way
    assert path.read_bytes() == before


def test_saved_file_has_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        save_config(StageConfig(), tmp_path / "stage.yaml")
    finally:
        os.umask(mask)
    assert (tmp_path / "stage.yaml").stat().st_mode & 0o777 == 0o644


def test_field_defaults_give_each_pipeline_setting_with_its_description():
    from dataclasses import dataclass, fields

    from uni_encoder_core.inference.settings import described, field_defaults

    table = field_defaults(PipelineConfig)
    assert list(table) == [f.name for f in fields(PipelineConfig)]
    assert table["segmentation_tasks"] == (["panoptic"], "OneFormer tasks to run: any of panoptic, semantic, instance")
    assert table["camera_height"][0] == 1.5 and table["camera_height"][1].startswith("m ")
    assert PipelineConfig(**{name: default for name, (default, _) in table.items()}) == PipelineConfig()

    @dataclass
    class Partly:
        documented: int = described(1, "a setting")
        bare: int = 2

    with pytest.raises(ConfigError, match=r"Partly\.bare has no description"):
        field_defaults(Partly)
