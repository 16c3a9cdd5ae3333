"""uni-encoder core: the ROS-free library (models, losses, data, training, evaluation, inference)."""

__version__ = "0.1.0"
