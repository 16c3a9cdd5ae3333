"""The steering stage: tenfold contiguous chunking, the feature cache, frozen and unfrozen encoders, learning, tables.

The learning assertion (a random frozen tiny encoder, 800 frames of world 0, 10 folds) was measured with three
training seeds: mean test MSE / always-zero test MSE = 0.39, 0.30, 0.36; the test asserts < 0.6.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lane_keeping_fixture import write_recording

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.sequences import SteeringDataConfig, open_sequence
from uni_encoder_core.data.synthetic import WorldConfig
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.eval.steering import tenfold_splits
from uni_encoder_core.models.checkpoint import load_checkpoint, save_checkpoint
from uni_encoder_core.models.encoder import SharedEncoder
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.steering_cv import (
    SteeringCVConfig,
    SteeringTrainConfig,
    SteeringVariant,
    load_steering_cv_config,
    run_steering_cv,
)
from uni_encoder_core.train.steering_folds import contiguous_chunks, cross_testing_folds, window_ends, window_frames

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "config" / "model" / "tiny.yaml")


def world(frames: int, seed: int = 0) -> SteeringDataConfig:
    return SteeringDataConfig(synthetic=WorldConfig(seed=seed, height=64, width=128, num_frames=frames))


def recipe(data: SteeringDataConfig, variants: list[SteeringVariant], cache: Path, **train) -> SteeringCVConfig:
    settings = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "train_stride": 16} | train
    return SteeringCVConfig(data=data, variants=variants, train=SteeringTrainConfig(**settings), cache_dir=str(cache),
                            save_models=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny UniEncoder checkpoints with different random weights."""
    cfg = load_config(TINY, ModelConfig)
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp("ckpt") / f"tiny{seed}.pt"
        save_checkpoint(UniEncoder(cfg), path)
        paths.append(path)
    return paths[0], paths[1]


class EncodedFrames:
    """Counts the frames every SharedEncoder forward pass encodes (a global forward hook)."""

    def __enter__(self):
        self.frames = 0

        def hook(module, inputs, output):
            if isinstance(module, SharedEncoder):
                self.frames += inputs[0].shape[0]

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ------------------------------------------------------------------------------------------------ chunking


def test_ten_contiguous_chunks_cover_every_frame_once_and_match_tenfold_splits():
    chunks = contiguous_chunks(203, 10)
    assert [len(c) for c in chunks] == [21, 21, 21] + [20] * 7
    assert chunks[0].start == 0 and chunks[-1].stop == 203
    assert all(a.stop == b.start for a, b in zip(chunks[:-1], chunks[1:]))
    assert [list(c) for c in chunks] == [test.tolist() for _, test in tenfold_splits(203, 10)]
    with pytest.raises(ValueError, match="at least 2 folds"):
        contiguous_chunks(5, 10)


def test_window_arithmetic_known_numbers():
    assert window_frames(np.array([15, 20]), 16).tolist() == [list(range(0, 16)), list(range(5, 21))]
    assert window_ends(range(20, 200), 16).tolist() == list(range(35, 200))
    assert window_ends(range(0, 80), 16, stride=10).tolist() == [15, 25, 35, 45, 55, 65, 75]
    folds = cross_testing_folds(200, 16)
    assert (folds[0].test, folds[0].train) == (range(0, 20), (range(20, 200),))
    assert len(folds[0].test_ends) == 5 and len(folds[0].train_ends) == 165
    assert folds[4].train == (range(0, 80), range(100, 200))
    assert len(folds[4].train_ends) == 65 + 85 and folds[4].test_ends.tolist() == list(range(95, 100))
    with pytest.raises(ValueError, match="fewer than one window of 16"):
        cross_testing_folds(150, 16)


@pytest.mark.parametrize(("num_frames", "stride"), [(160, 1), (203, 1), (517, 3)])
def test_no_window_holds_frames_of_both_training_and_test(num_frames, stride):
    folds = cross_testing_folds(num_frames, 16, train_stride=stride)
    assert [f.index for f in folds] == list(range(10))
    for fold in folds:
        test = set(fold.test)
        train_windows = window_frames(fold.train_ends, 16).tolist()
        test_windows = window_frames(fold.test_ends, 16).tolist()
        assert all(test.isdisjoint(w) for w in train_windows)
        assert all(set(w) <= test for w in test_windows)
        assert all(any(set(w) <= set(run) for run in fold.train) for w in train_windows)
        assert len(test_windows) == len(fold.test) - 15
        assert len(train_windows) == sum(max(0, (len(r) - 16) // stride + 1) for r in fold.train)


# ------------------------------------------------------------------------------------------------ cache


def test_features_are_cached_per_checkpoint_and_data(checkpoints, tmp_path):
    a, b = checkpoints
    frozen = lambda ckpt: [SteeringVariant(name="frozen", init="checkpoint", checkpoint=str(ckpt))]  # noqa: E731
    cache = tmp_path / "cache"
    runs = []
    for ckpt, data in ((a, world(170)), (a, world(170)), (b, world(170)), (a, world(170, seed=1))):
        with EncodedFrames() as counter:
            result = run_steering_cv(recipe(data, frozen(ckpt), cache), tmp_path / "out", progress=False)
        runs.append((counter.frames, result.variants[0].cache_hit, len(list(cache.glob("*.pt")))))
    assert runs == [(170, False, 1), (0, True, 1), (170, False, 2), (170, False, 3)]


def test_a_corrupt_cache_file_is_recomputed(checkpoints, tmp_path):
    variants = [SteeringVariant(name="frozen", init="checkpoint", checkpoint=str(checkpoints[0]))]
    cache = tmp_path / "cache"
    first = run_steering_cv(recipe(world(170), variants, cache), tmp_path / "out", progress=False)
    (path,) = cache.glob("*.pt")
    path.write_bytes(path.read_bytes()[:1000])
    with EncodedFrames() as counter:
        again = run_steering_cv(recipe(world(170), variants, cache), tmp_path / "out", progress=False)
    assert counter.frames == 170 and again.variants[0].cache_hit is False
    assert again.variants[0].folds == first.variants[0].folds  # same features, same seeds: the same numbers


# ------------------------------------------------------------------------------------------------ variants


def test_frozen_encoder_is_bit_identical_and_unfrozen_one_trains(checkpoints, tmp_path):
    ckpt = checkpoints[0]
    variants = [SteeringVariant(name="(3) frozen", init="checkpoint", checkpoint=str(ckpt)),
                SteeringVariant(name="(2) unfrozen", init="checkpoint", checkpoint=str(ckpt), frozen=False)]
    cfg = recipe(world(170), variants, tmp_path / "cache", folds=2, batch_size=4, train_stride=24)
    cfg.save_models = True
    result = run_steering_cv(cfg, tmp_path / "out", progress=False)
    frozen, unfrozen = result.variants
    assert (frozen.cache_hit, unfrozen.cache_hit) == (False, None)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # the unfrozen encoder caches nothing
    before = load_checkpoint(ckpt)
    after_frozen, after_unfrozen = load_checkpoint(frozen.model_path), load_checkpoint(unfrozen.model_path)
    assert Path(frozen.model_path).name == "3-frozen.pt"
    for name, value in before.encoder.state_dict().items():
        assert torch.equal(value, after_frozen.encoder.state_dict()[name]), name
    tuned = after_unfrozen.encoder.state_dict()
    assert any(not torch.equal(v, tuned[k]) for k, v in before.encoder.state_dict().items())
    for part in ("depth", "segmentation"):  # untouched heads travel unchanged
        assert all(torch.equal(v, getattr(after_frozen, part).state_dict()[k])
                   for k, v in getattr(before, part).state_dict().items())
    assert not torch.equal(before.steering.curvature.weight, after_frozen.steering.curvature.weight)
    assert all(np.isfinite(f.test_mse) and f.test_windows == len(range(f.test_frames[0], f.test_frames[1])) - 15
               for v in result.variants for f in v.folds)


def test_random_variant_is_seeded_and_bad_variants_are_named(tmp_path):
    teacher_path = tmp_path / "teacher.pt"
    save_checkpoint(Teacher(load_config(TINY, ModelConfig)), teacher_path)
    bad = [(SteeringVariant(name="x", init="checkpoint"), "needs a checkpoint path"),
           (SteeringVariant(name="x", init="checkpoint", checkpoint=str(teacher_path)), "needs a UniEncoder"),
           (SteeringVariant(name="x", init="imagenet", model=TINY), "needs imagenet_weights"),
           (SteeringVariant(name="x", init="imagenet", model=TINY, imagenet_weights=str(tmp_path / "no.pth")),
            "not found")]
    for variant, message in bad:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            run_steering_cv(recipe(world(170), [variant], tmp_path), tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="needs root"):
        open_sequence(SteeringDataConfig(kind="lane_keeping"))
    with pytest.raises(DataError, match="x.h5: not a readable HDF5 file"):
        open_sequence(SteeringDataConfig(kind="lane_keeping", root=str(tmp_path / "x.h5")))


def test_a_lane_keeping_recording_is_a_frame_sequence_keyed_by_its_content(tmp_path):
    path = write_recording(tmp_path / "drive.h5", n=30)
    seq = open_sequence(SteeringDataConfig(kind="lane_keeping", root=str(path)))
    assert len(seq) == 30 and seq.image(7).shape == (8, 16, 3) and seq.image(7)[0, 0, 0] == 7
    np.testing.assert_allclose(seq.curvature, np.arange(30) / 1000.0)
    np.testing.assert_allclose(seq.stamps, 100.0 + 0.05 * np.arange(30))
    changed = write_recording(tmp_path / "drive2.h5", n=30, curvature=np.arange(30) / 500.0)
    same = write_recording(tmp_path / "drive3.h5", n=30)
    identity = seq.identity.split(":", 2)[2]
    assert open_sequence(SteeringDataConfig(kind="lane_keeping", root=str(same))).identity.endswith(identity)
    assert not open_sequence(SteeringDataConfig(kind="lane_keeping", root=str(changed))).identity.endswith(identity)


def test_recipes_load_and_name_their_variants(tmp_path):
    paper = load_steering_cv_config(ROOT / "training" / "configs" / "steering_cv.yaml")
    assert [(v.init, v.frozen) for v in paper.variants] == [("imagenet", True), ("checkpoint", False),
                                                           ("checkpoint", True)]
    assert paper.train.folds == 10 and paper.data.kind == "lane_keeping"
    synthetic = load_steering_cv_config(ROOT / "training" / "configs" / "synthetic" / "steering_cv.yaml")
    assert synthetic.data.synthetic.num_frames == 800 and synthetic.variants[0].init == "random"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: steering_cv\ntrain:\n  fold: 10\n")
    with pytest.raises(ConfigError, match="unknown key 'train.fold'"):
        load_steering_cv_config(bad)
    bad.write_text("variants:\n  - name: a\n  - name: A\n")
    with pytest.raises(ValueError, match="distinct names"):
        load_steering_cv_config(bad)


# ------------------------------------------------------------------------------------------------ learning, table


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    out = tmp_path_factory.mktemp("steering")
    variants = [SteeringVariant(name="random frozen", init="random", model=TINY)]
    cfg = recipe(world(800), variants, out / "cache", epochs=10, train_stride=2)
    return run_steering_cv(cfg, out, progress=False), out


def test_pooler_learns_curvature_on_held_out_chunks(learned):
    result, _ = learned
    (variant,) = result.variants
    test, zero = variant.summary("test_mse").mean, variant.summary("zero_test_mse").mean
    assert test < 0.6 * zero  # measured 0.39 / 0.30 / 0.36 of the always-zero error (training seeds 0, 1, 2)
    assert variant.summary("train_mse").mean < 0.5 * variant.summary("zero_train_mse").mean


def test_result_table_has_ten_folds_and_numpy_mean_std(learned, capsys):
    result, out = learned
    (variant,) = result.variants
    assert [f.fold for f in variant.folds] == list(range(10))
    for metric in ("train_mse", "test_mse", "test_weighted_mse", "zero_test_mse"):
        values = np.array([getattr(f, metric) for f in variant.folds])
        summary = variant.summary(metric)
        assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
        assert summary.std == pytest.approx(values.std(), rel=1e-12)
    report = json.loads((out / "steering_cv.json").read_text())
    (raw,) = report["variants"]
    assert len(raw["folds"]) == 10 and raw["summary"]["test_mse"]["mean"] == variant.summary("test_mse").mean
    assert report["label_scale"] == 100.0 and report["num_frames"] == 800
    markdown = (out / "steering_cv.md").read_text()
    test = variant.summary("test_mse")
    assert f"| random frozen | {variant.summary('train_mse')} | {test} |" in markdown
    assert "| Always zero (baseline) |" in markdown and markdown.count("\n| 9 | 720-799 |") == 1
    assert str(test) == f"{test.mean:.2f} ± {test.std:.2f}"
