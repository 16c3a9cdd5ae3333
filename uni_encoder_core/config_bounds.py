"""Sane bounds of the model configuration: sizes, list lengths and cross-field rules, checked on every load.

Keyed by the config dataclasses' names (``uni_encoder_core.config``), so this module imports none of them and
adding a field there never touches it. ``check_config`` walks a config and its nested configs and raises
``ConfigError`` naming the source, the dotted key, the rule and the value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from uni_encoder_core.errors import ConfigError

SIZE_BOUNDS: dict[str, dict[str, tuple[int, int, int]]] = {
    "ModelConfig": {"height": (32, 4096, 32), "width": (32, 4096, 32)},
    "EncoderConfig": {"in_chans": (1, 16, 1), "embed_dim": (8, 1024, 1), "depths": (1, 32, 1), "num_heads": (1, 64, 1)},
    "DepthConfig": {"channels": (1, 1024, 1)},
    "PoseConfig": {"channels": (1, 2048, 1), "head_channels": (1, 2048, 1)},
    "MotionConfig": {"channels": (1, 1024, 1)},
    "SegmentationConfig": {
        "num_classes": (1, 1000, 1), "hidden_dim": (64, 2048, 64), "num_queries": (1, 1000, 1),
        "decoder_layers": (1, 32, 1), "encoder_layers": (1, 32, 1), "encoder_feedforward_dim": (1, 16384, 1),
        "query_decoder_layers": (1, 32, 1), "num_heads": (1, 64, 1), "dim_feedforward": (1, 16384, 1),
        "text_context_length": (1, 1024, 1), "max_seq_len": (1, 1024, 1), "text_encoder_layers": (1, 32, 1),
        "text_context_queries": (0, 999, 1), "train_num_points": (1, 1_000_000, 1),
    },
    "SteeringConfig": {"window": (1, 256, 1), "hidden_dim": (4, 4096, 4), "num_heads": (1, 64, 1)},
}
"""Integer sizes (or each entry of a list of sizes): ``class name -> field -> (low, high, multiple of)``, inclusive.
Far above any model this code is meant for, low enough that a wrong or hostile value cannot ask for gigabytes."""

LIST_LENGTHS: dict[str, dict[str, int]] = {
    "EncoderConfig": {"depths": 4, "num_heads": 4},  # one per Swin stage (strides 4, 8, 16, 32)
    "DepthConfig": {"channels": 5},  # strides 1, 2, 4, 8, 16
    "PoseConfig": {"channels": 4},  # strides 4, 8, 16, 32
    "MotionConfig": {"channels": 4},
}
"""Lists of sizes with a fixed number of entries: ``class name -> field -> length``."""


def _broken_rule(c: Any) -> tuple[str, str] | None:
    """The first cross-field rule that config ``c`` breaks, as ``(field, problem)``; None when all hold."""
    name = type(c).__name__
    if name == "DepthConfig" and not 0 < c.min_depth < c.max_depth:
        return "min_depth", f"needs 0 < min_depth < max_depth, got {c.min_depth} and {c.max_depth}"
    if name == "EncoderConfig" and c.embed_dim is not None and c.num_heads is not None:
        bad = [i for i, h in enumerate(c.num_heads) if (c.embed_dim << i) % h]
        if bad:
            i = bad[0]
            return "num_heads", f"stage {i} width {c.embed_dim << i} (embed_dim * 2^{i}) is not divisible by " \
                                f"its {c.num_heads[i]} heads"
    if name == "SegmentationConfig":
        if c.hidden_dim % c.num_heads:
            return "num_heads", f"must divide hidden_dim {c.hidden_dim}, got {c.num_heads}"
        if c.text_context_queries >= c.num_queries:
            return "text_context_queries", f"must be below num_queries {c.num_queries}, got {c.text_context_queries}"
        if not 0 <= c.dropout < 1:
            return "dropout", f"must be in [0, 1), got {c.dropout}"
        if not 0 <= c.importance_sample_ratio <= 1 or c.oversample_ratio < 1:
            return "importance_sample_ratio", "must be in [0, 1] (and oversample_ratio >= 1), got " \
                                              f"{c.importance_sample_ratio} ({c.oversample_ratio})"
        for key in ("object_threshold", "overlap_threshold"):
            if not 0 <= getattr(c, key) <= 1:
                return key, f"must be in [0, 1], got {getattr(c, key)}"
    if name == "SteeringConfig" and (c.hidden_dim % c.num_heads or c.mlp_ratio <= 0):
        return "num_heads", f"must divide hidden_dim {c.hidden_dim} (and mlp_ratio > 0), got {c.num_heads}"
    if name == "PoseConfig" and c.output_scale <= 0:
        return "output_scale", f"must be positive, got {c.output_scale}"
    if name == "MotionConfig" and (c.flow_scale <= 0 or c.ego_motion_scale <= 0):
        return "flow_scale", f"flow_scale and ego_motion_scale must be positive, got {c.flow_scale}, " \
                             f"{c.ego_motion_scale}"
    return None


def check_config(config: Any, source: str = "<config>", prefix: str = "") -> None:
    """Check the sizes and cross-field rules of ``config`` and its nested configs (:data:`SIZE_BOUNDS`,
    :data:`LIST_LENGTHS`); raises :class:`ConfigError` naming ``source``, the dotted key, the rule and the value.

    ``load_config`` and ``from_dict`` call it; call it after changing a config in code (``dataclasses.replace``).
    """
    for f in dataclasses.fields(config):
        if dataclasses.is_dataclass(getattr(config, f.name)):
            check_config(getattr(config, f.name), source, f"{prefix}{f.name}.")
    cls = type(config).__name__
    for name, length in LIST_LENGTHS.get(cls, {}).items():
        value = getattr(config, name)
        if value is not None and len(value) != length:
            raise ConfigError(f"{source}: key '{prefix}{name}' needs {length} entries, got {len(value)} ({value})")
    for name, (low, high, step) in SIZE_BOUNDS.get(cls, {}).items():
        value = getattr(config, name)
        for v in [] if value is None else value if isinstance(value, list) else [value]:
            if not low <= v <= high or v % step:
                multiple = f", a multiple of {step}" if step > 1 else ""
                raise ConfigError(
                    f"{source}: key '{prefix}{name}' must be in [{low}, {high}]{multiple}; got {value}"
                )
    broken = _broken_rule(config)
    if broken:
        raise ConfigError(f"{source}: key '{prefix}{broken[0]}' {broken[1]}")
