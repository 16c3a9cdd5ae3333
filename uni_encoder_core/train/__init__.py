"""Staged training: the one training step (objective, batch), recipes, the learning-rate schedule, resumable data
order, run checkpoints and the loop."""
