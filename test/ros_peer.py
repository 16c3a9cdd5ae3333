"""A separate-process rclpy node that publishes a known Image, AckermannDriveStamped and TFMessage.

Run as ``python test/ros_peer.py SECONDS``; it publishes at 20 Hz until the time is up.
"""

import sys
import time

import numpy as np
import rclpy
from ackermann_msgs.msg import AckermannDriveStamped
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage


def known_image() -> np.ndarray:
    """192x512 rgb8 test pattern: R = column % 256, G = row, B = 7."""
    rows, cols = np.mgrid[0:192, 0:512]
    return np.stack([cols % 256, rows, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def main() -> None:
    duration = float(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("transport_peer")
    pub_img = node.create_publisher(Image, "image", 10)
    pub_cmd = node.create_publisher(AckermannDriveStamped, "steering", 10)
    pub_tf = node.create_publisher(TFMessage, "tf", 10)
    img = Image(height=192, width=512, encoding="rgb8", step=512 * 3, data=known_image().tobytes())
    img.header.frame_id = "camera_optical"
    cmd = AckermannDriveStamped()
    cmd.header.frame_id = "base_link"
    cmd.drive.steering_angle = 0.125
    cmd.drive.speed = 4.5
    tf = TransformStamped()
    tf.header.frame_id = "odom"
    tf.child_frame_id = "base_link"
    tf.transform.translation.x = 1.5
    tf.transform.rotation.w = 1.0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        stamp = node.get_clock().now().to_msg()
        img.header.stamp = cmd.header.stamp = tf.header.stamp = stamp
        pub_img.publish(img)
        pub_cmd.publish(cmd)
        pub_tf.publish(TFMessage(transforms=[tf]))
        time.sleep(0.05)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
