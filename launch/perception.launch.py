"""Start perception_node with the shipped parameters: ``ros2 launch uni_encoder_ros perception.launch.py``.

A thin wrapper of the command that the tests run directly (launch_ros is not on PyPI):
    perception_node --ros-args --params-file config/perception.yaml -p checkpoint:=FILE -r image:=TOPIC
Arguments: ``checkpoint`` (overrides the file's value when given), ``params_file``, ``namespace``,
``image`` / ``camera_info`` (remaps of the input topics) and ``use_sim_time`` (for bag replay).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def _node(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    parameters = [arg("params_file"), {"use_sim_time": arg("use_sim_time").lower() == "true"}]
    if arg("checkpoint"):
        parameters.append({"checkpoint": arg("checkpoint")})
    return [
        Node(
            package="uni_encoder_ros",
            executable="perception_node",
            name="perception_node",
            namespace=arg("namespace"),
            parameters=parameters,
            remappings=[("image", arg("image")), ("image/compressed", arg("image") + "/compressed"),
                        ("camera_info", arg("camera_info"))],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    """Launch arguments and the node."""
    default_params = os.path.join(get_package_share_directory("uni_encoder_ros"), "config", "perception.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("checkpoint", default_value="", description="model checkpoint (.pt)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="perception.yaml to use"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("image", default_value="image", description="camera image topic"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="camera info topic"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        OpaqueFunction(function=_node),
    ])
