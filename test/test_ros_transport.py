"""Real rclpy over Fast DDS on loopback: a peer process publishes, this process receives exact values."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from ackermann_msgs.msg import AckermannDriveStamped  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from ros_peer import known_image  # noqa: E402

pytestmark = pytest.mark.ros


def test_image_ackermann_and_tf_cross_dds_between_processes():
    rclpy.init()
    node = rclpy.create_node("transport_listener")
    got: dict[str, object] = {}
    node.create_subscription(Image, "image", lambda m: got.setdefault("image", m), 10)
    node.create_subscription(AckermannDriveStamped, "steering", lambda m: got.setdefault("cmd", m), 10)
    node.create_subscription(TFMessage, "tf", lambda m: got.setdefault("tf", m), 10)
    peer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("ros_peer.py")), "20"])
    try:
        deadline = time.monotonic() + 25
        while len(got) < 3 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        peer.terminate()
        peer.wait(10)
        node.destroy_node()
        rclpy.shutdown()
    assert set(got) == {"image", "cmd", "tf"}, f"received only {sorted(got)}"
    img = got["image"]
    assert (img.height, img.width, img.encoding, img.step) == (192, 512, "rgb8", 1536)
    assert img.header.frame_id == "camera_optical"
    pixels = np.frombuffer(bytes(img.data), np.uint8).reshape(192, 512, 3)
    np.testing.assert_array_equal(pixels, known_image())
    cmd = got["cmd"]
    assert cmd.header.frame_id == "base_link"
    assert cmd.drive.steering_angle == pytest.approx(0.125)
    assert cmd.drive.speed == pytest.approx(4.5)
    (tf,) = got["tf"].transforms
    assert (tf.header.frame_id, tf.child_frame_id) == ("odom", "base_link")
    assert tf.transform.translation.x == pytest.approx(1.5)


def test_generated_messages_match_upstream_fields():
    from ackermann_msgs.msg import AckermannDrive

    assert AckermannDrive.get_fields_and_field_types() == {
        "steering_angle": "float",
        "steering_angle_velocity": "float",
        "speed": "float",
        "acceleration": "float",
        "jerk": "float",
    }
    assert AckermannDriveStamped.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "drive": "ackermann_msgs/AckermannDrive",
    }
    assert TFMessage.get_fields_and_field_types() == {"transforms": "sequence<geometry_msgs/TransformStamped>"}
