"""The synthetic proof's results: every stage's checkpoint scored on a held-out drive, beside trivial baselines.

Reads the runs of ``training/synthetic_proof.sh`` (``RUNS/<stage>/final.pt``, ``RUNS/steering_cv/steering_cv.json``),
evaluates each stage's final checkpoint on the drive ``--seed`` (never seen in training) as ``uni-encoder eval
--dataset synthetic`` does, measures the baselines of ``training/synthetic_baselines.py`` on the same frames, and
writes the results document (``--doc``): the command, the wall time, a head-by-head table against the targets,
every stage's held-out metrics, the steering stage's Table IV in miniature and the validation curves. A section
``## Discussion`` already in the document (written by hand after a run) is kept.

Usage: ``python training/synthetic_results.py --runs runs/synthetic --out results/synthetic_proof
--doc docs/results_synthetic.md --started EPOCH_SECONDS`` (or ``--wall-minutes M`` when rewriting the document of
an earlier run). The final model is the student after stage 4 with the steering head that the steering stage fitted
for variant (3), the frozen multi-task encoder (``RUNS/steering_cv/models/``; the demo model), when that exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from synthetic_baselines import baselines

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.eval.report import format_tables, result_json, write_report
from uni_encoder_core.eval.runner import EvalResult, EvalSettings, evaluate_frames
from uni_encoder_core.models.checkpoint import load_checkpoint

STAGES = ("teacher_stage1", "teacher", "student_stage1", "student_stage2", "student_stage3", "student_stage4")
FINAL = "student_stage4"
STEERING_MODEL = "steering_cv/models/3-swin-attnpool-encoder-frozen.pt"
KEPT = "## Discussion"


def evaluate(checkpoint: Path, seed: int, frames: int, folds: int) -> tuple[EvalResult, dict]:
    """One checkpoint on the held-out drive (eval mode, CPU): the evaluation and its JSON."""
    model = load_checkpoint(checkpoint).eval()
    world = SyntheticWorld(WorldConfig(seed=seed, height=model.cfg.height, width=model.cfg.width, num_frames=frames))
    result = evaluate_frames(model, world.frame, frames, EvalSettings(folds=folds))
    about = {"checkpoint": str(checkpoint), "seed": seed, "frames": frames, "size": [model.cfg.height, model.cfg.width],
             "object_threshold": model.cfg.segmentation.object_threshold}
    return result, result_json(result, about)


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def head_table(final: dict, base: dict, steering: dict | None) -> list[str]:
    """Head | metric | target | this model | baseline | target reached."""
    d, s, m = final["depth"], final["segmentation"], final["motion"]
    rows = [
        ("depth", "abs_rel (median-scaled, full frame)", "<= 0.15", d["abs_rel"], base["depth_abs_rel_constant"],
         "constant depth", d["abs_rel"] <= 0.15),
        ("semantic", "mIoU", ">= 0.70", s["miou"], base["miou_majority"], "majority class", s["miou"] >= 0.70),
        ("panoptic", "PQ", ">= 0.40", s["pq"], base["pq_all_stuff"], "all stuff (majority class), no things",
         s["pq"] >= 0.40),
        ("motion mask", "F1 of moving pixels", ">= 0.5", m["motion_f1"], base["motion_f1_all_static"], "all static",
         m["motion_f1"] >= 0.5),
        ("pose", f"ATE over {m['frames']} frames (m, scale-aligned)", "below the baseline", m["ate"],
         base["ate_zero_motion"], "zero motion", m["ate"] < base["ate_zero_motion"]),
    ]
    lines = ["| head | metric | target | this model | baseline | baseline is | reached |", "|---" * 7 + "|"]
    lines += [f"| {h} | {metric} | {t} | {_f(v)} | {_f(b)} | {what} | {'yes' if ok else 'no'} |"
              for h, metric, t, v, b, what, ok in rows]
    better = "better" if m["ate"] < base["ate_constant_velocity"] else "not better"
    lines.append(f"| pose (reference) | same ATE | — | {_f(m['ate'])} | {_f(base['ate_constant_velocity'])} | "
                 f"constant velocity on a straight line | {better} |")
    if steering is not None:
        best = steering["best"]
        ratio = best["test"]["mean"] / steering["zero"]["mean"]
        lines.append(f"| steering | test MSE, tenfold mean ± std ((100 x curvature)^2) | <= 0.3x the baseline | "
                     f"{best['test']['mean']:.2f} ± {best['test']['std']:.2f} ({ratio:.2f}x; {best['name']}) | "
                     f"{steering['zero']['mean']:.2f} ± {steering['zero']['std']:.2f} | always-zero curvature | "
                     f"{'yes' if ratio <= 0.3 else 'no'} |")
    return lines


def stage_table(per_stage: dict[str, dict]) -> list[str]:
    """Every stage's final checkpoint on the held-out drive."""
    lines = ["| stage | abs_rel | δ<1.25 | mIoU | PQ | PQ stuff | PQ things | class threshold | motion F1 | ATE (m) |",
             "|---" * 10 + "|"]
    for name, r in per_stage.items():
        d, s, m = r["depth"], r["segmentation"], r["motion"]
        lines.append(f"| {name} | {_f(d['abs_rel'])} | {_f(d['a1'])} | {_f(s['miou'])} | {_f(s['pq'])} | "
                     f"{_f(s['pq_st'])} | {_f(s['pq_th'])} | {r['object_threshold']:g} | {_f(m['motion_f1'])} | "
                     f"{_f(m['ate'], 2)} |")
    return lines


def steering_summary(path: Path) -> dict | None:
    """Table IV rows of the steering stage (train/test MSE per variant, the zero baseline) and the best variant."""
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    rows = [{"name": v["name"], "train": v["summary"]["train_mse"], "test": v["summary"]["test_mse"]}
            for v in raw["variants"]]
    zero = raw["variants"][0]["summary"]["zero_test_mse"]
    return {"rows": rows, "zero": zero, "best": min(rows, key=lambda r: r["test"]["mean"]),
            "folds": len(raw["variants"][0]["folds"]), "frames": raw["num_frames"]}


def steering_lines(st: dict) -> list[str]:
    lines = [f"Tenfold cross-testing on a separate {st['frames']}-frame drive (world seed in "
             "`training/configs/synthetic/steering_cv.yaml`), the same folds for every variant; MSE of "
             "100 x curvature (1/m), mean ± std over the folds.", "",
             "| variant | training error | test error |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['train']['mean']:.2f} ± {r['train']['std']:.2f} | "
              f"{r['test']['mean']:.2f} ± {r['test']['std']:.2f} |" for r in st["rows"]]
    lines.append(f"| Always zero (baseline) | — | {st['zero']['mean']:.2f} ± {st['zero']['std']:.2f} |")
    by_test = sorted(st["rows"], key=lambda r: r["test"]["mean"])
    frozen_multitask = [r for r in st["rows"] if r["name"].startswith("(3)")]
    holds = bool(frozen_multitask) and by_test[0]["name"] == frozen_multitask[0]["name"]
    lines += ["", f"Ordering by test error: {' < '.join(r['name'] for r in by_test)}. The paper's ordering "
              f"(the frozen multi-task encoder best) {'holds' if holds else 'does not hold'} here."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/synthetic")
    parser.add_argument("--out", default="results/synthetic_proof")
    parser.add_argument("--doc", default="docs/results_synthetic.md")
    parser.add_argument("--started", type=float, help="the chain's start (Unix seconds) for the wall time")
    parser.add_argument("--wall-minutes", type=float, help="the chain's wall time, when rewriting an earlier run's")
    parser.add_argument("--seed", type=int, default=1000, help="held-out world seed")
    parser.add_argument("--frames", type=int, default=100, help="frames of the held-out drive")
    parser.add_argument("--folds", type=int, default=4, help="chunks of the drive for the checkpoint's steering")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    per_stage, tables = {}, ""
    for stage in STAGES:
        per_stage[stage] = evaluate(runs / stage / "final.pt", args.seed, args.frames, args.folds)[1]
    final_path = runs / STEERING_MODEL if (runs / STEERING_MODEL).is_file() else runs / FINAL / "final.pt"
    result, final = evaluate(final_path, args.seed, args.frames, args.folds)
    name = "final" if final_path.name != "final.pt" else FINAL
    tables = format_tables(result, "synthetic", name, markdown=True)
    write_report(result, final, format_tables(result, "synthetic", name), tables, out / "eval_student")
    height, width = per_stage[FINAL]["size"]
    base = baselines(args.seed, args.frames, height, width)
    steering = steering_summary(runs / "steering_cv" / "steering_cv.json")
    (out / "baselines.json").write_text(json.dumps(base, indent=1) + "\n")
    (out / "held_out.json").write_text(json.dumps(per_stage, indent=1) + "\n")
    minutes = args.wall_minutes if args.wall_minutes else (time.time() - args.started) / 60 if args.started else None
    wall = f"{minutes:.0f} min" if minutes is not None else "not timed"
    doc = Path(args.doc)
    kept = doc.read_text().split(KEPT, 1)[1] if doc.is_file() and KEPT in doc.read_text() else None
    lines = [
        "# Results on the synthetic world", "",
        "Written by `training/synthetic_proof.sh` (the whole chain: the teacher's two phases, student stages 1-4, "
        "the steering stage) through `training/synthetic_results.py`; rerun it to reproduce every number below.", "",
        f"- command: `training/synthetic_proof.sh` (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')})",
        f"- wall time: {wall} on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"{'document rewritten from the run' if args.wall_minutes else 'finished'} "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- held out: world seed {args.seed}, frames 0-{args.frames - 1} (training drives: seeds 0-7; seed 1000 is "
        f"also the recipes' validation drive, never trained on), model "
        f"`config/model/tiny.yaml` at {height}x{width}, eval mode", "",
        "## Every head against its target", "",
        f"The final model: `{final_path}` (the student after stage 4"
        + (", with the steering head fitted in the steering stage for variant (3)" if name == "final" else "")
        + "; `checkpoints/demo_tiny.pt` is a copy).", "", *head_table(final, base, steering), "",
        "## Every stage on the held-out drive", "",
        "Each stage's `final.pt` (the teacher is the separate distillation network); PQ with the class threshold "
        "of panoptic inference stored in that checkpoint's model config.", "", *stage_table(per_stage),
        "", "## Table IV in miniature", "",
        *(steering_lines(steering) if steering else ["The steering stage has not been run."]), "",
        "## The final model's tables", "",
        "Its own steering head on the held-out drive's windows (4 chunks, not refitted per fold), beside the "
        "tenfold cross-testing above.", "", tables.strip(), "",
        "## Validation curves", "",
        f"Per stage in `{out}/curve_<stage>.md` (abs_rel and mIoU every `validate_every` steps on "
        "`validation_batches` of the held-out drive, a sample of it; the gradient norms of each loss group on "
        "the shared encoder).", "",
    ]
    for stage in STAGES:
        curve = out / f"curve_{stage}.md"
        if curve.is_file():
            lines += [f"### {stage}", "", curve.read_text().strip(), ""]
    text = "\n".join(lines) + (KEPT + kept if kept is not None else "")
    with atomic_writer(doc, "w") as fh:
        fh.write(text.rstrip() + "\n")
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
