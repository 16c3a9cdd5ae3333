"""The node's safety contract over real rclpy + Fast DDS: parameters refused with the reason, a watchdog that future
stamps, simulated time without /clock and lifecycle races cannot blind or kill, and a fuzz of malformed messages
that is counted message by message. One node process serves the DDS tests, in file order."""

import math
import re

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from perception_probe import Probe, camera_image, stamp_of  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402

from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig  # noqa: E402
from uni_encoder_ros.interface import check_parameter, check_parameters  # noqa: E402
from uni_encoder_ros.node_process import start_node, stop_node  # noqa: E402

H, W = 96, 256
NAME = "safety_perception"
AGE = 2  # max_input_age, given as an integer on purpose


def test_parameters_are_typed_and_ranged_with_the_reason():
    assert check_parameter("max_input_age", 1) == 1.0 and isinstance(check_parameter("max_input_age", 1), float)
    assert check_parameter("intrinsics", [1, 2, 0.5, 0.5]) == [1.0, 2.0, 0.5, 0.5]
    for name, value, reason in [
        ("max_input_age", "abc", "max_input_age must be a finite number, got 'abc'"),
        ("max_input_age", 0.0, "max_input_age must be in [0.05, 60.0], got 0.0"),
        ("max_steering_angle", -0.5, "max_steering_angle must be in [0.001, 1.5], got -0.5"),
        ("max_steering_rate", -0.5, "max_steering_rate must be in [0.001, 10.0], got -0.5"),
        ("wheelbase", math.nan, "wheelbase must be a finite number, got nan"),
        ("speed", math.nan, "speed must be a finite number, got nan"),
        ("max_input_pixels", 1.5, "max_input_pixels must be an integer"),
        ("publish_tf", 1, "publish_tf must be true or false"),
        ("input", "rtsp", "input must be one of raw, compressed, got 'rtsp'"),
        ("camera_xyz", [0.0, math.inf, 1.0], "camera_xyz must be 3 finite numbers"),
    ]:
        with pytest.raises(ValueError) as err:
            check_parameter(name, value)
        assert str(err.value).startswith(reason)
    with pytest.raises(ValueError, match="speed -1.0 < 0 .visual-odometry speed. needs metric_scale: true"):
        check_parameters({"speed": -1, "metric_scale": False})


# ----------------------------------------------------------------------------- over DDS


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.mark.ros
def test_an_invalid_parameter_at_start_up_fails_configure_with_the_reason(ros, tmp_path):
    log, params = tmp_path / "node.log", tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    max_input_age: abc\n")
    proc = start_node(log, {}, name="misconfigured_perception", params_file=params)
    try:
        code = proc.wait(60)
    finally:
        stop_node(proc)
    text = log.read_text()
    assert code == 1, text
    assert f"configure failed: invalid parameter: {params}: max_input_age must be a finite number, got 'abc'" in text


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch
    from perception_probe import ROOT

    from uni_encoder_core.config import ModelConfig
    from uni_encoder_core.config_yaml import load_config
    from uni_encoder_core.models.checkpoint import save_checkpoint
    from uni_encoder_core.models.unified import UniEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(UniEncoder(load_config(ROOT / "config/model/tiny.yaml", ModelConfig)), path)
    return path


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WorldConfig(height=H, width=W, num_frames=64))


@pytest.fixture(scope="module")
def session(ros, checkpoint, tmp_path_factory):
    """One node (autostart) whose image and camera_info subscriptions are reliable with a deep history, so that
    every message sent reaches a callback and the counters can be checked one by one."""
    log = tmp_path_factory.mktemp("node") / "node.log"
    deep = {f"qos_overrides./{t}.subscription.{k}": v for t in ("image", "camera_info")
            for k, v in (("reliability", "reliable"), ("depth", 400))}
    proc = start_node(log, {"checkpoint": str(checkpoint), "max_input_age": AGE, "max_frame_gap": 30.0,
                            "diagnostics_period": 0.3, "warmup_frames": 0, **deep}, name=NAME)
    probe = Probe("safety_probe", target=NAME)
    try:
        up = probe.spin_until(lambda: probe.image.get_subscription_count() > 0 or proc.poll() is not None, 90)
        assert up and proc.poll() is None, f"node did not come up:\n{log.read_text()}"
        probe.spin_until(lambda: probe.node.count_publishers("steering") > 0, 20)
        probe.spin_for(0.5)
        yield proc, probe, log
    finally:
        probe.close()
        stop_node(proc)


def call(probe, client, request, log):
    future = client.call_async(request)
    assert probe.spin_until(future.done, 60), f"no answer from {client.srv_name}:\n{log.read_text()[-3000:]}"
    return future.result()


def set_parameter(probe, log, name, value):
    client = probe.node.create_client(SetParameters, f"/{NAME}/set_parameters")
    try:
        assert probe.spin_until(client.service_is_ready, 30)
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return call(probe, client, request, log).results[0]
    finally:
        probe.node.destroy_client(client)


def counters(probe):
    diag = probe.fresh_diagnostics()
    return diag, {k: int(v) for k, v in diag.items() if isinstance(v, str) and v.isdigit()}


def good_frame(probe, world, i, ahead=0.0):
    stamp = Time(nanoseconds=probe.node.get_clock().now().nanoseconds + int(ahead * 1e9)).to_msg()
    return camera_image(world.frame(i % 64).rgb, stamp)


@pytest.mark.ros
def test_runtime_parameter_changes_are_checked(session):
    proc, probe, log = session
    for name, value, reason in [
        ("max_input_age", "abc", "max_input_age must be a finite number, got 'abc'"),
        ("max_input_age", 0.0, "max_input_age must be in [0.05, 60.0]"),
        ("max_steering_angle", -0.5, "max_steering_angle must be in [0.001, 1.5]"),
        ("speed", -1.0, "needs metric_scale: true"),
    ]:
        result = set_parameter(probe, log, name, value)
        assert not result.successful and reason in result.reason, (name, value, result.reason)
    assert set_parameter(probe, log, "max_steering_rate", 1).successful  # an int for a float parameter
    assert proc.poll() is None


def malformed_image(rng, kind, probe, world):
    msg = good_frame(probe, world, 0)
    if kind == 0:
        msg.encoding = str(rng.choice(["yuv422", "", "RGB8", "bayer_rggb8", "32FC1", "mono16"]))
    elif kind == 1:
        msg.data = bytes(msg.data)[: len(msg.data) - int(rng.integers(1, len(msg.data)))]
    elif kind == 2:
        msg.step = int(rng.integers(0, W * 3))
    elif kind == 3:
        msg.height, msg.width = int(rng.integers(20000, 2**32)), int(rng.integers(1, 2**32))
        msg.data = bytes(int(rng.integers(0, 64)))
    elif kind == 4:
        msg.header.stamp.sec = int(rng.integers(-2**31, 0))
    elif kind == 5:
        msg.header.stamp.nanosec = int(rng.integers(1_000_000_000, 2**32))
    elif kind == 6:
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
    else:
        msg.header.stamp.sec += int(rng.integers(10, 10**6))  # camera clock ahead
    return msg


def malformed_camera_info(rng, kind):
    k = [500.0, 0, 128, 0, 500.0, 48, 0, 0, 1]
    info = CameraInfo(width=W, height=H)
    if kind == 0:
        k = [0.0] * 9
    elif kind == 1:
        k[int(rng.choice([0, 2, 4, 5]))] = float(rng.choice([math.nan, math.inf, -math.inf]))
    elif kind == 2:
        k[0] = -float(rng.uniform(1, 1000))
    elif kind == 3:
        k[8] = 0.0
    elif kind == 4:
        info.width = 0
    else:
        info.roi.x_offset, info.roi.width, info.roi.height = 200, 100, 50
    info.k = k
    return info


@pytest.mark.ros
def test_fuzz_and_a_negative_stamp_end_nothing_and_every_rejection_is_counted(session, world):
    proc, probe, log = session
    _, before = counters(probe)
    rng = np.random.default_rng(7)
    kinds = [int(k) for k in rng.integers(0, 8, 300)]
    negative = good_frame(probe, world, 0)
    negative.header.stamp.sec = -1
    probe.image.publish(negative)
    for i, kind in enumerate(kinds):
        probe.image.publish(malformed_image(rng, kind, probe, world))
        if i % 3 == 0:
            probe.camera_info.publish(malformed_camera_info(rng, i % 6))
        probe.spin_for(0.005)
    last = good_frame(probe, world, 1)
    probe.image.publish(last)
    assert probe.spin_until(lambda: stamp_of(last) in probe.stamps("depth"), 60), log.read_text()[-3000:]
    diag, after = counters(probe)
    assert proc.poll() is None
    assert after["frames_received"] - before["frames_received"] == 302, diag
    assert after["frames_rejected"] - before["frames_rejected"] == 301, diag
    assert after["frames_stamped_ahead"] - before["frames_stamped_ahead"] == kinds.count(7), diag
    assert after["camera_info_rejected"] - before["camera_info_rejected"] == 100, diag
    assert after["internal_errors"] == 0 and after["frames_processed"] - before["frames_processed"] == 1, diag


@pytest.mark.ros
def test_future_stamps_cannot_blind_the_watchdog(session, world):
    proc, probe, log = session

    def steering():
        return [m for m in probe.got["steering"] if m.drive.speed > 0]

    for i in range(60):  # fill the 16-frame window until commands go out
        msg = good_frame(probe, world, 2 + i)
        probe.image.publish(msg)
        assert probe.spin_until(lambda m=msg: stamp_of(m) in probe.stamps("depth"), 30), log.read_text()[-3000:]
        if steering():
            break
    assert steering(), "no steering command after 60 frames"
    n = len(probe.got["steering"])
    _, before = counters(probe)
    # the camera clock jumps an hour ahead: frames keep coming, none may count as fresh
    found = False
    for i in range(80):
        probe.image.publish(good_frame(probe, world, i, ahead=3600.0))
        probe.spin_for(0.1)
        found = any(m.drive.speed == 0.0 for m in probe.got["steering"][n:])
        if found and i >= 10 * AGE:
            break
    assert found, "no stop command while every frame is stamped an hour ahead"
    assert all(m.drive.speed == 0.0 for m in probe.got["steering"][n + 2:]), "steering went out for future frames"
    diag, after = counters(probe)
    assert diag["level"] == 2 and diag["message"].startswith("no valid steering command for"), diag
    assert re.search(r"camera clock ahead by 3[56]\d\d\.\d{3} s", diag["message"]), diag
    assert after["frames_stamped_ahead"] > before["frames_stamped_ahead"] and after["stop_commands"] > 0


@pytest.mark.ros
def test_deactivate_activate_while_streaming_never_kills_the_node(session, world):
    proc, probe, log = session
    change = probe.node.create_client(ChangeState, f"/{NAME}/change_state")
    get = probe.node.create_client(GetState, f"/{NAME}/get_state")
    assert probe.spin_until(lambda: change.service_is_ready() and get.service_is_ready(), 30)
    frame = [0]

    def stream():
        frame[0] += 1
        probe.image.publish(good_frame(probe, world, frame[0]))

    timer = probe.node.create_timer(1 / 15, stream)
    try:
        for tid in [Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_ACTIVATE] * 20:
            result = call(probe, change, ChangeState.Request(transition=Transition(id=tid)), log)
            assert result.success and proc.poll() is None, log.read_text()[-3000:]
            probe.spin_for(0.05)
    finally:
        probe.node.destroy_timer(timer)
    assert call(probe, get, GetState.Request(), log).current_state.label == "active"
    msg = good_frame(probe, world, 3)
    probe.image.publish(msg)
    assert probe.spin_until(lambda: stamp_of(msg) in probe.stamps("depth"), 60), log.read_text()[-3000:]
    _, after = counters(probe)
    assert after["internal_errors"] == 0 and proc.poll() is None


@pytest.mark.ros
def test_simulated_time_without_clock_keeps_watchdog_and_diagnostics_running(session, world):
    proc, probe, log = session
    assert set_parameter(probe, log, "use_sim_time", True).successful
    try:
        n_diag, n_cmd = len(probe.got["/diagnostics"]), len(probe.got["steering"])
        for i in range(30):  # 3 s of frames: none may steer, stop commands and diagnostics must keep coming
            probe.image.publish(good_frame(probe, world, i))
            probe.spin_for(0.1)
        probe.spin_until(lambda: len(probe.got["steering"]) > n_cmd + 5, 10)
        diag = probe.fresh_diagnostics()
        assert len(probe.got["/diagnostics"]) - n_diag >= 3
        new = probe.got["steering"][n_cmd:]
        assert len(new) > 5 and all(m.drive.speed == 0.0 for m in new)
        assert "use_sim_time is true but nothing arrived on /clock" in diag["clock_warning"], diag
        assert "node clock has no time yet" in diag["last_reject_reason"], diag
        assert diag["level"] == 2 and proc.poll() is None
    finally:
        assert set_parameter(probe, log, "use_sim_time", False).successful
