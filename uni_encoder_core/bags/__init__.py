"""ROS-free rosbag2 I/O through ``rosbags`` (no ROS install, no DDS).

``writer`` records the synthetic world; ``reader`` reads recordings (MCAP or SQLite3) in stamp order and reports
what it skips; ``steering`` pairs recorded steering with other stamps; ``output_bag``, ``replay`` and
``replay_report`` run recordings through the node's pipeline into an output bag and a report; ``to_dataset``
turns a recording into a lane-keeping HDF5 file.
"""
