"""ament_python package installing the ROS-free core library and the ROS 2 node."""

from glob import glob

from setuptools import find_packages, setup

package_name = "uni_encoder_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["uni_encoder_core", "uni_encoder_core.*", "uni_encoder_ros", "uni_encoder_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/config/model", glob("config/model/*.yaml")),
        ("share/" + package_name + "/training/configs", glob("training/configs/*.yaml")),
        ("share/" + package_name + "/training/configs/synthetic", glob("training/configs/synthetic/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="uni-encoder maintainers",
    maintainer_email="uni-encoder@example.com",
    description="Unified multi-task encoder for driving perception and steering, with a ROS 2 node.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "perception_node = uni_encoder_ros.node:main",
            "uni-encoder = uni_encoder_core.cli:main",
        ],
    },
)
