"""``uni-encoder replay``: run recordings (rosbag2, MCAP or SQLite3) through the node's pipeline without ROS.

Layout of ``--out DIR`` (built beside it and moved into place when complete; a non-empty one needs
``--overwrite``): ``report.md`` and ``report.json`` over every bag, and per bag ``<name>/bag/`` (the output
rosbag2, MCAP, with the node's topics), ``<name>/steering.png`` (predicted and recorded curvature over time) and
``<name>/frames.png`` (sampled frames and their outputs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.config import LossConfig
from uni_encoder_core.errors import UsageError
from uni_encoder_core.inference.settings import NodeConfig, PipelineConfig, load_node_parameters


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
                        help="output directory (default results/replay)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


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
    """Replay every ``--bag``; returns the exit code.

    Raises, before the model loads: ``UsageError`` for inconsistent options, ``OutputExistsError`` for a non-empty
    ``--out`` without ``--overwrite``, ``BagError`` naming an unreadable bag or a missing topic, ``ConfigError``
    for a bad ``--config``; then ``CheckpointError`` / ``PipelineError`` from the model.
    """
    from uni_encoder_core.bags.replay import ReplayConfig, check_bag, replay_bag
    from uni_encoder_core.bags.replay_report import bag_summary, plot_panels, plot_steering, write_report
    from uni_encoder_core.inference.pipeline import PerceptionPipeline

    if args.steering_topic and not (args.wheelbase and args.wheelbase > 0):
        raise UsageError("--steering-topic (Ackermann angles) needs --wheelbase > 0 (m)")
    if args.tolerance < 0:
        raise UsageError(f"--tolerance must be >= 0 s, got {args.tolerance}")
    cfg = ReplayConfig(args.image_topic, args.camera_info_topic, args.curvature_topic, args.steering_topic,
                       args.wheelbase, args.tolerance, args.steering_lambda)
    check_output_directory(args.out, args.overwrite)
    pipeline_cfg, node = settings(args)
    for bag in args.bag:  # every bag readable, with every topic, before the model loads
        check_bag(bag, cfg)
    pipeline = PerceptionPipeline(pipeline_cfg)
    setup = {"checkpoint": args.checkpoint, "config": str(args.config) if args.config else "defaults",
             "image_topic": cfg.image_topic, "steering_topic": cfg.curvature_topic or cfg.steering_topic,
             "device": pipeline_cfg.device, "precision": pipeline_cfg.precision}
    summaries = []
    with atomic_directory(args.out, args.overwrite) as out:
        for bag, name in zip(args.bag, names(args.bag)):
            (out / name).mkdir()
            result = replay_bag(bag, pipeline, node, cfg, out / name / "bag")
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
