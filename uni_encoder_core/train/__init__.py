"""Training: the one training step (``objective``) and the batch it takes (``batch``)."""
