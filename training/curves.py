"""A run's validation curve as a Markdown table, read from its TensorBoard event files.

One row per validation step: minutes since the first logged step, depth abs_rel (median-scaled) and mIoU on the
recipe's ``validation_batches`` of its held-out drive (a sample of it, not the whole drive), and the mean over the
preceding ``--window`` steps of each loss group's gradient norm on the shared encoder (unweighted, as
``train.grad_norms`` logs them), their ratio, and the total gradient norm before clipping.

Usage: ``python training/curves.py RUN_DIR [--window 300]``.
"""

from __future__ import annotations

import argparse
import math

from tensorboard.backend.event_processing import event_accumulator


def scalars(run_dir: str) -> dict[str, dict[int, tuple[float, float]]]:
    """``{tag: {step: (value, wall time s)}}`` of every scalar in ``run_dir/tensorboard``."""
    acc = event_accumulator.EventAccumulator(f"{run_dir}/tensorboard",
                                             size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: {e.step: (e.value, e.wall_time) for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def window_mean(series: dict[int, tuple[float, float]], step: int, window: int) -> float:
    """Mean of the values logged at steps in ``(step - window, step]`` (NaN when none)."""
    values = [v for s, (v, _) in series.items() if step - window < s <= step]
    return sum(values) / len(values) if values else math.nan


def shown(x: float, spec: str) -> str:
    """``x`` formatted, or "—" for a quantity the stage does not have (NaN: no such loss or metric)."""
    return "—" if math.isnan(x) else format(x, spec)


def table(run_dir: str, window: int) -> str:
    """The Markdown table of the run's validation steps."""
    tags = scalars(run_dir)
    abs_rel, miou = tags.get("val/depth_abs_rel", {}), tags.get("val/miou", {})
    sup, ssup = tags.get("grad_norm_encoder/sup", {}), tags.get("grad_norm_encoder/ssup", {})
    total = tags.get("train/grad_norm", {})
    start = min((t for _, t in total.values()), default=0.0)
    rows = ["| step | min | abs_rel | mIoU | encoder grad sup | encoder grad ssup | sup/ssup | grad norm (pre-clip) |",
            "|---|---|---|---|---|---|---|---|"]
    for step in sorted(abs_rel):
        g_sup, g_ssup = window_mean(sup, step, window), window_mean(ssup, step, window)
        rows.append(f"| {step} | {(abs_rel[step][1] - start) / 60:.1f} | {abs_rel[step][0]:.3f} | "
                    f"{shown(miou.get(step, (math.nan,))[0], '.3f')} | {shown(g_sup, '.3g')} | "
                    f"{shown(g_ssup, '.3g')} | {shown(g_sup / g_ssup, '.0f')} | "
                    f"{shown(window_mean(total, step, window), '.3g')} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--window", type=int, default=300, help="steps averaged for the gradient norms (300)")
    args = parser.parse_args()
    print(table(args.run_dir, args.window))


if __name__ == "__main__":
    main()
