"""``uni-encoder replay`` on recordings written by the test (MCAP and SQLite3; rgb8, bgr8 with padded rows, jpeg):
one output per frame per topic with the input stamps, steering MSE against an independent computation from the
output bag, damaged and out-of-order messages reported and skipped, window resets, byte-identical reruns, and
unreadable bags named in the error."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from bag_fixtures import ackermann, camera_info, curvature, image, jpeg, serialized, write_bag
from rosbags.rosbag2 import Reader

from uni_encoder_core.bags.output_bag import OUTPUT_TYPES
from uni_encoder_core.bags.reader import BagReader
from uni_encoder_core.bags.steering import read_steering
from uni_encoder_core.bags.writer import typestore
from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.inference.settings import load_node_parameters
from uni_encoder_core.models.checkpoint import save_checkpoint
from uni_encoder_core.models.unified import UniEncoder

ROOT = Path(__file__).resolve().parents[1]
H, W = 48, 96
K = np.array([[60.0, 0, 48], [0, 60.0, 24], [0, 0, 1]])
T0 = 100 * 10**9  # ns
WHEELBASE = 2.5
WINDOW = 4
STORE = typestore()
# Bag A: 14 camera messages at 10 Hz with a 1 s gap before #10; #4 truncated, #7 stamped before #6.
STAMPS_A = [T0 + i * 100_000_000 + (10**9 if i >= 10 else 0) for i in range(14)]
STAMPS_A[7] = STAMPS_A[6] - 50_000_000


def rgb_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def recorded_curvature(t_ns):
    return 0.02 * np.sin(3e-9 * (np.asarray(t_ns) - T0))


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    frames = rgb_frames(14)
    a = []
    for i, stamp in enumerate(STAMPS_A):
        record = T0 + i * 100_000_000 + (10**9 if i >= 10 else 0)  # recording order stays increasing
        msg = image(stamp, frames[i])
        a.append(("/cam/image", "sensor_msgs/msg/Image", record,
                  serialized(msg, "sensor_msgs/msg/Image")[:200] if i == 4 else msg))
        a.append(("/cam/info", "sensor_msgs/msg/CameraInfo", record, camera_info(stamp, K, H, W)))
    for t in range(T0 - 50_000_000, T0 + 2_500_000_000, 50_000_000):  # 20 Hz, no header: stamp = record time
        a.append(("/curvature", "std_msgs/msg/Float64", t, curvature(float(recorded_curvature(t)))))
    a.sort(key=lambda m: m[2])
    b = [("/cam/image", "sensor_msgs/msg/Image", T0 + i * 10**8, image(T0 + i * 10**8, f, "bgr8", pad=5))
         for i, f in enumerate(frames[:6])]
    b += [("/cam/info", "sensor_msgs/msg/CameraInfo", T0 + i * 10**8, camera_info(T0 + i * 10**8, K, H, W))
          for i in range(6)]
    b += [("/steer", "ackermann_msgs/msg/AckermannDriveStamped", T0 + i * 5 * 10**7,
           ackermann(T0 + i * 5 * 10**7, 0.01 * i, 3.0)) for i in range(14)]
    c = [("/cam/compressed", "sensor_msgs/msg/CompressedImage", T0 + i * 10**8, jpeg(T0 + i * 10**8, f))
         for i, f in enumerate(rgb_frames(6, seed=1))]
    return {"a": write_bag(root / "drive_a", "mcap", a),
            "b": write_bag(root / "drive_b", "sqlite3", sorted(b, key=lambda m: m[2])),
            "c": write_bag(root / "drive_c", "mcap", c)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = load_config(ROOT / "config/model/tiny.yaml", ModelConfig)
    cfg.steering.window = WINDOW
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(UniEncoder(cfg), path)
    return path


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "perception.yaml"
    path.write_text(yaml.safe_dump({"perception_node": {"ros__parameters": {"warmup_frames": 0,
                                                                            "max_steering_rate": 0.2}}}))
    return path


def replay(out, checkpoint, params, *bag_args):
    torch.set_num_threads(1)
    args = ["--debug", "replay", *bag_args, "--checkpoint", str(checkpoint), "--config", str(params), "--out",
            str(out)]
    assert main(args) == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, bags, checkpoint, params):
    out = tmp_path_factory.mktemp("replay") / "a"
    report = replay(out, checkpoint, params, "--bag", str(bags["a"]), "--image-topic", "/cam/image",
                    "--camera-info-topic", "/cam/info", "--curvature-topic", "/curvature", "--wheelbase",
                    str(WHEELBASE))
    return out, report


def read_bag(path):
    """topic -> [(record time ns, message)] of an output bag, read independently of the product's reader."""
    out = {}
    with Reader(path) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, STORE.deserialize_cdr(raw, conn.msgtype)))
        types = {c.topic: c.msgtype for c in reader.connections}
    return out, types


def stamp_ns(msg):
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_one_output_per_frame_per_topic_with_the_input_stamps(run_a):
    out, report = run_a
    messages, types = read_bag(out / "drive_a" / "bag")
    assert types == {f"/{t}": m for t, m in OUTPUT_TYPES.items()}
    accepted = [s for i, s in enumerate(STAMPS_A) if i not in (4, 7)]
    paired = [s for s in accepted if s not in (STAMPS_A[0], STAMPS_A[10])]  # a previous frame in the window
    for topic in OUTPUT_TYPES:
        if topic == "steering":
            continue
        expected = paired if topic in ("scene_flow", "motion_mask") else accepted
        got = messages[f"/{topic}"]
        assert [stamp_ns(m) for _, m in got] == expected, topic
        assert [t for t, _ in got] == expected  # recorded at the header stamp
    assert all(m.header.frame_id == "camera_optical_frame" for _, m in messages["/depth"])
    assert messages["/odom"][0][1].header.frame_id == "odom" and messages["/odom"][0][1].child_frame_id == "base_link"
    # the window (4 frames) fills after 4 accepted frames: 8 before the gap -> 5 commands, 4 after it -> 1
    assert [stamp_ns(m) for _, m in messages["/steering"]] == accepted[3:8] + accepted[11:]
    info = messages["/depth/camera_info"][0][1]
    np.testing.assert_allclose(info.k.reshape(3, 3), K)  # the recorded camera_info, not the default intrinsics
    depth = messages["/depth"][0][1]
    assert (depth.height, depth.width, depth.encoding) == (H, W, "32FC1")
    counts = report["bags"][0]["output_counts"]
    assert counts["/depth"] == 12 and counts["/steering"] == 6 and report["bags"][0]["processed"] == 12


def test_damaged_and_out_of_order_messages_are_reported_and_skipped(run_a):
    _, report = run_a
    rejected = {(r["topic"], r["index"]): r["reason"] for r in report["bags"][0]["rejected"]}
    assert sorted(rejected) == [("/cam/image", 4), ("/cam/image", 7), ("/cam/info", 7)]
    assert "undecodable sensor_msgs/msg/Image (200 bytes)" in rejected["/cam/image", 4]
    assert "is not after the previous one (100.600000 s)" in rejected["/cam/image", 7]
    resets = report["bags"][0]["resets"]
    assert len(resets) == 1 and "gap of 1.100 s" in resets[0]["reason"]
    assert resets[0]["stamp"] == pytest.approx(STAMPS_A[10] * 1e-9)


def test_steering_mse_equals_an_independent_computation_from_the_output_bag(run_a):
    out, report = run_a
    messages, _ = read_bag(out / "drive_a" / "bag")
    stamps = np.array([stamp_ns(m) for _, m in messages["/steering"]])
    predicted = np.tan([m.drive.steering_angle for _, m in messages["/steering"]]) / WHEELBASE
    grid = np.arange(T0 - 50_000_000, T0 + 2_500_000_000, 50_000_000)
    target = np.interp((stamps - T0) * 1e-9, (grid - T0) * 1e-9, recorded_curvature(grid))
    steering = report["bags"][0]["steering"]
    assert steering["matched"] == steering["predictions"] == 6
    assert steering["command_mse"] == pytest.approx(np.mean((predicted - target) ** 2), rel=1e-6)
    w = np.exp(0.1 * np.abs(target))
    assert steering["command_weighted_mse"] == pytest.approx(np.sum(w * (predicted - target) ** 2) / w.sum(), rel=1e-6)
    assert steering["head_mse"] > 0 and math.isfinite(steering["head_weighted_mse"])
    assert (out / "drive_a" / "steering.png").stat().st_size > 0 and (out / "drive_a" / "frames.png").exists()
    assert "| command (limited) |" in (out / "report.md").read_text()


def test_several_bags_sqlite3_bgr8_padded_and_jpeg_and_a_byte_identical_rerun(tmp_path, bags, checkpoint, params,
                                                                            run_a):
    report = replay(tmp_path / "many", checkpoint, params, "--bag", str(bags["a"]), "--bag", str(bags["b"]),
                    "--image-topic", "/cam/image", "--camera-info-topic", "/cam/info", "--wheelbase", str(WHEELBASE))
    first, _ = run_a  # the same bag and settings (the steering topic only adds the score)
    for name in ("metadata.yaml", "bag.mcap"):
        assert (tmp_path / "many/drive_a/bag" / name).read_bytes() == (first / "drive_a/bag" / name).read_bytes()
    # bgr8 with 5 padding bytes per row decodes to the same pixels as rgb8: the per-frame depth is identical
    a, _ = read_bag(first / "drive_a" / "bag")
    b, _ = read_bag(tmp_path / "many/drive_b/bag")
    assert bytes(b["/depth"][0][1].data) == bytes(a["/depth"][0][1].data)
    assert report["bags"][1]["processed"] == 6 and report["bags"][1]["rejected"] == []
    jpeg_report = replay(tmp_path / "jpeg", checkpoint, params, "--bag", str(bags["c"]), "--image-topic",
                         "/cam/compressed")
    c, _ = read_bag(tmp_path / "jpeg/drive_c/bag")
    assert len(c["/depth"]) == 6 and len(c["/steering"]) == 3 and jpeg_report["bags"][0]["steering"] is None
    fx = c["/depth/camera_info"][0][1].k[0]
    assert fx == pytest.approx(0.58 * W)  # no camera_info topic: the node's default intrinsics


def test_ackermann_steering_becomes_curvature_and_is_matched_by_stamp(bags):
    with BagReader(bags["b"]) as reader:
        series = read_steering(reader, "/steer", WHEELBASE)
    np.testing.assert_allclose(series.curvature, np.tan(0.01 * np.arange(14)) / WHEELBASE)
    queries = np.array([T0 + 125_000_000, T0 + 700_000_000, T0 + 710_000_000])
    values = series.at(queries, 0.05)
    assert values.matched.tolist() == [True, True, False]  # the last sample is at 0.65 s
    np.testing.assert_allclose(values.steering_angle[:2], [0.025, 0.13])  # interpolated; the last one held
    np.testing.assert_allclose(values.curvature[:2], np.tan([0.025, 0.13]) / WHEELBASE)
    np.testing.assert_allclose(values.speed[:2], 3.0)


def test_unreadable_or_missing_bags_fail_naming_the_bag(tmp_path, checkpoint, params, capsys, run_a):
    broken = tmp_path / "broken.mcap"
    broken.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 10)
    bad_dir = tmp_path / "bad_dir"
    bad_dir.mkdir()
    (bad_dir / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 8}\n")
    for bag, problem in ((broken, "not a readable rosbag2 bag"), (bad_dir, "not a readable rosbag2 bag"),
                         (tmp_path / "absent", "no such bag")):
        assert main(["replay", "--bag", str(bag), "--checkpoint", str(checkpoint), "--image-topic", "/cam/image",
                     "--out", str(tmp_path / "out")]) == 2
        assert capsys.readouterr().err.startswith(f"uni-encoder replay: {bag}: {problem}")
    assert not (tmp_path / "out").exists()
    assert main(["replay", "--bag", str(broken), "--checkpoint", str(checkpoint), "--image-topic", "/cam/image",
                 "--out", str(run_a[0])]) == 2  # a previous replay is never mixed with a new one
    assert "output directory is not empty" in capsys.readouterr().err


def test_parameter_file_blocks_and_the_node_output_topics(tmp_path):
    pipeline, node = load_node_parameters(ROOT / "config/perception.yaml")
    assert pipeline.warmup_frames == 2 and node.max_steering_angle == 0.5 and node.intrinsics == [0.58, 1.92, 0.5, 0.5]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"perception_node": {"ros__parameters": {"wheelbas": 2.0}}}))
    with pytest.raises(ConfigError, match="bad.yaml: unknown key 'wheelbas'"):
        load_node_parameters(bad)
    rclpy_interface = pytest.importorskip("uni_encoder_ros.interface")
    node_types = {t: f"{c.__module__.split('.')[0]}/msg/{c.__name__}" for t, c in rclpy_interface.OUTPUT_TOPICS.items()}
    assert node_types == OUTPUT_TYPES
