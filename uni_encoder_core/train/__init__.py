"""Training: the one training step (``objective``), the batch it takes (``batch``) and the steering cross-testing
stage (``steering_cv``)."""
