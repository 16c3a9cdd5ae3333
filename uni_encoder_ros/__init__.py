"""uni-encoder ROS 2 interface: the perception node, message conversions and rosbag replay."""
