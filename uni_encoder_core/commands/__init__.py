"""The ``uni-encoder`` subcommands: one thin module per command, registered in :data:`COMMANDS`.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code) and calls the
library; it is imported only when its command runs, so ``uni-encoder synth`` never loads rclpy and ``--help``
is instant. To add a command, write ``commands/<name>.py`` and add one line here.
"""

COMMANDS: dict[str, str] = {
    "init": "write a randomly initialised checkpoint and count its parameters",
    "train": "train one stage from a recipe (training/configs/*.yaml); resumable, also under torchrun",
    "export": "export the per-frame inference path to ONNX and check it with ONNX Runtime",
    "synth": "render the synthetic driving world to disk (npz frames, contact sheet, optional rosbag2)",
    "bench": "measure inference and training cost side by side",
    "demo": "run the perception node on a synthetic camera stream",
    "eval": "the paper's Tables II, III and IV for a checkpoint on a data set (text, JSON, PNG panels)",
    "replay": "run rosbag2 recordings through the node's pipeline without ROS: output bag, report, plots",
    "dataset": "build and inspect data: 'from-bag' (rosbag2 -> lane-keeping HDF5), 'show' (one sample, PNG or npz)",
}
"""Command name (also its module name in this package) -> one-line help."""
