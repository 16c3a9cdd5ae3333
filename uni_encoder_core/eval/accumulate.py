"""Data-set accumulators of the paper's three tables, fed one frame (or window) at a time.

- :class:`DepthEvaluation` (Table III): per-image errors under one protocol, averaged over images.
- :class:`SegmentationEvaluation` (Table II): PQ (panoptic task), mask AP (instance task), mIoU (semantic task).
- :class:`SteeringEvaluation` (Table IV): plain and weighted MSE per fold (a contiguous chunk of every recording),
  mean ± std over the folds. Errors are in squared ``label_scale`` x curvature units, the units the steering stage
  trains and reports in; the weights are ``exp(lambda |y|)`` on that label (paper eq. 5).
- :class:`MotionEvaluation` (where the data has camera poses and moving-object masks, as the synthetic world
  does): motion-mask precision, recall and F1, and the absolute trajectory error of the chained frame-to-frame
  poses beside a camera that never moves.
"""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np

from uni_encoder_core.eval.depth import (
    DepthErrorAccumulator,
    cityscapes_depth_errors,
    compute_depth_errors,
    eigen_depth_errors,
    resize_depth,
)
from uni_encoder_core.eval.motion import MotionMaskMetric
from uni_encoder_core.eval.pose import sequence_ate, trajectory_from_relative_poses, zero_motion_ate
from uni_encoder_core.eval.predict import FramePrediction, PairPrediction
from uni_encoder_core.eval.segmentation import (
    MaskAPMetric,
    MeanIoUMetric,
    PanopticQualityMetric,
    instances_from_panoptic,
)
from uni_encoder_core.eval.steering import mse, summarize_folds, weighted_mse


def full_frame_depth_errors(gt_depth: np.ndarray, pred_depth: np.ndarray) -> dict[str, float]:
    """Errors over the whole frame: the prediction resized (as disparity) to the ground truth, which keeps its
    pixels inside ``(1e-3, 80)`` m; per-image median scaling (the synthetic world's protocol)."""
    return compute_depth_errors(gt_depth, resize_depth(pred_depth, *np.shape(gt_depth)))


DEPTH_PROTOCOLS = {
    "eigen": eigen_depth_errors,
    "cityscapes": cityscapes_depth_errors,
    "full_frame": full_frame_depth_errors,
}
"""Protocol name -> per-image errors of (full-resolution ground truth HxW, network-size predicted depth hxw)."""


class DepthEvaluation:
    """Table III row of one data set under ``protocol`` (a key of :data:`DEPTH_PROTOCOLS`)."""

    def __init__(self, protocol: str):
        if protocol not in DEPTH_PROTOCOLS:
            raise ValueError(f"unknown depth protocol {protocol!r}; known: {', '.join(DEPTH_PROTOCOLS)}")
        self.protocol, self._errors = protocol, DEPTH_PROTOCOLS[protocol]
        self._mean = DepthErrorAccumulator()

    def add(self, gt_depth: np.ndarray, pred_depth: np.ndarray) -> dict[str, float]:
        """Add one image (ground truth in metres, 0 = unknown; prediction at network size); returns its errors."""
        errors = self._errors(gt_depth, pred_depth)
        self._mean.add(errors)
        return errors

    def compute(self) -> dict[str, float]:
        """The seven metrics of ``eval.depth.DEPTH_METRICS``, averaged over the images, and ``images``."""
        return {**self._mean.compute(), "images": self._mean.count}


class SegmentationEvaluation:
    """Table II row: PQ (also SQ, RQ, things / stuff), mask AP (AP50, AP75) and mIoU of one data set."""

    def __init__(self) -> None:
        self.pq, self.ap, self.miou = PanopticQualityMetric(), MaskAPMetric(), MeanIoUMetric()
        self.images = self.gt_instances = 0

    def add(self, pred: FramePrediction, gt_semantic: np.ndarray, gt_panoptic: np.ndarray) -> None:
        """Add one image's predictions (at the labels' size) and ground truth (train ids, panoptic ids)."""
        self.pq.update(pred.panoptic, gt_panoptic)
        self.miou.update(pred.semantic, gt_semantic)
        gt_masks, gt_labels = instances_from_panoptic(gt_panoptic)
        inst = pred.instances
        self.ap.update(inst.masks, inst.labels, inst.scores, gt_masks, gt_labels)
        self.images += 1
        self.gt_instances += len(gt_labels)

    def compute(self) -> dict[str, float | int | None]:
        """Fractions in [0, 1]: ``pq sq rq pq_th pq_st ap ap50 ap75 miou`` (AP is None without any ground-truth
        instance), ``images`` and ``gt_instances``."""
        pq = self.pq.compute()
        ap = self.ap.compute() if self.gt_instances else {"AP": None, "AP50": None, "AP75": None}
        return {"pq": pq.pq, "sq": pq.sq, "rq": pq.rq, "pq_th": pq.pq_th, "pq_st": pq.pq_st,
                "ap": ap["AP"], "ap50": ap["AP50"], "ap75": ap["AP75"], "miou": self.miou.compute().miou,
                "images": self.images, "gt_instances": self.gt_instances}


class SteeringEvaluation:
    """Table IV: the checkpoint's steering head on the windows of each fold (curvatures in 1/m in :meth:`add`)."""

    def __init__(self, label_scale: float, steering_lambda: float):
        if not label_scale > 0:
            raise ValueError(f"label_scale must be positive, got {label_scale}")
        self.label_scale, self.steering_lambda = label_scale, steering_lambda
        self.pred: dict[int, list[float]] = defaultdict(list)
        self.target: dict[int, list[float]] = defaultdict(list)

    def add(self, fold: int, pred: float, target: float) -> None:
        """One window of ``fold``: predicted and true curvature (1/m) at its newest frame."""
        self.pred[fold].append(pred)
        self.target[fold].append(target)

    def _errors(self, pred: list[float], target: list[float]) -> dict[str, float]:
        p, t = np.asarray(pred) * self.label_scale, np.asarray(target) * self.label_scale
        return {"mse": mse(p, t), "weighted_mse": weighted_mse(p, t, self.steering_lambda), "windows": len(p)}

    def compute(self) -> dict:
        """``folds`` (per fold: ``fold``, ``mse``, ``weighted_mse``, ``windows``), ``mse`` / ``weighted_mse``
        as ``{"mean", "std"}`` over the folds (population std), ``all`` (errors over every window together),
        ``label_scale`` and ``steering_lambda``. Raises ``ValueError`` when no window was added."""
        if not self.pred:
            raise ValueError("no steering window was evaluated (recordings shorter than one window?)")
        folds = [{"fold": k, **self._errors(self.pred[k], self.target[k])} for k in sorted(self.pred)]
        summary = {m: summarize_folds([f[m] for f in folds]) for m in ("mse", "weighted_mse")}
        every = sorted(self.pred)
        return {
            "folds": folds,
            **{m: {"mean": s.mean, "std": s.std} for m, s in summary.items()},
            "all": self._errors([p for k in every for p in self.pred[k]], [t for k in every for t in self.target[k]]),
            "label_scale": self.label_scale, "steering_lambda": self.steering_lambda,
        }


class MotionEvaluation:
    """Motion mask and odometry over one drive, fed its consecutive frame pairs in order.

    F1 of the motion mask (probability > 0.5, resized to the ground truth's size) sums pixel counts over the drive.
    The trajectory chains the predicted ``T_prev_cur`` from the first frame; its ATE is the RMSE of the camera
    positions after Umeyama alignment with scale (a monocular network's translation has no metric scale). A camera
    that never moves is the baseline (:func:`~uni_encoder_core.eval.pose.zero_motion_ate`).
    """

    def __init__(self) -> None:
        self.mask = MotionMaskMetric()
        self.relative: list[np.ndarray] = []
        self.gt_poses: list[np.ndarray] = []

    def start(self, gt_pose: np.ndarray) -> None:
        """The drive's first frame: its camera-to-world pose 4x4 (the trajectory's origin)."""
        self.relative, self.gt_poses = [], [np.asarray(gt_pose, np.float64)]

    def add(self, pair: PairPrediction, gt_mask: np.ndarray, gt_pose: np.ndarray) -> None:
        """The next frame: the pair's prediction, this frame's moving-object mask HxW bool and camera pose 4x4."""
        if not self.gt_poses:
            raise ValueError("MotionEvaluation.start must be given the drive's first pose before its pairs")
        mask = pair.motion_mask
        if mask.shape != gt_mask.shape:
            mask = cv2.resize(mask.astype(np.float32), gt_mask.shape[::-1], interpolation=cv2.INTER_LINEAR)
        self.mask.update(np.clip(mask, 0.0, 1.0), gt_mask)
        self.relative.append(pair.relative_pose)
        self.gt_poses.append(np.asarray(gt_pose, np.float64))

    def compute(self) -> dict[str, float | int]:
        """``motion_precision``, ``motion_recall``, ``motion_f1`` (fractions), ``ate`` and ``ate_zero_motion``
        (the ground truth's length units) and ``frames``. Raises ``ValueError`` with fewer than 3 frames."""
        if len(self.gt_poses) < 3:
            raise ValueError(f"an ATE needs a drive of at least 3 frames, got {len(self.gt_poses)}")
        gt = np.stack(self.gt_poses)
        pred = trajectory_from_relative_poses(np.stack(self.relative))
        mask = self.mask.compute()
        return {"motion_precision": mask["precision"], "motion_recall": mask["recall"], "motion_f1": mask["f1"],
                "ate": sequence_ate(gt, pred), "ate_zero_motion": zero_motion_ate(gt), "frames": len(gt)}
