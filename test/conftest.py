"""Test-wide settings: DDS stays on loopback in a private domain for every test that starts rclpy."""

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
