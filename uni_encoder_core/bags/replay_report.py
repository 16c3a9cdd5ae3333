"""The replay report: ``report.json`` + ``report.md`` over every replayed recording, and PNG plots per recording.

Steering is scored in curvature (1/m, the steering head's label) at the stamps of the frames that produced a
steering command, against the recorded steering interpolated there (:mod:`uni_encoder_core.bags.steering`).
Two predictions are scored: the steering head's curvature (the paper's Table IV quantity) and the command the
node sends (limited in angle and rate), turned back into curvature with ``tan(angle) / wheelbase``. Both get
the plain MSE and the weighted MSE of eq. 5 (``uni_encoder_core.eval.steering``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.bags.replay import BagReplay, command_curvature, latency_stats
from uni_encoder_core.eval.steering import mse, weighted_mse
from uni_encoder_core.labels import PALETTE


def steering_scores(run: BagReplay, wheelbase: float, tolerance: float, lam: float) -> dict[str, Any] | None:
    """MSE and weighted MSE (``lam``) of head and command curvature against the recording; None without one.

    ``wheelbase`` (m) turns commanded angles into curvature. Keys: ``predictions``, ``matched``, ``head_mse``,
    ``head_weighted_mse``, ``command_mse``, ``command_weighted_mse`` (NaN when nothing matched), ``lambda``.
    """
    if run.recorded is None:
        return None
    recorded = run.recorded.at(np.asarray(run.prediction_stamps, np.int64), tolerance)
    matched, target = recorded.matched, recorded.curvature[recorded.matched]
    scores: dict[str, Any] = {"predictions": len(matched), "matched": int(matched.sum()), "lambda": lam}
    for name, pred in (("head", np.asarray(run.head_curvature)),
                       ("command", command_curvature(run.command_angle, wheelbase))):
        ok = matched.any()
        scores[f"{name}_mse"] = mse(pred[matched], target) if ok else float("nan")
        scores[f"{name}_weighted_mse"] = weighted_mse(pred[matched], target, lam) if ok else float("nan")
    return scores


def bag_summary(run: BagReplay, wheelbase: float, tolerance: float, lam: float) -> dict[str, Any]:
    """JSON-ready summary of one recording's replay."""
    return {
        "bag": str(run.bag), "output_bag": str(run.output), "input_frames": run.frames, "processed": run.processed,
        "output_counts": {f"/{t}": n for t, n in run.counts.items()},
        "latency": latency_stats(run.latencies),
        "steering": steering_scores(run, wheelbase, tolerance, lam),
        "resets": [{"stamp": s, "reason": r} for s, r in run.resets],
        "rejected": [dataclasses.asdict(r) for r in run.rejected],
    }


def _markdown(summary: dict[str, Any]) -> list[str]:
    lat = summary["latency"]
    lines = [f"## {summary['bag']}", "", f"Output bag: `{summary['output_bag']}`. Frames: {summary['input_frames']} "
             f"recorded, {summary['processed']} processed.", "", "| topic | messages |", "|---|---|"]
    lines += [f"| `{t}` | {n} |" for t, n in summary["output_counts"].items()]
    lines += ["", f"Pipeline latency per frame: mean {lat['mean_ms']:.1f} ms, median {lat['median_ms']:.1f} ms, "
              f"p95 {lat['p95_ms']:.1f} ms, max {lat['max_ms']:.1f} ms.", ""]
    s = summary["steering"]
    if s is not None:
        lines += [f"Steering (curvature, 1/m; {s['matched']} of {s['predictions']} predictions matched a recorded "
                  f"sample; weighted MSE of eq. 5 with lambda = {s['lambda']:g}):", "",
                  "| prediction | MSE | weighted MSE |", "|---|---|---|",
                  f"| steering head | {s['head_mse']:.6g} | {s['head_weighted_mse']:.6g} |",
                  f"| command (limited) | {s['command_mse']:.6g} | {s['command_weighted_mse']:.6g} |", ""]
    lines += [f"Window resets: {len(summary['resets'])}"] + [f"- {r['stamp']:.3f} s: {r['reason']}"
                                                            for r in summary["resets"]]
    lines += ["", f"Rejected messages: {len(summary['rejected'])}"]
    lines += [f"- `{r['topic']}` #{r['index']}: {r['reason']}" for r in summary["rejected"]]
    return lines + [""]


def write_report(out: Path, summaries: list[dict[str, Any]], setup: dict[str, Any]) -> None:
    """``out/report.json`` (``setup`` + ``bags``) and ``out/report.md``, each written atomically."""
    with atomic_writer(out / "report.json", "w") as fh:
        json.dump({**setup, "bags": summaries}, fh, indent=2)
    head = ["# Replay report", ""] + [f"- {k}: `{v}`" for k, v in setup.items()] + [""]
    with atomic_writer(out / "report.md", "w") as fh:
        fh.write("\n".join(head + [line for s in summaries for line in _markdown(s)]))


def plot_steering(run: BagReplay, wheelbase: float, path: Path) -> None:
    """Predicted (head, command) and recorded curvature over time since the first frame; resets as lines."""
    stamps = np.asarray(run.prediction_stamps, np.int64)
    origin = min([*stamps[:1], *(run.recorded.stamps_ns[:1] if run.recorded is not None else [])], default=0)
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    if run.recorded is not None:
        ax.plot((run.recorded.stamps_ns - origin) * 1e-9, run.recorded.curvature, "k-", lw=1, label="recorded")
    ax.plot((stamps - origin) * 1e-9, run.head_curvature, ".", ms=3, label="steering head")
    ax.plot((stamps - origin) * 1e-9, command_curvature(run.command_angle, wheelbase), "-", lw=1,
            label="command (limited)")
    for stamp, _ in run.resets:
        ax.axvline(stamp - origin * 1e-9, color="r", lw=0.5)
    ax.set(xlabel="time (s)", ylabel="curvature (1/m, + left)", title=run.bag.name)
    ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_writer(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)


def plot_panels(run: BagReplay, path: Path) -> None:
    """One row per sampled frame: input, inverse depth, semantic (Cityscapes palette), motion mask."""
    if not run.panels:
        return
    fig = Figure(figsize=(16, 2.6 * len(run.panels)))
    axes = fig.subplots(len(run.panels), 4, squeeze=False)
    for row, (rgb, result) in zip(axes, run.panels):
        semantic = PALETTE[result.semantic] if result.semantic is not None else np.zeros_like(rgb)
        motion = result.motion_mask if result.motion_mask is not None else np.zeros(rgb.shape[:2], bool)
        images = (rgb, 1.0 / np.where(np.isfinite(result.depth), result.depth, np.inf), semantic, motion)
        for ax, image, title in zip(row, images, ("input", "inverse depth", "semantic", "motion mask")):
            ax.imshow(image, cmap="magma" if title == "inverse depth" else "gray")
            ax.set_title(f"{title}  t={result.stamp:.2f} s", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    with atomic_writer(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=80)
