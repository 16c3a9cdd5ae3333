"""Staged training: the one training step (objective, batch), recipes, the learning-rate schedule, resumable data
order, run checkpoints and the loop; the steering stage's tenfold cross-testing (steering_cv, steering_folds,
feature_cache, steering_report)."""
