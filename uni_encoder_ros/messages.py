"""The core's message contents as rclpy messages (sensor_msgs, nav_msgs, ackermann_msgs, tf2_msgs).

The contents come from :mod:`uni_encoder_core.messages` (shared with rosbag replay); this module only fills
the rclpy message objects. Pixel buffers are copied once, into the message's ``array('B')``.
"""

from __future__ import annotations

import array
from functools import singledispatch

import numpy as np
from ackermann_msgs.msg import AckermannDriveStamped
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header as HeaderMsg
from tf2_msgs.msg import TFMessage

from uni_encoder_core.messages.images import CompressedFields, ImageFields, encode_compressed, encode_image
from uni_encoder_core.messages.outputs import CameraInfoFields, DriveFields, Header, OdometryFields, StampedImage


def header_fields(msg: HeaderMsg) -> Header:
    """Core header of an rclpy ``std_msgs/Header``."""
    return Header(msg.stamp.sec, msg.stamp.nanosec, msg.frame_id)


def header_message(header: Header) -> HeaderMsg:
    """rclpy ``std_msgs/Header`` of a core header."""
    return HeaderMsg(stamp=Time(sec=header.sec, nanosec=header.nanosec), frame_id=header.frame_id)


def _bytes(data: np.ndarray) -> array.array:
    buf = array.array("B")
    buf.frombytes(data)
    return buf


def image_message(content: ImageFields, header: HeaderMsg | None = None) -> Image:
    """``sensor_msgs/Image`` of image contents, with ``header`` when given."""
    msg = Image(height=content.height, width=content.width, encoding=content.encoding,
                is_bigendian=content.is_bigendian, step=content.step)
    msg.data = _bytes(content.data)
    if header is not None:
        msg.header = header
    return msg


def compressed_message(content: CompressedFields, header: HeaderMsg | None = None) -> CompressedImage:
    """``sensor_msgs/CompressedImage`` of compressed contents, with ``header`` when given."""
    msg = CompressedImage(format=content.format)
    msg.data = _bytes(content.data)
    if header is not None:
        msg.header = header
    return msg


@singledispatch
def to_message(content: object):
    """rclpy message of one output's contents (raises TypeError for anything else)."""
    raise TypeError(f"no ROS message for {type(content).__name__}")


@to_message.register
def _(content: StampedImage) -> Image:
    return image_message(content.image, header_message(content.header))


@to_message.register
def _(content: CameraInfoFields) -> CameraInfo:
    return CameraInfo(header=header_message(content.header), height=content.height, width=content.width,
                      k=content.k, r=content.r, p=content.p, distortion_model=content.distortion_model, d=content.d)


@to_message.register
def _(content: OdometryFields) -> Odometry:
    odom = Odometry(header=header_message(content.header), child_frame_id=content.child_frame_id)
    p = odom.pose.pose
    p.position.x, p.position.y, p.position.z = content.position
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = content.orientation
    odom.pose.covariance = content.pose_covariance
    tw = odom.twist.twist
    tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z = content.twist
    odom.twist.covariance = content.twist_covariance
    return odom


@to_message.register
def _(content: DriveFields) -> AckermannDriveStamped:
    cmd = AckermannDriveStamped(header=header_message(content.header))
    cmd.drive.steering_angle = content.steering_angle
    cmd.drive.steering_angle_velocity = content.steering_angle_velocity
    cmd.drive.speed = content.speed
    cmd.drive.acceleration = content.acceleration
    return cmd


def transform_message(odometry: OdometryFields) -> TFMessage:
    """/tf message of the odometry: ``header.frame_id`` -> ``child_frame_id``."""
    tf = TransformStamped(header=header_message(odometry.header), child_frame_id=odometry.child_frame_id)
    t, q = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z = odometry.position
    q.x, q.y, q.z, q.w = odometry.orientation
    return TFMessage(transforms=[tf])


def numpy_to_image(data: np.ndarray, encoding: str, header: HeaderMsg | None = None) -> Image:
    """``sensor_msgs/Image`` (little endian, no padding) of an array matching ``encoding``.

    Raises ``ImageError`` when the array does not fit the encoding.
    """
    return image_message(encode_image(data, encoding), header)


def rgb8_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", header: HeaderMsg | None = None,
                       quality: int = 95) -> CompressedImage:
    """Encode HxWx3 uint8 RGB as a jpeg or png ``CompressedImage``."""
    return compressed_message(encode_compressed(rgb, fmt, quality), header)
