"""Test-wide settings: DDS stays on loopback in a private domain for every test that starts rclpy; the `one_thread`
fixture for modules that time or train on a shared runner."""

import os

import pytest
import torch

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(20 + os.getpid() % 80))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core runner, two spinning OpenMP threads per process slow everything."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
