"""Staged training: recipes, the learning-rate schedule, resumable data order, run checkpoints, the loop."""
