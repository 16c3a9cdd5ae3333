"""Property-based: whatever bytes or YAML reach the loaders, they return a valid object or raise the project's
own error (``CheckpointError`` / ``ConfigError``) with a message naming the file, never anything else."""

import dataclasses
import random
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_bounds import check_config
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.models.checkpoint import ZIP_MAGIC, CheckpointError, load_checkpoint, save_checkpoint
from uni_encoder_core.models.unified import UniEncoder

TINY = Path(__file__).resolve().parents[1] / "config" / "model" / "tiny.yaml"
FEW = settings(max_examples=25, deadline=None, database=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("fuzz") / "tiny.pt"
    save_checkpoint(UniEncoder(load_config(TINY, ModelConfig)), path)
    return path.read_bytes()


def written(data: bytes, suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    with handle:
        handle.write(data)
    return Path(handle.name)


def loads_or_names_the_file(load, error: type[Exception], data: bytes, suffix: str):
    path = written(data, suffix)
    try:
        return load(path)
    except error as exc:
        assert str(path) in str(exc)
        return None
    finally:
        path.unlink()


@FEW
@given(st.one_of(st.binary(max_size=2000), st.binary(max_size=2000).map(lambda b: ZIP_MAGIC + b)))
def test_random_bytes_are_never_a_checkpoint(data):
    assert loads_or_names_the_file(load_checkpoint, CheckpointError, data, ".pt") is None


@settings(FEW, max_examples=15)
@given(data=st.data())
def test_damaged_checkpoints_load_exactly_or_fail_clearly(tiny_bytes, data):
    rng = random.Random(data.draw(st.integers(0, 2**32)))  # uniform positions over the whole file
    blob = bytearray(tiny_bytes)
    for _ in range(rng.randint(1, 8)):
        blob[rng.randrange(len(blob))] = rng.randrange(256)
    if rng.random() < 0.3:
        blob = blob[: rng.randrange(1, len(blob))]
    model = loads_or_names_the_file(load_checkpoint, CheckpointError, bytes(blob), ".pt")
    if model is not None:  # e.g. only tensor bytes changed: still a complete, finite model within bounds
        assert isinstance(model, UniEncoder)
        check_config(model.cfg)
        assert all(torch.isfinite(t).all() for t in model.state_dict().values())


@FEW
@given(st.binary(max_size=500))
def test_random_bytes_as_a_config(data):
    cfg = loads_or_names_the_file(lambda p: load_config(p, ModelConfig), ConfigError, data, ".yaml")
    if cfg is not None:
        check_config(cfg)


KEYS = sorted({f.name for f in dataclasses.fields(ModelConfig)} | {"channels", "hidden_dim", "num_heads", "depths"})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


@FEW
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_random_yaml_gives_a_valid_config_or_a_config_error(raw):
    text = yaml.safe_dump(raw)
    cfg = loads_or_names_the_file(lambda p: load_config(p, ModelConfig), ConfigError, text.encode(), ".yaml")
    if cfg is not None:
        check_config(cfg)
