"""``uni-encoder dataset show``: one sample as the trainer sees it, as a PNG panel and as an npz of its arrays."""

import math

import cv2
import numpy as np
import pytest
from cityscapes_fixture import make_cityscapes
from kitti_fixture import DATE, DRIVE, make_kitti
from lane_keeping_fixture import write_recording

from uni_encoder_core.cli import main
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig


def show(capsys, *args):
    code = main(["dataset", "show", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory):
    return make_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def test_synthetic_triplet_arrays_are_the_worlds_frames_and_intrinsics(tmp_path, capsys):
    code, err = show(capsys, "--kind", "synthetic", "--frames", 6, "--seed", 2, "--height", 48, "--width", 96,
                     "--index", 1, "--out", tmp_path / "s.npz")
    assert code == 0, err
    arrays = np.load(tmp_path / "s.npz")
    assert set(arrays.files) == {"images", "K", "offsets", "depth", "T_target_to_source", "scene_flow", "motion_mask"}
    world = SyntheticWorld(WorldConfig(seed=2, height=48, width=96, num_frames=6))
    assert arrays["images"].shape == (3, 3, 48, 96) and arrays["offsets"].tolist() == [-1, 0, 1]
    for k, frame in enumerate((1, 2, 3)):  # index 1 targets frame 2
        assert np.array_equal(arrays["images"][k], world.frame(frame).rgb.transpose(2, 0, 1) / np.float32(255))
    f = 48 / math.tan(math.radians(40))
    assert np.allclose(arrays["K"], [[f, 0, 48], [0, f, 24], [0, 0, 1]])
    assert np.array_equal(arrays["depth"][0], world.frame(2).depth)


def test_cityscapes_sample_npz_has_cropped_images_and_hand_computed_intrinsics(cityscapes, tmp_path, capsys):
    code, err = show(capsys, "--kind", "cityscapes", "--root", cityscapes, "--no-augment", "--height", 8, "--width",
                     16, "--out", tmp_path / "c.npz")
    assert code == 0, err
    arrays = np.load(tmp_path / "c.npz")
    assert set(arrays.files) == {"images", "K", "offsets"} and arrays["images"].shape == (3, 3, 8, 16)
    # 4 bottom rows of 16 cut (K unchanged), then 12x32 -> 8x16: u' = s (u + 0.5) - 0.5
    assert np.allclose(arrays["K"], [[10.0, 0.0, 7.5], [0.0, 22.0 * 2 / 3, 4.5], [0.0, 0.0, 1.0]], atol=1e-5)
    assert np.allclose(arrays["images"][:, 0].mean(axis=(1, 2)) * 255, [0, 1, 2], atol=0.01)  # red = frame number
    code, err = show(capsys, "--kind", "cityscapes", "--root", cityscapes, "--role", "labelled", "--no-augment",
                     "--height", 6, "--width", 16, "--out", tmp_path / "l.npz")
    labelled = np.load(tmp_path / "l.npz")
    assert code == 0 and set(labelled.files) == {"images", "semantic", "instance", "panoptic"}
    assert labelled["images"].shape == (1, 3, 6, 16) and set(np.unique(labelled["panoptic"])) >= {13001, 13002}


def test_cityscapes_panel_png_shows_frames_maps_and_text(cityscapes, tmp_path, capsys):
    code, err = show(capsys, "--kind", "cityscapes", "--root", cityscapes, "--role", "depth_eval", "--split", "train",
                     "--height", 32, "--width", 64, "--out", tmp_path / "panel.png")
    assert code == 0, err
    panel = cv2.imread(str(tmp_path / "panel.png"))[..., ::-1]
    # a row of the two frames (offsets -2, 0) at 32x64, a row with the full-frame ground-truth depth fitted to that
    # size, then the text: title, image shape, the three rows of K
    frames, depth, text = panel[:32, :128], panel[32:64, :64], panel[64:]
    assert np.abs(frames[16:, :, 2].astype(int) - 200).max() <= 1  # fixture frames: blue 200 (top rows captioned)
    assert depth[28:, :16].any() and not depth[28:, 56:].any()  # valid disparity only in the left columns
    assert text.shape[0] >= 6 * 12 and (text > 160).all(-1).sum() > 100


def test_kitti_depth_eval_and_lane_keeping_windows(tmp_path, capsys):
    root = make_kitti(tmp_path / "kitti")
    (tmp_path / "train_files.txt").write_text(f"{DATE}/{DRIVE} 1 l\n")
    code, err = show(capsys, "--kind", "kitti", "--root", root, "--split-file", tmp_path / "{split}_files.txt",
                     "--role", "depth_eval", "--height", 8, "--width", 16, "--out", tmp_path / "k.npz")
    assert code == 0, err
    kitti = np.load(tmp_path / "k.npz")
    assert kitti["gt_depth"].shape == (1, 16, 32) and kitti["gt_depth"][0, 8, 14] == pytest.approx(10.31, abs=0.01)
    assert np.allclose(kitti["K"], [[10.0, 0.0, 7.5], [0.0, 11.0, 3.5], [0.0, 0.0, 1.0]])  # P_rect_02 halved
    write_recording(tmp_path / "drive.h5")
    code, err = show(capsys, "--kind", "lane_keeping", "--root", tmp_path / "drive.h5", "--no-augment", "--height", 8,
                     "--width", 16, "--out", tmp_path / "w.npz")
    assert code == 0, err
    window = np.load(tmp_path / "w.npz")
    assert set(window.files) == {"images", "curvature", "stamps"} and window["images"].shape == (16, 3, 8, 16)
    assert np.allclose(window["curvature"], np.arange(20, 36) / 1000)  # training folds start at chunk 1: frame 20


def test_training_samples_are_augmented_like_training_and_seeded(cityscapes, tmp_path, capsys):
    def sample(name, *extra):
        assert show(capsys, "--kind", "cityscapes", "--root", cityscapes, "--height", 8, "--width", 16, "--index", 3,
                    "--out", tmp_path / f"{name}.npz", *extra)[0] == 0
        return np.load(tmp_path / f"{name}.npz")

    plain = sample("plain", "--no-augment")
    drawn = [sample(f"seed{s}", "--seed", s) for s in range(4)]
    assert np.array_equal(sample("again", "--seed", 2)["images"], drawn[2]["images"])
    assert any(not np.array_equal(d["images"], plain["images"]) for d in drawn)  # colour jitter drawn


def test_errors_name_the_root_the_role_the_index_and_the_suffix(cityscapes, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, err = show(capsys, "--kind", "cityscapes", "--root", missing, "--out", tmp_path / "x.png")
    assert code == 2 and f"root {missing} does not exist" in err
    code, err = show(capsys, "--kind", "kitti", "--root", cityscapes, "--role", "steering", "--out", tmp_path / "x.png")
    assert code == 2 and "kitti data has roles triplets, depth_eval, not 'steering'" in err
    code, err = show(capsys, "--kind", "cityscapes", "--root", cityscapes, "--index", 84, "--out", tmp_path / "x.png")
    assert code == 2 and "index 84 outside 0..83" in err
    code, err = show(capsys, "--kind", "synthetic", "--frames", 4, "--out", tmp_path / "x.jpg")
    assert code == 2 and "must end in .png (panel) or .npz (arrays)" in err
    with pytest.raises(SystemExit) as exc:
        main(["dataset", "show", "--kind", "nuscenes", "--root", str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2 and "invalid choice: 'nuscenes'" in capsys.readouterr().err
