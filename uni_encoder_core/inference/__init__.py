"""Inference: the per-frame perception pipeline and its export."""
