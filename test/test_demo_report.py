"""The demo's scores against the synthetic world's ground truth: known outputs in, known numbers out."""

import numpy as np
import pytest
from ackermann_msgs.msg import AckermannDriveStamped

from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.messages.images import encode_image
from uni_encoder_core.messages.outputs import Header
from uni_encoder_ros.demo_report import ground_truth_lines, ground_truth_scores
from uni_encoder_ros.messages import header_message, image_message

WORLD = SyntheticWorld(WorldConfig(seed=1000, height=32, width=64, num_frames=6))


def outputs(depth_scale: float, semantic_of, moving_of, angle_of) -> tuple[dict[str, list], dict[float, int]]:
    """The node's messages for every frame of WORLD, made from its ground truth; stamps 1 s apart."""
    got = {t: [] for t in ("depth", "segmentation/semantic", "motion_mask", "steering")}
    index_of = {}
    for i in range(WORLD.cfg.num_frames):
        f = WORLD.frame(i)
        index_of[float(10 + i)] = i
        header = header_message(Header(10 + i, 0, "camera_optical"))
        depth = np.where(f.depth > 0, f.depth * depth_scale, np.nan).astype(np.float32)  # sky: no depth
        got["depth"].append((0.0, image_message(encode_image(depth, "32FC1"), header)))
        got["segmentation/semantic"].append((0.0, image_message(encode_image(semantic_of(f), "mono8"), header)))
        got["motion_mask"].append((0.0, image_message(encode_image(moving_of(f), "mono8"), header)))
        drive = AckermannDriveStamped(header=header)
        drive.drive.steering_angle, drive.drive.speed = angle_of(i), 5.0
        got["steering"].append((0.0, drive))
    return got, index_of


def test_outputs_equal_to_the_ground_truth_score_perfectly_and_beat_every_baseline():
    got, index_of = outputs(3.0, lambda f: f.semantic.astype(np.uint8),
                            lambda f: f.motion_mask.astype(np.uint8) * 255, WORLD.steering_angle)
    scores = ground_truth_scores(got, index_of, WORLD)
    assert scores["frames_scored"] == 6
    assert scores["depth_abs_rel"] == pytest.approx(0.0, abs=1e-6)  # a scaled depth is perfect after median scaling
    assert scores["miou"] == pytest.approx(1.0) and scores["steering_rmse_deg"] == pytest.approx(0.0, abs=1e-5)
    assert scores["depth_abs_rel_baseline"] > 0.3 and scores["miou_baseline"] < 0.2
    truth = np.array([WORLD.steering_angle(i) for i in range(6)])
    assert scores["steering_rmse_deg_baseline"] == pytest.approx(np.degrees(np.sqrt(np.mean(truth**2))), rel=1e-5)
    moving = sum(WORLD.frame(i).motion_mask.any() for i in range(6))
    assert scores["motion_f1"] == (1.0 if moving else 0.0)
    assert "| depth | abs_rel (median-scaled) | 0.000 |" in "\n".join(ground_truth_lines(scores))


def test_wrong_outputs_score_as_the_metrics_say():
    road = 0
    got, index_of = outputs(1.0, lambda f: np.full(f.semantic.shape, road, np.uint8),
                            lambda f: np.full(f.motion_mask.shape, 255, np.uint8), lambda i: 0.1)
    scores = ground_truth_scores(got, index_of, WORLD)
    labels = np.stack([WORLD.frame(i).semantic for i in range(6)])
    present = [c for c in np.unique(labels) if c != 255]
    road_iou = np.sum(labels == road) / np.sum(labels != 255)
    assert scores["miou"] == pytest.approx(road_iou / len(present))
    truth = np.array([WORLD.steering_angle(i) for i in range(6)])
    assert scores["steering_rmse_deg"] == pytest.approx(np.degrees(np.sqrt(np.mean((0.1 - truth) ** 2))), rel=1e-5)
    masks = np.stack([WORLD.frame(i).motion_mask for i in range(6)])
    assert scores["motion_f1"] == pytest.approx(2 * masks.sum() / (2 * masks.sum() + (~masks).sum()))


@pytest.mark.parametrize("args, message", [
    (["--frames", "0"], "--frames must be at least 2 camera frames, got 0"),
    (["--seed", "-1"], "--seed must be non-negative, got -1"),
    (["--rate", "0"], "--rate must be in (0, 100] Hz, got 0.0"),
    (["--checkpoint", "/nonexistent/model.pt"], "/nonexistent/model.pt"),
])
def test_demo_refuses_bad_arguments_in_one_line_before_anything_starts(tmp_path, capsys, args, message):
    from uni_encoder_core.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # no half-made results folder, no node log


def test_demo_refuses_a_non_empty_out_without_overwrite(tmp_path, capsys):
    from uni_encoder_core.cli import main

    (tmp_path / "old.txt").write_text("previous results")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "old.txt").read_text() == "previous results"
