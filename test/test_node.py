"""perception_node over real rclpy + Fast DDS (loopback): the node runs in its own process, this one publishes.

Pure parts (steering limiter, frames, parameters) are checked directly; the DDS tests share one node process
and run in file order: stream -> window reset -> bad messages -> burst -> watchdog.
"""

import ast
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from perception_probe import OUTPUTS, ROOT, Probe, camera_image, stamp_of  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig  # noqa: E402
from uni_encoder_core.messages.frames import camera_in_base, camera_matrix, odometry_in_base  # noqa: E402
from uni_encoder_core.messages.images import image_to_numpy  # noqa: E402
from uni_encoder_core.messages.steering import CommandGate  # noqa: E402
from uni_encoder_ros.interface import OUTPUT_TOPICS, PARAMETERS  # noqa: E402
from uni_encoder_ros.mailbox import Mailbox  # noqa: E402
from uni_encoder_ros.messages import rgb8_to_compressed  # noqa: E402
from uni_encoder_ros.node_process import start_node, stop_node  # noqa: E402

H, W = 96, 256
CROP = 0.25
STABLE = (
    "checkpoint device precision input segmentation_tasks max_input_age max_frame_gap camera_height metric_scale "
    "crop_bottom wheelbase max_steering_angle max_steering_rate speed publish_tf autostart"
).split()


# ----------------------------------------------------------------------------- pure parts


def test_command_gate_clamps_angle_and_rate_from_the_last_command_sent():
    gate = CommandGate(max_angle=0.5, max_rate=0.4, max_step_time=0.5)
    assert gate.steer(0.9, 2.0, 10.0).angle == pytest.approx(0.2)  # from straight ahead, elapsed capped at 0.5 s
    assert gate.steer(0.9, 2.0, 10.5).angle == pytest.approx(0.4)
    assert gate.steer(0.9, 2.0, 11.0).angle == pytest.approx(0.5)  # clamped
    assert gate.steer(-0.2, 2.0, 5.0).angle == pytest.approx(0.5)  # time went backwards: no change allowed
    assert gate.steer(-0.2, 2.0, 5.1).angle == pytest.approx(0.46)


def test_camera_extrinsic_and_odometry_follow_rep_103():
    T = camera_in_base([1.2, 0.0, 1.5], [0.0, 0.0, 0.0])
    # optical z (forward) -> base x, optical x (right) -> base -y, optical y (down) -> base -z
    np.testing.assert_allclose(T[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    forward = np.eye(4)
    forward[:3, 3] = [0.0, 0.0, 2.0]  # camera moved 2 m along its optical axis
    np.testing.assert_allclose(odometry_in_base(forward, T)[:3, 3], [2.0, 0.0, 0.0], atol=1e-12)
    left_turn = np.eye(4)
    c, s = math.cos(0.1), math.sin(0.1)
    left_turn[:3, :3] = [[c, 0, -s], [0, 1, 0], [s, 0, c]]  # yaw left = rotation about optical -y
    yaw = odometry_in_base(left_turn, T)[:3, :3]
    assert math.atan2(yaw[1, 0], yaw[0, 0]) == pytest.approx(0.1)


def test_intrinsics_from_camera_info_or_the_parameter():
    info = CameraInfo(width=1024, height=384, k=[700.0, 0, 512, 0, 700.0, 192, 0, 0, 1])
    np.testing.assert_allclose(camera_matrix(192, 512, info, [0.5, 1.0, 0.5, 0.5]),
                               [[350, 0, 256], [0, 350, 96], [0, 0, 1]])
    np.testing.assert_allclose(camera_matrix(100, 200, None, [0.58, 1.92, 0.5, 0.5]),
                               [[116, 0, 100], [0, 192, 50], [0, 0, 1]])


def test_mailbox_keeps_the_newest_and_counts_overwrites():
    box = Mailbox()
    for i in range(5):
        box.put(i)
    assert box.take() == 4 and box.take() is None and box.dropped == 4


def test_parameter_file_documents_every_parameter():
    text = (ROOT / "config/perception.yaml").read_text()
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert set(params) == set(PARAMETERS)
    assert set(STABLE) <= set(PARAMETERS)
    lines = text.splitlines()
    for name, value in params.items():
        assert type(value) is type(PARAMETERS[name][0]), name  # noqa: E721
        assert value == PARAMETERS[name][0], f"{name}: file {value!r}, declared default {PARAMETERS[name][0]!r}"
        row = next(i for i, line in enumerate(lines) if line.startswith(f"    {name}:"))
        while lines[row - 1].strip() and not lines[row - 1].strip().startswith("#"):
            row -= 1  # parameters grouped under one comment
        assert lines[row - 1].strip().startswith("#"), f"{name} has no comment above it"


def test_launch_file_wraps_the_same_command():
    tree = ast.parse((ROOT / "launch/perception.launch.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"uni_encoder_ros", "perception_node", "perception.yaml", "checkpoint", "namespace"} <= strings
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)


# ----------------------------------------------------------------------------- over DDS

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch

    from uni_encoder_core.config import ModelConfig
    from uni_encoder_core.config_yaml import load_config
    from uni_encoder_core.models.checkpoint import save_checkpoint
    from uni_encoder_core.models.unified import UniEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(UniEncoder(load_config(ROOT / "config/model/tiny.yaml", ModelConfig)), path)
    return path


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(WorldConfig(height=H, width=W, num_frames=128))


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope="module")
def session(ros, checkpoint, tmp_path_factory):
    """One node process (autostart) and one probe for the stream tests.

    The probe sends each frame only after the previous one's depth came back; a DDS sample lost on a busy loopback
    is re-sent only after the writer's next heartbeat (about 3 s), so ``max_frame_gap`` is far above that: the
    window must restart only where a test makes it (the gap rule itself is tested in test_pipeline.py).
    ``max_input_age`` is well above a loaded machine's frame latency, so no steering command is withheld as stale
    (the age rule is what the watchdog test checks).
    """
    log = tmp_path_factory.mktemp("node") / "node.log"
    # a sample lost on a busy loopback is re-sent from the writer's history: the node keeps 5 per topic (enough on a
    # vehicle), the test a whole run's worth, as the demo's recorder does, so a late re-send still finds its sample
    deep = {f"qos_overrides./{topic}.publisher.depth": 100 for topic in OUTPUT_TOPICS}
    proc = start_node(log, {
        "checkpoint": str(checkpoint), "crop_bottom": CROP, "max_input_age": 6.0, "max_frame_gap": 30.0,
        "diagnostics_period": 0.5, "publish_tf": True, "speed": 3.0, **deep,
    })
    probe = Probe()
    try:
        started = probe.spin_until(lambda: probe.image.get_subscription_count() > 0 or proc.poll() is not None, 90)
        assert started and proc.poll() is None, f"node did not come up:\n{log.read_text()}"
        topics = [t for t in OUTPUTS if t != "/tf"]
        probe.spin_until(lambda: all(probe.node.count_publishers(t) > 0 for t in topics), 20)
        # let the node's writers match the probe's readers too (discovery is per direction; semantic_color is on
        # demand): a sample published before that is not delivered, and a loaded machine takes longer
        probe.spin_for(3.0)
        yield proc, probe, log
    finally:
        probe.close()
        stop_node(proc)


def send_and_wait(probe: Probe, msg: Image, timeout: float = 20.0) -> bool:
    """Publish one frame and wait until its depth output comes back."""
    probe.image.publish(msg)
    want = stamp_of(msg)
    return probe.spin_until(lambda: want in probe.stamps("depth"), timeout)


@pytest.mark.ros
def test_every_output_carries_the_input_header_and_steering_waits_for_16_frames(session, checkpoint, world):
    from uni_encoder_core.inference.pipeline import CameraFrame, PerceptionPipeline
    from uni_encoder_core.inference.settings import PipelineConfig

    proc, probe, log = session
    info = CameraInfo(width=W, height=H, k=world.K.reshape(-1).tolist())
    probe.camera_info.publish(info)
    sent = []
    for i in range(18):
        encoding, pad = [("rgb8", 0), ("bgr8", 5)][i % 2]
        msg = camera_image(world.frame(i).rgb, probe.now_stamp(), encoding, pad)
        assert send_and_wait(probe, msg), f"no output for frame {i}:\n{log.read_text()[-3000:]}"
        sent.append(stamp_of(msg))
    got = probe.got
    expected = {
        "depth": ("32FC1", 4), "segmentation/semantic": ("mono8", 1), "segmentation/instance": ("16UC1", 2),
        "segmentation/panoptic": ("32SC1", 4), "segmentation/semantic_color": ("rgb8", 3),
        "scene_flow": ("32FC3", 12), "motion_mask": ("mono8", 1), "odom": (), "/tf": (), "depth/camera_info": (),
    }
    # a loaded machine may take a while to deliver everything to this single-threaded probe
    probe.spin_until(lambda: all(sent[-1] in probe.stamps(topic) for topic in expected), 20)
    probe.spin_for(0.5)
    for topic, (encoding, bytes_per_pixel) in list(expected.items())[:7]:
        msgs = got[topic]
        assert msgs, f"nothing on {topic}"
        assert all(m.header.frame_id == "camera_optical" for m in msgs), topic
        assert all((m.height, m.width, m.encoding, m.step) == (H, W, encoding, W * bytes_per_pixel) for m in msgs)
        stamps = probe.stamps(topic)
        assert stamps == (sent[1:] if topic in ("scene_flow", "motion_mask") else sent), topic
    depth = image_to_numpy(got["depth"][-1])
    crop = round(H * CROP)
    assert np.isnan(depth[H - crop :]).all() and (depth[: H - crop] > 0).all()
    # depth is per frame (no metric scale, no temporal state): the in-process pipeline on the RGB of the last
    # (bgr8, padded) frame must give the published values
    local = PerceptionPipeline(PipelineConfig(checkpoint=str(checkpoint), crop_bottom=CROP, warmup_frames=0))
    np.testing.assert_allclose(depth, local.process(CameraFrame(world.frame(17).rgb, 0.0, world.K)).depth, rtol=1e-5)
    assert set(np.unique(image_to_numpy(got["motion_mask"][-1]))) <= {0, 255}
    assert (image_to_numpy(got["segmentation/semantic"][-1])[H - crop :] == 255).all()
    cam_info = got["depth/camera_info"][-1]
    assert probe.stamps("depth/camera_info") == sent and cam_info.header.frame_id == "camera_optical"
    np.testing.assert_allclose(np.reshape(cam_info.k, (3, 3)), world.K)  # camera_info wins over the parameter
    odom = got["odom"]
    assert [stamp_of(m) for m in odom] == sent
    assert all((m.header.frame_id, m.child_frame_id) == ("odom", "base_link") for m in odom)
    assert odom[0].pose.covariance[0] == 0.0 and odom[-1].pose.covariance[0] > odom[1].pose.covariance[0] > 0
    assert probe.stamps("/tf") == sent
    steering = [m for m in got["steering"] if m.drive.speed > 0]
    assert [stamp_of(m) for m in steering] == sent[15:], "steering from the 16th frame on, never before"
    for m in steering:
        assert m.header.frame_id == "base_link" and m.drive.speed == pytest.approx(3.0)
        assert abs(m.drive.steering_angle) <= 0.5 + 1e-6


@pytest.mark.ros
def test_stamp_going_backwards_restarts_the_window(session, world):
    _, probe, log = session
    before = set(probe.stamps("steering"))
    last = probe.stamps("depth")[-1]
    back = camera_image(world.frame(20).rgb, Time(nanoseconds=last - 300_000_000).to_msg())
    assert send_and_wait(probe, back)
    assert probe.fresh_diagnostics()["window_length"] == "1"
    after = []
    for i in range(15):
        msg = camera_image(world.frame(21 + i).rgb, probe.now_stamp())
        assert send_and_wait(probe, msg)
        after.append(stamp_of(msg))
    probe.spin_until(lambda: after[-1] in probe.stamps("steering"), 10)
    new_commands = [s for s in probe.stamps("steering") if s not in before and s in after]
    assert new_commands == [after[-1]], f"only the 16th frame after the reset may steer:\n{log.read_text()[-3000:]}"


@pytest.mark.ros
def test_bad_messages_are_rejected_and_counted_while_good_frames_flow(session, world):
    _, probe, _ = session
    rejected_before = int(probe.fresh_diagnostics()["frames_rejected"])
    good = world.frame(40).rgb
    bad = []
    m = camera_image(good, probe.now_stamp())
    m.encoding = "yuv422"
    bad.append(m)
    m = camera_image(good, probe.now_stamp())
    m.data = bytes(m.data)[: len(m.data) // 2]
    bad.append(m)
    m = camera_image(good, probe.now_stamp())
    m.step = W * 3 - 1
    bad.append(m)
    huge = Image(height=100000, width=100000, encoding="rgb8", step=300000, data=bytes(64))
    huge.header.stamp = probe.now_stamp()
    bad.append(huge)
    stamps = []
    for b in bad:
        probe.image.publish(b)
        probe.spin_for(0.2)
        msg = camera_image(good, probe.now_stamp())
        assert send_and_wait(probe, msg), "a good frame after a bad one must still be processed"
        stamps.append(stamp_of(msg))
    diag = probe.fresh_diagnostics()
    assert int(diag["frames_rejected"]) - rejected_before == 4
    assert "absurd dimensions 100000x100000" in diag["last_reject_reason"]
    assert set(stamps) <= set(probe.stamps("depth"))


@pytest.mark.ros
def test_a_burst_faster_than_inference_drops_frames_instead_of_queueing(session, world):
    _, probe, _ = session
    diag = probe.fresh_diagnostics()
    received0, processed0, dropped0, transport0 = (int(diag[k]) for k in (
        "frames_received", "frames_processed", "frames_dropped", "frames_dropped_in_transport"))
    frames = [world.frame(50 + i).rgb for i in range(50)]
    sent = []
    for rgb in frames:
        msg = camera_image(rgb, probe.now_stamp())
        probe.image.publish(msg)
        sent.append(stamp_of(msg))
    assert probe.spin_until(lambda: sent[-1] in probe.stamps("depth"), 30), "the newest frame must be processed"
    count = len(probe.got["depth"])
    probe.spin_for(1.5)
    assert len(probe.got["depth"]) == count, "no backlog: nothing arrives after the newest frame's output"
    outputs = len(set(sent) & set(probe.stamps("depth")))
    assert outputs < 50
    diag = probe.fresh_diagnostics()
    received = int(diag["frames_received"]) - received0
    processed = int(diag["frames_processed"]) - processed0
    dropped = int(diag["frames_dropped"]) - dropped0
    transport = int(diag["frames_dropped_in_transport"]) - transport0
    assert processed == outputs and dropped > 0
    assert processed + dropped == 50, "every frame of the burst is either processed or counted as dropped"
    assert received == processed + dropped - transport, "each frame that reached the node: processed or overwritten"


@pytest.mark.ros
def test_watchdog_commands_a_stop_and_reports_error(session):
    _, probe, _ = session
    last_angle = [m for m in probe.got["steering"] if m.drive.speed > 0][-1].drive.steering_angle
    n = len(probe.got["steering"])
    assert probe.spin_until(lambda: any(m.drive.speed == 0.0 for m in probe.got["steering"][n:]), 20)
    stop = next(m for m in probe.got["steering"][n:] if m.drive.speed == 0.0)
    assert stop.header.frame_id == "base_link" and stop.drive.steering_angle == pytest.approx(last_angle)
    diag = probe.fresh_diagnostics()
    assert diag["level"] == 2 and diag["message"].startswith("no valid steering command for")
    assert "no image for" in diag["message"]
    assert int(diag["stop_commands"]) > 0


@pytest.mark.ros
def test_missing_checkpoint_fails_configure_with_a_clear_log_line(ros, tmp_path):
    log = tmp_path / "node.log"
    proc = start_node(log, {"checkpoint": str(tmp_path / "missing.pt")}, name="broken_perception")
    try:
        code = proc.wait(90)
    finally:
        stop_node(proc)
    text = log.read_text()
    assert code == 1, text
    assert f"configure failed: cannot load checkpoint '{tmp_path / 'missing.pt'}'" in text
    assert "checkpoint file not found" in text


@pytest.mark.ros
def test_lifecycle_by_service_with_compressed_input(ros, checkpoint, world, tmp_path):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    log = tmp_path / "node.log"
    proc = start_node(log, {"checkpoint": str(checkpoint), "autostart": False, "input": "compressed",
                            "diagnostics_period": 0.5}, name="managed_perception")
    probe = Probe("lifecycle_probe", target="managed_perception")
    change = probe.node.create_client(ChangeState, "/managed_perception/change_state")
    get = probe.node.create_client(GetState, "/managed_perception/get_state")

    def call(client, request):
        future = client.call_async(request)
        assert probe.spin_until(future.done, 60), f"no answer from {client.srv_name}:\n{log.read_text()}"
        return future.result()

    def transition(tid):
        return call(change, ChangeState.Request(transition=Transition(id=tid))).success

    try:
        assert probe.spin_until(lambda: change.service_is_ready() and get.service_is_ready(), 90), log.read_text()
        assert call(get, GetState.Request()).current_state.label == "unconfigured"
        assert probe.fresh_diagnostics()["model_state"] == "unconfigured"
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert call(get, GetState.Request()).current_state.label == "active"
        assert probe.spin_until(lambda: probe.compressed.get_subscription_count() > 0, 30)
        msg = rgb8_to_compressed(world.frame(0).rgb, "jpeg", header=None)
        msg.header.stamp, msg.header.frame_id = probe.now_stamp(), "camera_optical"
        probe.compressed.publish(msg)
        assert probe.spin_until(lambda: stamp_of(msg) in probe.stamps("depth"), 30), log.read_text()
        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert call(get, GetState.Request()).current_state.label == "inactive"
        assert probe.spin_until(lambda: probe.compressed.get_subscription_count() == 0, 10)
        assert transition(Transition.TRANSITION_ACTIVATE)  # the model comes back from the released state
        msg.header.stamp = probe.now_stamp()
        probe.spin_until(lambda: probe.compressed.get_subscription_count() > 0, 30)
        probe.compressed.publish(msg)
        assert probe.spin_until(lambda: stamp_of(msg) in probe.stamps("depth"), 30), log.read_text()
    finally:
        probe.close()
        stop_node(proc)


@pytest.mark.ros
def test_demo_writes_the_results_folder(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "demo"
    # 4 Hz leaves a loaded machine time to process most frames, so the 16-frame steering window fills
    cmd = [sys.executable, "-m", "uni_encoder_core.cli", "demo", "--out", str(out), "--frames", "24", "--rate", "4",
           "--height", str(H), "--width", str(W)]
    env = {**os.environ, "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) + 100)}  # away from other tests' nodes
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    trained = (ROOT / "checkpoints" / "demo_tiny.pt").is_file()  # the committed demo model, else random weights
    assert ("RANDOM weights" in done.stderr) is not trained
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_published"] == 24 and summary["trained_weights"] is trained
    assert summary["frames_processed"] + summary["frames_dropped"] + summary["frames_rejected"] == 24
    assert summary["steering_commands"] > 0, summary
    assert summary["first_steering_frame"] >= 15 and summary["stop_commands_after_input_ended"] > 0
    stops = summary["stop_commands_while_window_filled"] + summary["stop_commands_after_input_ended"]
    assert summary["steering_commands"] + stops <= summary["outputs"]["steering"]
    assert summary["headers_match"] and set(summary["latency_ms"]) == {"p50", "p90", "p99"}
    for panel in summary["panels"]:
        assert (out / panel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"depth.png", "segmentation_semantic.png", "scene_flow.png", "odom.png", "steering.png"} <= set(
        summary["panels"])
    assert ("WARNING: random weights" in (out / "summary.md").read_text()) is not trained
    scores = summary["ground_truth"]
    assert 0 < scores["frames_scored"] <= 24
    if trained:  # the committed model on a drive it never saw beats the trivial baselines
        assert scores["depth_abs_rel"] < 0.8 * scores["depth_abs_rel_baseline"], scores
        assert scores["miou"] > 3 * scores["miou_baseline"], scores
    assert "## Against the ground truth" in (out / "summary.md").read_text()
