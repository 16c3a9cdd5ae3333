"""The demo's results folder: one PNG panel per output topic, ``summary.json`` and ``summary.md``.

Panels put the node's outputs next to the synthetic world's ground truth for three processed frames
(early, middle, last); odometry, steering and diagnostics are plotted over time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from uni_encoder_core.eval.depth import compute_depth_errors  # noqa: E402
from uni_encoder_core.eval.motion import MotionMaskMetric  # noqa: E402
from uni_encoder_core.eval.segmentation import MeanIoUMetric  # noqa: E402
from uni_encoder_core.labels import PALETTE, VOID  # noqa: E402
from uni_encoder_core.messages.frames import camera_in_base, odometry_in_base  # noqa: E402
from uni_encoder_core.messages.images import image_to_numpy  # noqa: E402

COLOURS = np.random.default_rng(7).integers(40, 256, (65536, 3), dtype=np.uint8)
COLOURS[0] = 0


def stamp_seconds(msg: Any) -> float:
    """Header stamp of a message (TFMessage: its first transform) in seconds."""
    header = msg.transforms[0].header if hasattr(msg, "transforms") else msg.header
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    return COLOURS[np.asarray(ids, np.int64) % 65536]


def _depth_view(ax, depth: np.ndarray) -> None:
    shown = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    cmap = plt.get_cmap("magma_r").copy()
    cmap.set_bad("0.6")
    low, high = np.nanpercentile(shown, [2, 98]) if np.isfinite(shown).any() else (0.0, 1.0)
    im = ax.imshow(shown, cmap=cmap, vmin=low, vmax=max(high, low + 1e-6))
    plt.colorbar(im, ax=ax, fraction=0.025, label="m")


# topic -> (label, draw(ax, image), ground truth of a SyntheticFrame or None)
VIEWS = {
    "depth": ("depth (NaN grey)", _depth_view, lambda f: f.depth),
    "segmentation/semantic": ("train ids", lambda ax, a: ax.imshow(PALETTE[a]), lambda f: f.semantic),
    "segmentation/semantic_color": ("rgb8 as published", lambda ax, a: ax.imshow(a), lambda f: PALETTE[f.semantic]),
    "segmentation/instance": ("instance ids", lambda ax, a: ax.imshow(_ids_to_rgb(a)), lambda f: f.instance),
    "segmentation/panoptic": ("panoptic ids", lambda ax, a: ax.imshow(_ids_to_rgb(a)), lambda f: f.panoptic),
    "scene_flow": ("|flow| (m/frame)", lambda ax, a: plt.colorbar(
        ax.imshow(np.linalg.norm(a, axis=-1), cmap="viridis"), ax=ax, fraction=0.025), None),
    "motion_mask": ("moving (255)", lambda ax, a: ax.imshow(a, cmap="gray", vmin=0, vmax=255),
                    lambda f: f.motion_mask.astype(np.uint8) * 255),
}


def image_panel(path: Path, topic: str, samples: list[tuple[Any, Any]]) -> None:
    """Input | output | ground truth for each sample: (rendered world frame, output message)."""
    label, draw, truth = VIEWS[topic]
    cols = 3 if truth is not None else 2
    fig, axes = plt.subplots(len(samples), cols, figsize=(5 * cols, 1.9 * len(samples) + 0.6), squeeze=False)
    for row, (frame, msg) in enumerate(samples):
        axes[row, 0].imshow(frame.rgb)
        axes[row, 0].set_title(f"input frame {frame.index}")
        draw(axes[row, 1], image_to_numpy(msg))
        axes[row, 1].set_title(f"{topic}: {label}")
        if truth is not None:
            draw(axes[row, 2], truth(frame))
            axes[row, 2].set_title("ground truth")
        for ax in axes[row]:
            ax.axis("off")
    fig.suptitle(f"{topic} ({msg.encoding}, {msg.width}x{msg.height}, frame_id '{msg.header.frame_id}')")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def odometry_panel(path: Path, odom: list, index_of: dict[float, int], world) -> None:
    """Top-down trajectory (odom frame) and forward speed against the world's ground truth."""
    T_base_cam = camera_in_base([0.0, 0.0, world.cfg.camera_height], [0.0, 0.0, 0.0])
    xy = np.array([[m.pose.pose.position.x, m.pose.pose.position.y] for _, m in odom])
    first = world.pose(index_of[stamp_seconds(odom[0][1])])
    gt = np.array([odometry_in_base(np.linalg.inv(first) @ world.pose(index_of[stamp_seconds(m)]), T_base_cam)[:2, 3]
                   for _, m in odom])
    t = np.array([stamp_seconds(m) for _, m in odom])
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(gt[:, 0], gt[:, 1], "k-", label="ground truth")
    a.plot(xy[:, 0], xy[:, 1], "o-", ms=3, label="odom (visual odometry)")
    a.set_xlabel("x (m, forward)")
    a.set_ylabel("y (m, left)")
    a.axis("equal")
    a.legend()
    a.set_title("odom -> base_link (also on /tf)")
    b.plot(t - t[0], [m.twist.twist.linear.x for _, m in odom], "o-", ms=3, label="twist.linear.x")
    b.axhline(world.cfg.speed, color="k", label="ground truth speed")
    b.set_xlabel("s")
    b.set_ylabel("m/s")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def steering_panel(path: Path, steering: list, index_of: dict[float, int], sent: list[float], world) -> None:
    """Commanded Ackermann angle and stop commands over time, with the world's steering angle."""
    t0 = sent[0]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(np.array(sent) - t0, [world.steering_angle(i) for i in range(len(sent))], "k-", label="ground truth")
    drive = [(stamp_seconds(m), m.drive) for _, m in steering]
    go = [(t, d.steering_angle) for t, d in drive if d.speed != 0.0]
    stop = [(t, d.steering_angle) for t, d in drive if d.speed == 0.0 and t >= t0]
    if go:
        ax.plot(np.array(go)[:, 0] - t0, np.array(go)[:, 1], "o-", ms=3, label="steering command")
    if stop:
        ax.plot(np.array(stop)[:, 0] - t0, np.array(stop)[:, 1], "rx", label="stop command (speed 0)")
    ax.axvline(sent[min(15, len(sent) - 1)] - t0, color="grey", ls=":", label="16th frame")
    ax.set_xlabel("s since the first frame")
    ax.set_ylabel("rad (+ left)")
    ax.legend()
    ax.set_title("steering (ackermann_msgs/AckermannDriveStamped)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def diagnostics_panel(path: Path, diagnostics: list[dict[str, Any]], latency_ms: np.ndarray) -> None:
    """Counters and rates from /diagnostics, and the end-to-end latency histogram."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    t = np.array([d["t"] for d in diagnostics])
    for key in ("frames_received", "frames_processed", "frames_dropped", "frames_rejected"):
        a.plot(t - t[0], [int(d[key]) for d in diagnostics], label=key)
    a.set_xlabel("s")
    a.legend()
    a.set_title("/diagnostics counters")
    b.hist(latency_ms, bins=30)
    b.set_xlabel("ms (output arrival - image stamp)")
    b.set_title("end-to-end latency (depth)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def ground_truth_scores(got: dict[str, list], index_of: dict[float, int], world) -> dict[str, Any]:
    """The published outputs against the synthetic world's ground truth, over every processed frame.

    ``depth_abs_rel``: per-image median-scaled abs_rel (pixels with ground truth and a finite prediction), averaged;
    ``miou`` of ``segmentation/semantic``; ``motion_f1`` of ``motion_mask`` (frames with a previous one);
    ``steering_rmse_deg`` of the Ackermann angle of the non-stop commands against the world's steering angle. Each
    has its trivial baseline on the same frames (``*_baseline``): a constant depth, the majority class of the scored
    frames' labels, nothing moving (F1 0), always straight. A missing output gives None.
    """
    by_topic = {t: {stamp_seconds(m): m for _, m in got[t]}
                for t in ("depth", "segmentation/semantic", "motion_mask")}
    abs_rel, constant, labels, motion = [], [], [], MotionMaskMetric()
    for stamp, i in sorted(index_of.items(), key=lambda kv: kv[1]):
        if not any(stamp in msgs for msgs in by_topic.values()):
            continue
        frame = world.frame(i)
        if stamp in by_topic["depth"]:
            depth = image_to_numpy(by_topic["depth"][stamp]).astype(np.float64)
            gt = np.where(np.isfinite(depth), frame.depth, 0.0)
            abs_rel.append(compute_depth_errors(gt, np.nan_to_num(depth, nan=1.0))["abs_rel"])
            constant.append(compute_depth_errors(gt, np.ones_like(gt))["abs_rel"])
        if stamp in by_topic["segmentation/semantic"]:
            labels.append((image_to_numpy(by_topic["segmentation/semantic"][stamp]), frame.semantic))
        if stamp in by_topic["motion_mask"]:
            motion.update(image_to_numpy(by_topic["motion_mask"][stamp]) > 0, frame.motion_mask)
    angles = [(d.steering_angle, world.steering_angle(index_of[t])) for t, d in
              ((stamp_seconds(m), m.drive) for _, m in got["steering"]) if d.speed != 0.0 and t in index_of]
    pred, truth = np.array(angles).reshape(-1, 2).T
    miou, majority = MeanIoUMetric(), MeanIoUMetric()
    if labels:
        every = np.concatenate([gt[gt != VOID] for _, gt in labels])
        most = int(np.bincount(every).argmax()) if every.size else 0
        for out, gt in labels:
            miou.update(out, gt)
            majority.update(np.full_like(gt, most), gt)
    return {
        "depth_abs_rel": float(np.mean(abs_rel)) if abs_rel else None,
        "depth_abs_rel_baseline": float(np.mean(constant)) if constant else None,
        "miou": miou.compute().miou if labels else None,
        "miou_baseline": majority.compute().miou if labels else None,
        "motion_f1": motion.compute()["f1"] if by_topic["motion_mask"] else None,
        "motion_f1_baseline": 0.0,
        "steering_rmse_deg": float(np.degrees(np.sqrt(np.mean((pred - truth) ** 2)))) if angles else None,
        "steering_rmse_deg_baseline": float(np.degrees(np.sqrt(np.mean(truth**2)))) if angles else None,
        "frames_scored": len(abs_rel),
    }


def write_report(out: Path, got: dict[str, list], sent: list[float], world, meta: dict[str, Any]) -> dict[str, Any]:
    """Write every panel and the summary; returns the summary."""
    index_of = {s: i for i, s in enumerate(sent)}
    processed = [m for _, m in got["depth"] if stamp_seconds(m) in index_of]
    picks = sorted({len(processed) // 4, len(processed) // 2, len(processed) - 1}) if processed else []
    sample_stamps = [stamp_seconds(processed[i]) for i in picks]
    rendered = {s: world.frame(index_of[s]) for s in sample_stamps}  # each picked frame rendered once
    panels = []
    for topic in VIEWS:
        by_stamp = {stamp_seconds(m): m for _, m in got[topic]}
        samples = [(rendered[s], by_stamp[s]) for s in sample_stamps if s in by_stamp]
        if samples:
            name = topic.replace("/", "_") + ".png"
            image_panel(out / name, topic, samples)
            panels.append(name)
    if got["odom"]:
        odometry_panel(out / "odom.png", [(t, m) for t, m in got["odom"] if stamp_seconds(m) in index_of],
                       index_of, world)
        panels.append("odom.png")
    steering_panel(out / "steering.png", got["steering"], index_of, sent, world)
    panels.append("steering.png")
    arrival = {stamp_seconds(m): t for t, m in got["depth"]}
    latency = np.array([(arrival[s] - s) * 1000.0 for s in sent if s in arrival])
    diagnostics = [
        {"t": t, "level": ord(m.status[0].level), **{kv.key: kv.value for kv in m.status[0].values}}
        for t, m in got["/diagnostics"] if m.status[0].name == "perception_node: perception"
    ]
    if diagnostics:
        diagnostics_panel(out / "diagnostics.png", diagnostics, latency)
        panels.append("diagnostics.png")
    last = diagnostics[-1] if diagnostics else {}
    commands = [(stamp_seconds(m), m.drive) for _, m in got["steering"]]
    steer = [t for t, d in commands if d.speed != 0.0]
    summary = {
        **meta,
        "frames_published": len(sent),
        "frames_received": int(last.get("frames_received", 0)),
        "frames_processed": int(last.get("frames_processed", 0)),
        "frames_dropped": int(last.get("frames_dropped", 0)),
        "frames_dropped_in_transport": int(last.get("frames_dropped_in_transport", 0)),
        "frames_rejected": int(last.get("frames_rejected", 0)),
        "outputs": {topic: len(msgs) for topic, msgs in sorted(got.items())},
        "latency_ms": {f"p{q}": round(float(np.percentile(latency, q)), 1) for q in (50, 90, 99)} if len(latency)
        else {},
        "node_processing_latency_ms_p50": float(last.get("processing_latency_ms_p50", "nan")),
        "steering_commands": len(steer),
        "first_steering_frame": index_of.get(steer[0]) if steer else None,
        "stop_commands_after_input_ended": sum(1 for t, d in commands if d.speed == 0.0 and t > sent[-1]),
        # the watchdog's stops while the 16-frame window fills (no valid command yet for max_input_age)
        "stop_commands_while_window_filled": sum(1 for t, d in commands if d.speed == 0.0 and steer and t < steer[0]),
        "headers_match": all(stamp_seconds(m) in index_of and m.header.frame_id == "camera_optical"
                             for topic in VIEWS for _, m in got[topic]),
        "panels": panels,
        "ground_truth": ground_truth_scores(got, index_of, world),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(s: dict[str, Any]) -> str:
    """Human-readable summary of a demo run."""
    lines = ["# Perception node demo", ""]
    if not s["trained_weights"]:
        lines += ["> **WARNING: random weights.** No trained demo checkpoint was found, so the tiny model ran with",
                  "> random weights: topics, headers, rates, drops and latency are real; the pictures are not", ""]
    lines += [
        f"- checkpoint: `{s['checkpoint']}` on {s['device']}; camera {s['camera']}; "
        f"node start-up {s['node_startup_s']} s",
        f"- frames published {s['frames_published']}, received {s['frames_received']}, processed "
        f"{s['frames_processed']}, dropped {s['frames_dropped']} (in transport {s['frames_dropped_in_transport']}), "
        f"rejected {s['frames_rejected']}",
        "- end-to-end latency (image stamp -> depth arrival): "
        + ", ".join(f"{k} {v} ms" for k, v in s["latency_ms"].items())
        + f"; node processing p50 {s['node_processing_latency_ms_p50']} ms",
        f"- steering commands {s['steering_commands']} (first at frame {s['first_steering_frame']}; none before the "
        f"16th), stop commands while the window filled {s['stop_commands_while_window_filled']} and after the input "
        f"ended {s['stop_commands_after_input_ended']}",
        f"- every image output carries its input's stamp and frame_id: {s['headers_match']}",
        "",
        "| topic | messages |",
        "|---|---|",
        *[f"| `{t}` | {n} |" for t, n in s["outputs"].items()],
        "",
        "Panels: " + ", ".join(f"[{p}]({p})" for p in s["panels"]),
        "",
        *ground_truth_lines(s["ground_truth"]),
    ]
    return "\n".join(lines)


def ground_truth_lines(g: dict[str, Any]) -> list[str]:
    """The outputs against the synthetic world's ground truth, as a Markdown table."""
    def shown(x: float | None, unit: str = "") -> str:
        return "—" if x is None else f"{x:.3f}{unit}"

    return [
        f"## Against the ground truth ({g['frames_scored']} frames)", "",
        "| output | metric | this run | trivial baseline |",
        "|---|---|---|---|",
        f"| depth | abs_rel (median-scaled) | {shown(g['depth_abs_rel'])} | constant depth: "
        f"{shown(g['depth_abs_rel_baseline'])} |",
        f"| segmentation/semantic | mIoU | {shown(g['miou'])} | majority class: {shown(g['miou_baseline'])} |",
        f"| motion_mask | F1 of moving pixels | {shown(g['motion_f1'])} | all static: "
        f"{shown(g['motion_f1_baseline'])} |",
        f"| steering | RMSE of the Ackermann angle | {shown(g['steering_rmse_deg'], ' deg')} | always straight: "
        f"{shown(g['steering_rmse_deg_baseline'], ' deg')} |",
        "",
    ]
