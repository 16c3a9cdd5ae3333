"""Evaluate a checkpoint on a data set: the rows of the paper's Tables II, III and IV, and panels of a few frames.

- Synthetic world (:func:`evaluate_frames`): every frame once through the encoder; depth over the whole frame
  (``full_frame`` protocol), segmentation against the exact labels, steering windows of the drive cut into
  ``folds`` contiguous chunks: all three tables; and, from each pair of consecutive frames, the motion mask
  against the moving cars and the chained camera trajectory against the true one.
- Cityscapes: :func:`evaluate_depth_samples` (ManyDepth protocol) and :func:`evaluate_labelled` (Table II).
- KITTI: :func:`evaluate_depth_samples` (Eigen protocol, Garg crop).
- Lane keeping (:func:`evaluate_recordings`): every recording cut into ``folds`` chunks (fold ``k`` = chunk ``k``
  of every recording, as the lane-keeping loader's folds); the checkpoint's own steering head is evaluated on
  each chunk's windows. It is not refitted per fold, so the table has test errors only.

Windows never cross a chunk; a window's label is the curvature at its newest frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from uni_encoder_core.colour import caption, colour_depth, colour_image, colour_semantic
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.lane_keeping import fold_chunks, read_labels
from uni_encoder_core.data.synthetic.world import SyntheticFrame
from uni_encoder_core.eval.accumulate import (
    DepthEvaluation,
    MotionEvaluation,
    SegmentationEvaluation,
    SteeringEvaluation,
)
from uni_encoder_core.eval.predict import (
    FramePrediction,
    WindowStream,
    predict_frame,
    predict_pair,
    rgb_input,
    sample_input,
)
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder
from uni_encoder_core.train.steering_cv import SteeringTrainConfig


@dataclass
class EvalSettings:
    """How to evaluate: ``crop_bottom`` of frames read as RGB (synthetic, lane keeping), ``folds`` chunks per
    steering recording, steering errors in ``label_scale`` x curvature units with eq. 5's ``steering_lambda``
    (the steering stage's defaults), ``panels`` frames drawn per table, ``device`` of the model."""

    crop_bottom: float = 0.0
    folds: int = 10
    label_scale: float = SteeringTrainConfig.label_scale
    steering_lambda: float = SteeringTrainConfig.steering_lambda
    panels: int = 4
    device: str = "cpu"


@dataclass
class EvalResult:
    """What one evaluation measured: each table's numbers (None where the data set has no ground truth for it),
    the depth protocol, and panel rows (lists of captioned ``HxWx3`` uint8 images) per table."""

    depth: dict | None = None
    depth_protocol: str | None = None
    segmentation: dict | None = None
    motion: dict | None = None
    steering: dict | None = None
    steering_trace: SteeringEvaluation | None = None
    panels: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)


def panel_indices(count: int, panels: int) -> set[int]:
    """``panels`` indices spread evenly over ``0 .. count - 1``."""
    return set(np.linspace(0, count - 1, min(panels, count)).round().astype(int).tolist()) if count else set()


def _depth_row(x: torch.Tensor, pred: FramePrediction, gt: np.ndarray, name: str) -> list[np.ndarray]:
    return [caption(colour_image(x[0].cpu().numpy()), name), caption(colour_depth(pred.depth), "predicted depth"),
            caption(colour_depth(gt), "ground-truth depth")]


def _segmentation_row(x: torch.Tensor, pred: FramePrediction, gt: np.ndarray, name: str) -> list[np.ndarray]:
    return [caption(colour_image(x[0].cpu().numpy()), name), caption(colour_semantic(pred.semantic), "predicted"),
            caption(colour_semantic(gt), "ground truth")]


def _chunk_of(count: int, folds: int, window: int, source: str) -> np.ndarray:
    """Fold (chunk number) of every frame; ``DataError`` when a chunk is shorter than one window."""
    chunks = fold_chunks(count, folds)
    short = [(k, b - a) for k, (a, b) in enumerate(chunks) if b - a < window]
    if short:
        raise DataError(f"{source}: {count} frames in {folds} chunks leave chunk {short[0][0]} with {short[0][1]} "
                        f"frames, fewer than one {window}-frame steering window (fewer folds or more frames)")
    return np.concatenate([np.full(b - a, k) for k, (a, b) in enumerate(chunks)])


def evaluate_frames(model: MultiTaskModel, frame: Callable[[int], SyntheticFrame], count: int,
                    settings: EvalSettings) -> EvalResult:
    """All three tables on ``count`` synthetic frames (``frame(i)``, in drive order); a model without a steering
    head (the distillation teacher) has no Table IV."""
    device = torch.device(settings.device)
    steers = "steering" in model.parts
    chunk_of = _chunk_of(count, settings.folds, model.cfg.steering.window, "synthetic drive")
    depth, segmentation, motion = DepthEvaluation("full_frame"), SegmentationEvaluation(), MotionEvaluation()
    steering = SteeringEvaluation(settings.label_scale, settings.steering_lambda)
    stream, draw = WindowStream(model), panel_indices(count, settings.panels)
    result = EvalResult(depth_protocol=depth.protocol, panels={"depth": [], "segmentation": []})
    previous = None
    for i in tqdm(range(count), desc="eval synthetic", unit="frame"):
        f = frame(i)
        x = rgb_input(f.rgb, model, settings.crop_bottom).to(device)
        pred = predict_frame(model, x, f.semantic.shape)
        depth.add(f.depth, pred.depth)
        segmentation.add(pred, f.semantic, f.panoptic)
        if previous is None:
            motion.start(f.T_world_cam)
        else:
            motion.add(predict_pair(model, previous, pred), f.motion_mask, f.T_world_cam)
        previous = pred
        if i > 0 and chunk_of[i] != chunk_of[i - 1]:
            stream.clear()
        curvature = stream.push(pred.features[-1]) if steers else None
        if curvature is not None:
            steering.add(int(chunk_of[i]), curvature, f.curvature)
        if i in draw:
            result.panels["depth"].append(_depth_row(x, pred, f.depth, f"frame {i}"))
            result.panels["segmentation"].append(_segmentation_row(x, pred, f.semantic, f"frame {i}"))
    result.depth, result.segmentation, result.motion = depth.compute(), segmentation.compute(), motion.compute()
    if steers:
        result.steering, result.steering_trace = steering.compute(), steering
    return result


def evaluate_depth_samples(model: UniEncoder, dataset: Dataset, protocol: str, settings: EvalSettings,
                           result: EvalResult) -> None:
    """Table III on ``DepthEvalSample`` s (the target frame alone: a single-frame depth network) into ``result``."""
    device = torch.device(settings.device)
    depth, draw = DepthEvaluation(protocol), panel_indices(len(dataset), settings.panels)
    result.depth_protocol, result.panels["depth"] = protocol, []
    for i in tqdm(range(len(dataset)), desc=f"eval depth ({protocol})", unit="image"):
        sample = dataset[i]
        x = sample_input(sample.target, model).to(device)
        pred = predict_frame(model, x)
        gt = sample.gt_depth[0].numpy().astype(np.float64)
        depth.add(gt, pred.depth)
        if i in draw:
            result.panels["depth"].append(_depth_row(x, pred, gt, f"sample {i}"))
    result.depth = depth.compute()


def evaluate_labelled(model: UniEncoder, dataset: Dataset, settings: EvalSettings, result: EvalResult) -> None:
    """Table II on ``SegmentationSample`` s (labels at the model's size) into ``result``."""
    device = torch.device(settings.device)
    segmentation, draw = SegmentationEvaluation(), panel_indices(len(dataset), settings.panels)
    result.panels["segmentation"] = []
    for i in tqdm(range(len(dataset)), desc="eval segmentation", unit="image"):
        sample = dataset[i]
        x = sample_input(sample.image, model).to(device)
        semantic, panoptic = sample.semantic.numpy(), sample.panoptic.numpy()
        pred = predict_frame(model, x, semantic.shape)
        segmentation.add(pred, semantic, panoptic)
        if i in draw:
            result.panels["segmentation"].append(_segmentation_row(x, pred, semantic, f"sample {i}"))
    result.segmentation = segmentation.compute()


def evaluate_recordings(model: UniEncoder, files: list[Path], settings: EvalSettings, block: int = 64) -> EvalResult:
    """Table IV on lane-keeping recordings (HDF5 files): the checkpoint's head on every chunk's windows."""
    device = torch.device(settings.device)
    steering = SteeringEvaluation(settings.label_scale, settings.steering_lambda)
    stream = WindowStream(model)
    for path in files:
        curvature, _ = read_labels(path)
        chunk_of = _chunk_of(len(curvature), settings.folds, stream.window, str(path))
        stream.clear()
        with h5py.File(path, "r") as fh, tqdm(total=len(curvature), desc=f"eval {path.name}", unit="frame") as bar:
            for start in range(0, len(curvature), block):
                for i, rgb in enumerate(fh["images"][start:start + block], start):
                    if i > 0 and chunk_of[i] != chunk_of[i - 1]:
                        stream.clear()
                    with torch.no_grad():
                        coarsest = model.encode(rgb_input(rgb, model, settings.crop_bottom).to(device))[-1]
                    predicted = stream.push(coarsest)
                    if predicted is not None:
                        steering.add(int(chunk_of[i]), predicted, float(curvature[i]))
                    bar.update()
    return EvalResult(steering=steering.compute(), steering_trace=steering)
