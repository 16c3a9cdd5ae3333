"""Result tables in the layout of the paper's Tables II (segmentation), III (depth) and IV (steering).

Each ``format_*`` function returns the table as aligned plain text, or as a Markdown table with
``markdown=True``. Segmentation scores are given as fractions and printed in percent with one decimal (as the
paper prints them); depth metrics with three decimals; steering errors as ``mean ± std`` with two decimals.
The paper's own rows are kept as ``PAPER_TABLE_*`` so a run can be printed next to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from uni_encoder_core.eval.depth import DEPTH_METRICS
from uni_encoder_core.eval.steering import MeanStd


@dataclass(frozen=True)
class SegmentationRow:
    """One row of Table II: panoptic PQ, instance mask AP and semantic mIoU as fractions (None prints "—")."""

    model: str
    pq: float | None
    ap: float | None
    miou: float | None


@dataclass(frozen=True)
class DepthRow:
    """One row of Table III: frames used at inference, data set (K / CS) and the seven depth metrics."""

    method: str
    frames: int
    dataset: str
    errors: dict[str, float]


@dataclass(frozen=True)
class SteeringRow:
    """One row of Table IV: training and test error (mean ± std over the ten folds); ``train`` None prints "—"
    (a model whose head was not fitted per fold has no training error)."""

    model: str
    train: MeanStd | None
    test: MeanStd


DEPTH_HEADERS = ("Abs Rel (↓)", "Sq Rel (↓)", "RMSE (↓)", "RMSE log (↓)", "δ<1.25 (↑)", "δ<1.25² (↑)", "δ<1.25³ (↑)")

PAPER_TABLE_II = (
    SegmentationRow("OneFormer [16]", 0.558, 0.284, 0.743),
    SegmentationRow("Our multi-task model", 0.560, 0.286, 0.742),
)
PAPER_TABLE_III = tuple(
    DepthRow(method, frames, dataset, dict(zip(DEPTH_METRICS, values)))
    for method, frames, dataset, values in (
        ("Monodepth2 [19]", 1, "K", (0.115, 0.903, 4.863, 0.193, 0.877, 0.959, 0.981)),
        ("Dynamo-Depth [20]", 1, "K", (0.112, 0.758, 4.505, 0.183, 0.873, 0.959, 0.984)),
        ("Ours (wo 3D scene flow)", 1, "K", (0.109, 0.818, 4.654, 0.184, 0.884, 0.963, 0.983)),
        ("ManyDepth [33]", 2, "CS", (0.114, 1.193, 6.223, 0.170, 0.875, 0.967, 0.989)),
        ("Ours", 1, "CS", (0.106, 1.033, 5.913, 0.158, 0.888, 0.974, 0.982)),
    )
)
PAPER_TABLE_IV = (
    SteeringRow("CNN-GRU 64 units [4]", MeanStd(1.25, 1.02), MeanStd(5.06, 6.64)),
    SteeringRow("CNN-LSTM 64 units [4]", MeanStd(0.19, 0.05), MeanStd(3.17, 3.85)),
    SteeringRow("(1) Swin-AttnPool (ImageNet pretrained)", MeanStd(2.91, 2.23), MeanStd(11.03, 10.03)),
    SteeringRow("(2) Swin-AttnPool (Encoder unfrozen)", MeanStd(9.62, 3.24), MeanStd(16.46, 11.13)),
    SteeringRow("(3) Swin-AttnPool (Encoder frozen)", MeanStd(1.64, 1.63), MeanStd(5.41, 6.06)),
)


def _render(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int, markdown: bool) -> str:
    """Columns before ``numeric_from`` are left-aligned text, the rest right-aligned numbers."""
    if markdown:
        rule = ["---" if i < numeric_from else "--:" for i in range(len(headers))]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in (headers, rule, *rows)) + "\n"
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i < numeric_from else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]) + "\n"


def format_segmentation_table(rows: Sequence[SegmentationRow], markdown: bool = False) -> str:
    """Table II: ``Model | PQ | AP | IoU`` in percent."""
    body = [[r.model, *("—" if v is None else f"{100 * v:.1f}" for v in (r.pq, r.ap, r.miou))] for r in rows]
    return _render(("Model", "PQ (↑)", "AP (↑)", "IoU (↑)"), body, 1, markdown)


def format_depth_table(rows: Sequence[DepthRow], markdown: bool = False) -> str:
    """Table III: ``Method | #f | D | Abs Rel | Sq Rel | RMSE | RMSE log | δ<1.25 | δ<1.25² | δ<1.25³``."""
    body = [[r.method, str(r.frames), r.dataset, *(f"{r.errors[k]:.3f}" for k in DEPTH_METRICS)] for r in rows]
    return _render(("Method", "#f", "D", *DEPTH_HEADERS), body, 3, markdown)


def format_motion_table(model: str, motion: dict, markdown: bool = False) -> str:
    """``Model | motion precision | recall | F1`` (percent) ``| ATE | ATE (zero motion)`` from
    :meth:`~uni_encoder_core.eval.accumulate.MotionEvaluation.compute`'s dict."""
    body = [[model, *(f"{100 * motion[k]:.1f}" for k in ("motion_precision", "motion_recall", "motion_f1")),
             f"{motion['ate']:.3f}", f"{motion['ate_zero_motion']:.3f}"]]
    headers = ("Model", "motion precision (↑)", "motion recall (↑)", "motion F1 (↑)", "ATE (↓)", "ATE zero motion")
    return _render(headers, body, 1, markdown)


def format_steering_table(rows: Sequence[SteeringRow], markdown: bool = False) -> str:
    """Table IV: ``Model | Training error | Test error`` as mean ± std over the folds."""
    body = [[r.model, "—" if r.train is None else str(r.train), str(r.test)] for r in rows]
    return _render(("Model", "Training error", "Test error"), body, 1, markdown)
