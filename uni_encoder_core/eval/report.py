"""An evaluation's tables as text (the paper's Tables II, III and IV), JSON and PNG panels.

Each table lists the paper's rows for the same data set (Cityscapes: Tables II and III's CS rows; KITTI: the K rows;
lane keeping: Table IV) followed by this checkpoint's row; the synthetic world has no published rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.colour import grid
from uni_encoder_core.eval.depth import DEPTH_METRICS
from uni_encoder_core.eval.runner import EvalResult
from uni_encoder_core.eval.steering import MeanStd
from uni_encoder_core.eval.tables import (
    PAPER_TABLE_II,
    PAPER_TABLE_III,
    PAPER_TABLE_IV,
    DepthRow,
    SegmentationRow,
    SteeringRow,
    format_depth_table,
    format_motion_table,
    format_segmentation_table,
    format_steering_table,
)

DATASET_TAGS = {"kitti": "K", "cityscapes": "CS", "synthetic": "Syn", "lane_keeping": "LK"}
"""Data set -> the abbreviation of Table III's ``D`` column."""


def _segmentation(s: dict, dataset: str, model: str, markdown: bool) -> tuple[str, str]:
    rows = [*(PAPER_TABLE_II if dataset == "cityscapes" else ()), SegmentationRow(model, s["pq"], s["ap"], s["miou"])]
    return ("TABLE II: panoptic (PQ), instance (mask AP) and semantic (mIoU) segmentation, %",
            format_segmentation_table(rows, markdown))


def _depth(d: dict, protocol: str, dataset: str, model: str, markdown: bool) -> tuple[str, str]:
    tag = DATASET_TAGS[dataset]
    ours = DepthRow(model, 1, tag, {k: d[k] for k in DEPTH_METRICS})
    rows = [*(r for r in PAPER_TABLE_III if r.dataset == tag), ours]
    return f"TABLE III: depth, {protocol} protocol, {d['images']} images", format_depth_table(rows, markdown)


def _steering(st: dict, dataset: str, model: str, markdown: bool) -> list[tuple[str, str]]:
    tables = []
    for metric, name in (("mse", "MSE"), ("weighted_mse", f"weighted MSE (eq. 5, lambda {st['steering_lambda']:g})")):
        title = (f"TABLE IV: steering {name} in ({st['label_scale']:g} x curvature)^2, mean ± std over "
                 f"{len(st['folds'])} held-out chunks (this checkpoint's head, not refitted per fold: no training "
                 f"error)")
        paper = PAPER_TABLE_IV if dataset == "lane_keeping" and metric == "mse" else ()
        row = SteeringRow(model, None, MeanStd(st[metric]["mean"], st[metric]["std"]))
        tables.append((title, format_steering_table([*paper, row], markdown)))
    return tables


def _motion(m: dict, model: str, markdown: bool) -> tuple[str, str]:
    return (f"Motion mask (F1 of moving pixels, %) and odometry (sequence ATE after scale alignment, m) over "
            f"{m['frames']} frames", format_motion_table(model, m, markdown))


def format_tables(result: EvalResult, dataset: str, model: str, markdown: bool = False) -> str:
    """The tables ``result`` has numbers for, titled, with the paper's rows for ``dataset`` above ``model``'s."""
    parts = []
    if result.segmentation is not None:
        parts.append(_segmentation(result.segmentation, dataset, model, markdown))
    if result.depth is not None:
        parts.append(_depth(result.depth, result.depth_protocol, dataset, model, markdown))
    if result.motion is not None:
        parts.append(_motion(result.motion, model, markdown))
    if result.steering is not None:
        parts += _steering(result.steering, dataset, model, markdown)
    return "\n".join(f"### {title}\n\n{table}" if markdown else f"{title}\n{table}" for title, table in parts)


def _plain(value):
    """JSON-safe copy: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def result_json(result: EvalResult, about: dict) -> dict:
    """``about`` (checkpoint, data set, split, ...) plus ``segmentation``, ``depth`` (with ``protocol``),
    ``motion`` and ``steering``; a table without numbers is null."""
    depth = None if result.depth is None else {**result.depth, "protocol": result.depth_protocol}
    return _plain({**about, "segmentation": result.segmentation, "depth": depth, "motion": result.motion,
                   "steering": result.steering})


def steering_plot(result: EvalResult) -> np.ndarray:
    """Predicted and true curvature of every evaluated window, held-out chunks separated: HxWx3 uint8 RGB."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    trace = result.steering_trace
    fig, ax = plt.subplots(figsize=(10, 3.5), dpi=100)
    start = 0
    for k in sorted(trace.pred):
        x = np.arange(start, start + len(trace.pred[k]))
        ax.plot(x, trace.target[k], color="black", lw=1.2, label="truth" if start == 0 else None)
        ax.plot(x, trace.pred[k], color="tab:red", lw=1.0, label="predicted" if start == 0 else None)
        if start:
            ax.axvline(start - 0.5, color="grey", lw=0.5, ls=":")
        start += len(x)
    ax.set_xlabel("window (held-out chunks in order)")
    ax.set_ylabel("curvature (1/m)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def write_report(result: EvalResult, about: dict, text: str, markdown: str, out: str | Path) -> list[Path]:
    """Write ``tables.txt``, ``tables.md``, ``results.json`` and a PNG per table with panels into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (("tables.txt", text), ("tables.md", markdown),
                          ("results.json", json.dumps(result_json(result, about), indent=2) + "\n")):
        with atomic_writer(out / name, "w") as fh:
            fh.write(content)
        written.append(out / name)
    images = {f"{name}.png": grid(rows) for name, rows in result.panels.items() if rows}
    if result.steering_trace is not None:
        images["steering.png"] = steering_plot(result)
    for name, image in images.items():
        if not cv2.imwrite(str(out / name), np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"could not write {out / name}")
        written.append(out / name)
    return written
