"""ROS-free message contents shared by the ROS node and rosbag replay, so that both publish the same messages.

``images`` decodes and encodes ``sensor_msgs/Image`` and ``CompressedImage`` fields, ``frames`` holds the camera
and odometry frame maths (REP 103/105), ``steering`` the command limiter and ``outputs`` turns a
``PerceptionResult`` into plain message-content dataclasses. Every function reads duck-typed messages (anything with
the message's field names: rclpy or ``rosbags`` objects alike) and never imports ROS.
"""
