"""ROS-free rosbag2 I/O through ``rosbags`` (no ROS install, no DDS): ``writer`` records the synthetic world."""
