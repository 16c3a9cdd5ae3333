"""Lane-keeping HDF5 recordings: the documented layout written here with h5py, windows, folds, augmentations."""

import h5py
import numpy as np
import pytest
import torch
from lane_keeping_fixture import H, W, write_recording

from uni_encoder_core.config import AugmentConfig, DataConfig
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.lane_keeping import (
    LaneKeepingDataset,
    build_lane_keeping,
    chunk_windows,
    fold_chunks,
    per_image_standardization,
    recording_files,
    sample_weights,
)
from uni_encoder_core.data.samples import collate
from uni_encoder_core.errors import ConfigError


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("lane") / "drive.h5")


def test_tenfold_chunks_are_contiguous_and_windows_stay_inside():
    assert fold_chunks(200) == [(20 * k, 20 * k + 20) for k in range(10)]
    assert fold_chunks(25, 10)[:3] == [(0, 2), (2, 5), (5, 8)]
    assert chunk_windows((20, 40), 16) == [20, 21, 22, 23, 24]
    assert chunk_windows((20, 40), 16, stride=2) == [20, 22, 24]
    assert chunk_windows((0, 10), 16) == []


def test_held_out_chunk_shares_no_frame_with_training_windows(recording):
    train = LaneKeepingDataset([recording], (H, W), folds=[k for k in range(10) if k != 3])
    val = LaneKeepingDataset([recording], (H, W), folds=[3])
    assert len(train) == 9 * 5 and len(val) == 5
    used = {s + t for _, s in train.windows for t in range(16)}
    held = {s + t for _, s in val.windows for t in range(16)}
    assert held <= set(range(60, 80)) and not used & set(range(60, 80))
    window = val[2]
    assert window.images.shape == (16, 3, H, W)
    assert [round(float(v) * 255) for v in window.images[:, 0].mean(dim=(-1, -2))] == list(range(62, 78))
    assert torch.allclose(window.curvature, torch.arange(62, 78) / 1000.0)
    assert window.stamps.dtype == torch.float64 and float(window.stamps[0]) == pytest.approx(100.0 + 0.05 * 62)
    assert float(window.target) == pytest.approx(0.077)
    assert torch.allclose(val.targets(), torch.tensor([0.075, 0.076, 0.077, 0.078, 0.079]))
    assert collate([val[0], val[1]]).images.shape == (2, 16, 3, H, W)


def test_sample_weights_and_whitening_follow_their_formulas():
    y = torch.tensor([0.0, -0.1, 0.2])
    assert torch.allclose(sample_weights(y, 5.0), torch.tensor([1.0, np.exp(0.5), np.exp(1.0)]).float())
    image = torch.zeros(1, 3, 2, 4)
    image[..., 2:] = 1.0  # half 0, half 1: mean 0.5, std 0.5
    assert torch.allclose(per_image_standardization(image), image * 2 - 1)
    flat = torch.full((2, 3, 2, 4), 0.3)  # constant: std clamped to 1/sqrt(24), result 0
    assert torch.equal(per_image_standardization(flat), torch.zeros_like(flat))


def test_training_flip_negates_curvature_and_standardize_whitens(recording):
    flips = AugmentConfig(flip_probability=1.0, jitter_probability=0.0, shadow_probability=0.0)
    data = LaneKeepingDataset([recording], (H, W), folds=[0], augment=flips, standardize=True)
    window = data[0]
    assert torch.allclose(window.curvature, -torch.arange(0, 16) / 1000.0)
    means = window.images.flatten(1).mean(1)
    assert torch.allclose(means, torch.zeros(16), atol=1e-5)


def test_builder_splits_folds_and_checks_settings(recording):
    cfg = DataConfig(kind="lane_keeping", root=str(recording.parent), height=H, width=W, crop_bottom=0.0, fold=9)
    train, val = build_lane_keeping(cfg, "steering", "train"), build_lane_keeping(cfg, "steering", "val")
    assert len(train) == 45 and len(val) == 5 and val.augment is None and train.augment is cfg.augment
    assert recording_files(recording.parent) == [recording]
    with pytest.raises(ConfigError, match="fold 10 outside 0..9"):
        build_lane_keeping(DataConfig(kind="lane_keeping", root=str(recording), fold=10), "steering", "train")
    with pytest.raises(ConfigError, match="role steering, not 'triplets'"):
        build_lane_keeping(cfg, "triplets", "train")


def test_layout_errors_name_the_file_and_the_dataset(tmp_path):
    missing = write_recording(tmp_path / "a.h5", curvature=None)
    with pytest.raises(DataError, match=f"{missing}: no 'curvature' dataset"):
        LaneKeepingDataset([missing], (H, W), folds=[0])
    backwards = write_recording(tmp_path / "b.h5", timestamps=np.r_[np.arange(100.0), np.arange(100.0)])
    with pytest.raises(DataError, match=f"{backwards}: 'timestamps' must increase, but frame 100"):
        LaneKeepingDataset([backwards], (H, W), folds=[0])
    wrong_unit = write_recording(tmp_path / "c.h5")
    with h5py.File(wrong_unit, "a") as fh:
        fh["curvature"].attrs["unit"] = "rad"
    with pytest.raises(DataError, match=f"{wrong_unit}: 'curvature' has unit 'rad', expected '1/m'"):
        LaneKeepingDataset([wrong_unit], (H, W), folds=[0])
    (tmp_path / "d.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="d.h5: not a readable HDF5 file"):
        LaneKeepingDataset([tmp_path / "d.h5"], (H, W), folds=[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}: no lane-keeping recordings"):
        recording_files(tmp_path / "empty")
    with pytest.raises(DataError, match=f"{tmp_path / 'absent'} does not exist"):
        recording_files(tmp_path / "absent")
