"""uni-encoder ROS 2 interface: the perception node, rclpy message wrapping, diagnostics and the demo."""
