"""``uni-encoder replay``: run recordings (rosbag2, MCAP or SQLite3) through the node's pipeline without ROS.

Layout of ``--out DIR`` (built beside it and moved into place when complete): ``report.md`` and ``report.json``
over every bag, and per bag ``<name>/bag/`` (the output rosbag2, MCAP, with the node's topics), ``<name>/steering.png``
(predicted and recorded curvature over time) and ``<name>/frames.png`` (sampled frames and their outputs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from uni_encoder_core.config import ConfigError, LossConfig, NodeConfig, PipelineConfig, load_node_parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``uni-encoder replay``."""
    parser.add_argument("--bag", action="append", required=True, type=Path,
                        help="rosbag2 recording (directory, .mcap or .db3); repeat for several, one model load")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint (.pt)")
    parser.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    parser.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo topic (else the 'intrinsics' setting)")
    steering = parser.add_mutually_exclusive_group()
    steering.add_argument("--curvature-topic", help="recorded curvature (std_msgs/Float32 or Float64, 1/m)")
    steering.add_argument("--steering-topic", help="recorded ackermann_msgs/AckermannDriveStamped (needs --wheelbase)")
    parser.add_argument("--wheelbase", type=float,
                        help="m; turns recorded Ackermann angles into curvature and sets the pipeline's wheelbase")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="s; farthest recorded steering sample from a prediction's stamp (default 0.05)")
    parser.add_argument("--steering-lambda", type=float, default=LossConfig().steering_lambda,
                        help="lambda of the weighted MSE (eq. 5)")
    parser.add_argument("--config", type=Path,
                        help="the node's parameter file (config/perception.yaml) for pipeline and message settings")
    parser.add_argument("--out", type=Path, default=Path("results/replay"),
                        help="output directory (new or empty; default results/replay)")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A hidden directory beside ``out`` to build into; renamed to ``out`` (new or empty) when the body succeeds."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"uni-encoder replay: {out} exists and is not an empty directory; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def settings(args: argparse.Namespace) -> tuple[PipelineConfig, NodeConfig]:
    """Pipeline and node settings: ``--config`` (or the defaults), with ``--checkpoint`` and ``--wheelbase``."""
    pipeline, node = load_node_parameters(args.config) if args.config else (PipelineConfig(), NodeConfig())
    pipeline.checkpoint = args.checkpoint
    if args.wheelbase is not None:
        pipeline.wheelbase = args.wheelbase
    return pipeline, node


def names(bags: list[Path]) -> list[str]:
    """A distinct folder name per bag (its file or directory stem, numbered when two share one)."""
    stems = [bag.resolve().stem for bag in bags]
    return [s if stems.count(s) == 1 else f"{i:02d}_{s}" for i, s in enumerate(stems)]


def run(args: argparse.Namespace) -> int:
    """Replay every ``--bag``; returns the exit code (unreadable bags and bad settings exit with a message)."""
    from uni_encoder_core.bags.reader import BagError
    from uni_encoder_core.bags.replay import ReplayConfig, check_bag, replay_bag
    from uni_encoder_core.bags.replay_report import bag_summary, plot_panels, plot_steering, write_report
    from uni_encoder_core.inference.pipeline import PerceptionPipeline, PipelineError
    from uni_encoder_core.models.checkpoint import CheckpointError

    if args.steering_topic and not (args.wheelbase and args.wheelbase > 0):
        raise SystemExit("uni-encoder replay: --steering-topic (Ackermann angles) needs --wheelbase > 0 (m)")
    cfg = ReplayConfig(args.image_topic, args.camera_info_topic, args.curvature_topic, args.steering_topic,
                       args.wheelbase, args.tolerance, args.steering_lambda)
    try:
        pipeline_cfg, node = settings(args)
        for bag in args.bag:  # every bag readable, with every topic, before the model loads
            check_bag(bag, cfg)
        pipeline = PerceptionPipeline(pipeline_cfg)
    except (BagError, ConfigError, CheckpointError, PipelineError) as exc:
        raise SystemExit(f"uni-encoder replay: {exc}") from None
    setup = {"checkpoint": args.checkpoint, "config": str(args.config) if args.config else "defaults",
             "image_topic": cfg.image_topic, "steering_topic": cfg.curvature_topic or cfg.steering_topic,
             "device": pipeline_cfg.device, "precision": pipeline_cfg.precision}
    summaries = []
    with staged(args.out) as out:
        for bag, name in zip(args.bag, names(args.bag)):
            (out / name).mkdir()
            try:
                result = replay_bag(bag, pipeline, node, cfg, out / name / "bag")
            except (BagError, ValueError) as exc:
                raise SystemExit(f"uni-encoder replay: {exc}") from None
            result.output = args.out / name / "bag"
            summaries.append(bag_summary(result, pipeline_cfg.wheelbase, cfg.tolerance, cfg.steering_lambda))
            plot_steering(result, pipeline_cfg.wheelbase, out / name / "steering.png")
            plot_panels(result, out / name / "frames.png")
            s = summaries[-1]
            score = "" if s["steering"] is None else f", command MSE {s['steering']['command_mse']:.4g} (1/m)^2"
            print(f"{bag}: {s['processed']}/{s['input_frames']} frames, {len(s['rejected'])} rejected, "
                  f"{len(s['resets'])} resets{score}")
        write_report(out, summaries, setup)
    print(f"wrote {args.out}/report.md, report.json and {len(summaries)} output bag(s)")
    return 0
