"""Results of the steering cross-testing: per-fold errors, mean ± std over folds, Table IV as text, Markdown, JSON.

Errors are in squared label units: the label is ``label_scale`` times the path curvature (1/m). ``mse`` is the
plain mean squared error (the paper's Table IV), ``weighted_mse`` the eq. 5 objective
(``w_i = exp(lambda |y_i|)``); ``zero_*`` is the always-zero curvature predictor measured on the same windows.
Mean ± std are over the folds, population standard deviation (``eval.steering.summarize_folds``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.eval.steering import MeanStd, summarize_folds
from uni_encoder_core.eval.tables import SteeringRow, format_steering_table

METRICS = ("train_mse", "train_weighted_mse", "test_mse", "test_weighted_mse", "zero_train_mse", "zero_test_mse")


@dataclass
class FoldResult:
    """Errors of one fold; ``test_frames`` is the held-out chunk ``[start, stop)``."""

    fold: int
    test_frames: tuple[int, int]
    train_windows: int
    test_windows: int
    train_mse: float
    train_weighted_mse: float
    test_mse: float
    test_weighted_mse: float
    zero_train_mse: float
    zero_test_mse: float


@dataclass
class VariantResult:
    """One encoder variant over all folds. ``window``: frames per window; ``cache_hit``: features read from the
    cache (None: encoder unfrozen); ``model_path``: the checkpoint with the steering head fitted on every window
    (None when not written)."""

    name: str
    init: str
    frozen: bool
    window: int
    folds: list[FoldResult]
    cache_hit: bool | None = None
    model_path: str | None = None

    def summary(self, metric: str) -> MeanStd:
        """Mean ± std over the folds of one of :data:`METRICS`."""
        if metric not in METRICS:
            raise ValueError(f"unknown steering metric '{metric}' (known: {', '.join(METRICS)})")
        return summarize_folds([getattr(f, metric) for f in self.folds])


@dataclass
class SteeringCVResult:
    """All variants of one run plus what the numbers mean (data, frames, label scale, lambda)."""

    data: str
    num_frames: int
    label_scale: float
    steering_lambda: float
    variants: list[VariantResult] = field(default_factory=list)

    def rows(self, weighted: bool = False) -> list[SteeringRow]:
        """Table IV rows (training / test error), one per variant, then the always-zero baseline."""
        kind = "weighted_mse" if weighted else "mse"
        rows = [SteeringRow(v.name, v.summary(f"train_{kind}"), v.summary(f"test_{kind}")) for v in self.variants]
        if self.variants and not weighted:
            first = self.variants[0]
            rows.append(SteeringRow("Always zero (baseline)", first.summary("zero_train_mse"),
                                    first.summary("zero_test_mse")))
        return rows

    def table(self, markdown: bool = False, weighted: bool = False) -> str:
        """Table IV layout: ``Model | Training error | Test error`` (mean ± std over the folds)."""
        return format_steering_table(self.rows(weighted), markdown=markdown)

    def to_json(self) -> dict:
        """Plain data: the run's settings, every fold's errors and each variant's mean/std per metric."""
        out = dataclasses.asdict(self)
        for v, raw in zip(self.variants, out["variants"]):
            raw["summary"] = {m: dataclasses.asdict(v.summary(m)) for m in METRICS}
        return out

    def markdown(self) -> str:
        """The report: settings, Table IV (plain and weighted MSE) and each variant's per-fold errors."""
        folds = len(self.variants[0].folds) if self.variants else 0
        window = self.variants[0].window if self.variants else 0
        lines = [
            "# Steering: tenfold cross-testing", "",
            f"Data: `{self.data}`, {self.num_frames} frames in {folds} contiguous chunks; windows of {window} "
            f"frames, labelled with the curvature at their newest frame. Errors are squared errors of "
            f"{self.label_scale:g} x curvature (1/m), mean ± std over the folds.", "",
            "## MSE (Table IV layout)", "", self.table(markdown=True),
            f"## Weighted MSE (eq. 5, lambda = {self.steering_lambda:g})", "", self.table(markdown=True, weighted=True),
        ]
        header = ("| fold | test frames | train windows | test windows | train MSE | train wMSE | test MSE "
                  "| test wMSE | zero test MSE |")
        for v in self.variants:
            lines += [f"## Per fold: {v.name}", "", header, "|" + "--:|" * 9]
            for f in v.folds:
                errors = (f.train_mse, f.train_weighted_mse, f.test_mse, f.test_weighted_mse, f.zero_test_mse)
                lines.append(f"| {f.fold} | {f.test_frames[0]}-{f.test_frames[1] - 1} | {f.train_windows} "
                             f"| {f.test_windows} | " + " | ".join(f"{e:.4g}" for e in errors) + " |")
            lines.append("")
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``steering_cv.json`` and ``steering_cv.md`` into ``out_dir`` (atomically); returns their paths."""
        out_dir = Path(out_dir)
        json_path, md_path = out_dir / "steering_cv.json", out_dir / "steering_cv.md"
        with atomic_writer(json_path, "w") as fh:
            json.dump(self.to_json(), fh, indent=2)
        with atomic_writer(md_path, "w") as fh:
            fh.write(self.markdown())
        return json_path, md_path
