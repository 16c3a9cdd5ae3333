"""Bad configuration files and command-line mistakes: one line naming the file, the problem and the fix, a
non-zero exit, no traceback (unless ``--debug``), and nothing written."""

from pathlib import Path

import pytest

from uni_encoder_core import config
from uni_encoder_core.cli import main
from uni_encoder_core.config import DataConfig, ModelConfig
from uni_encoder_core.config_bounds import LIST_LENGTHS, SIZE_BOUNDS, check_config
from uni_encoder_core.config_yaml import MAX_CONFIG_BYTES, load_config
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.models.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "model" / "tiny.yaml"


def init_fails(model: Path, out: Path, capsys, code: int = 2) -> str:
    """``uni-encoder init --model MODEL --out OUT`` must fail with one stderr line naming MODEL, writing nothing."""
    assert main(["init", "--model", str(model), "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("uni-encoder init: ")
    assert not out.exists()
    return err


def tiny_with(tmp_path: Path, extra: str, name: str = "model.yaml") -> Path:
    """The tiny model config with ``extra`` YAML lines appended (later keys win)."""
    path = tmp_path / name
    path.write_text(TINY.read_text() + extra)
    return path


def test_deeply_nested_yaml(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("encoder: " + "[" * 5000 + "]" * 5000 + "\n")
    err = init_fails(path, tmp_path / "m.pt", capsys)
    assert f"{path}: nested too deeply to be a configuration; check the file's structure" in err


def test_non_utf8_bytes(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    err = init_fails(path, tmp_path / "m.pt", capsys)
    assert f"{path}: not UTF-8 text (byte 0xe9 at offset 9); save it as UTF-8 YAML" in err


def test_negative_height(tmp_path, capsys):
    path = tiny_with(tmp_path, "height: -64\n")
    err = init_fails(path, tmp_path / "m.pt", capsys)
    assert f"{path}: key 'height' must be in [32, 4096], a multiple of 32; got -64" in err


def test_size_not_divisible_by_32_is_refused_at_init(tmp_path, capsys):
    path = tiny_with(tmp_path, "height: 100\nwidth: 300\n")
    err = init_fails(path, tmp_path / "m.pt", capsys)
    assert "key 'height' must be in [32, 4096], a multiple of 32; got 100" in err
    path = tiny_with(tmp_path, "width: 300\n")
    assert "key 'width' must be in [32, 4096], a multiple of 32; got 300" in init_fails(path, tmp_path / "m.pt", capsys)


@pytest.mark.parametrize("extra,message", [
    ("segmentation:\n  hidden_dim: 96\n", "key 'segmentation.hidden_dim' must be in [64, 2048], a multiple of 64"),
    ("segmentation:\n  num_heads: 3\n", "key 'segmentation.num_heads' must divide hidden_dim 256, got 3"),
    ("depth:\n  channels: [8, 8, 16, 16]\n", "key 'depth.channels' needs 5 entries, got 4"),
    ("depth:\n  min_depth: 200.0\n", "key 'depth.min_depth' needs 0 < min_depth < max_depth, got 200.0 and 100.0"),
    ("depth:\n  max_depth: .inf\n", "key 'depth.max_depth' expects a finite number, got inf"),
    ("encoder:\n  embed_dim: 24\n  num_heads: [1, 2, 5, 6]\n",
     "stage 2 width 96 (embed_dim * 2^2) is not divisible by its 5 heads"),
    ("pose:\n  head_channels: 100000\n", "key 'pose.head_channels' must be in [1, 2048]; got 100000"),
    ("segmentation:\n  object_threshold: 1.5\n", "key 'segmentation.object_threshold' must be in [0, 1], got 1.5"),
])
def test_sizes_out_of_bounds_name_the_key_and_the_range(tmp_path, capsys, extra, message):
    assert message in init_fails(tiny_with(tmp_path, extra), tmp_path / "m.pt", capsys)


def test_missing_unreadable_oversized_and_directory(tmp_path, capsys):
    assert "none.yaml: file not found; check the path" in init_fails(tmp_path / "none.yaml", tmp_path / "m.pt", capsys)
    assert "is a directory, not a YAML file" in init_fails(tmp_path, tmp_path / "m.pt", capsys)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    assert "is not a configuration file (those are a few KB" in init_fails(big, tmp_path / "m.pt", capsys)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a sentence\n")
    assert "<top level> must be a mapping of keys to values, got str" in init_fails(scalar, tmp_path / "m.pt", capsys)
    keys = tmp_path / "keys.yaml"
    keys.write_text("1: 2\nheight: 64\n")
    assert "unknown key '1' in ModelConfig" in init_fails(keys, tmp_path / "m.pt", capsys)


def test_bad_yaml_is_one_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("encoder:\n  backbone: [swin\n  depths: 3\n")
    assert f"{path}: not valid YAML: while parsing" in init_fails(path, tmp_path / "m.pt", capsys)


def test_init_refuses_an_existing_checkpoint_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier checkpoint")
    assert main(["init", "--model", str(TINY), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: exists already; choose another --out or replace it with --overwrite" in err
    assert out.read_bytes() == b"an earlier checkpoint"
    assert main(["init", "--model", str(TINY), "--out", str(out), "--overwrite", "--seed", "9"]) == 0
    assert read_checkpoint(out)["seed"] == 9
    assert main(["init", "--model", str(TINY)]) == 2
    assert "nothing to do; give --out FILE and/or --summary" in capsys.readouterr().err


def test_os_errors_name_the_path_and_exit_1(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["init", "--model", str(TINY), "--out", str(blocker / "m.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{blocker}: File exists; check the path and its permissions" in err


def test_debug_flag_raises_with_the_traceback(tmp_path, capsys):
    path = tiny_with(tmp_path, "height: -64\n")
    with pytest.raises(ConfigError, match="got -64"):
        main(["--debug", "init", "--model", str(path), "--out", str(tmp_path / "m.pt")])
    assert main(["--help"]) == 0
    assert "--debug" in capsys.readouterr().out


def test_shipped_configs_are_within_bounds_and_every_bound_names_a_field():
    for name in ("tiny", "swin_t"):
        check_config(load_config(ROOT / "config" / "model" / f"{name}.yaml", ModelConfig))
    check_config(ModelConfig())
    for table in (SIZE_BOUNDS, LIST_LENGTHS):
        for name, bounds in table.items():
            fields = set(getattr(config, name).__dataclass_fields__)
            assert set(bounds) <= fields, (name, set(bounds) - fields)
    check_config(DataConfig())  # configs without bounds pass through
