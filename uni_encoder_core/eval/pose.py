"""Pose metrics: absolute trajectory error (ATE) of camera positions.

Two protocols:

- **Snippet ATE** (:func:`snippet_ates`, the SfMLearner / monodepth2 KITTI odometry protocol): every window of
  ``length`` consecutive frames (5 by default; only full windows) is expressed in the coordinates of its first
  camera, the predicted positions are shifted so the first ones coincide and scaled by the least-squares factor
  ``s = sum(gt . pred) / sum(pred . pred)``, and the error is ``sqrt(sum ||s * pred - gt||^2) / length``
  (this normalisation, not a root *mean* square, is the one behind the published numbers). Report the mean and
  the (population) standard deviation over the windows.
- **Sequence ATE** (:func:`sequence_ate`): the whole predicted trajectory is aligned to the ground truth by the
  closed-form similarity transform of Umeyama (rotation, translation and scale; scale off for metric
  predictions), then ``ATE = sqrt(mean ||aligned - gt||^2)``, the RMSE of the positions (as TUM / evo do).
  :func:`zero_motion_ate` is the same error for a camera that never moves (the trivial baseline).

Trajectories are camera-to-world poses ``Nx4x4`` (camera optical frame) or positions ``Nx3``; a monocular
network's relative poses become one with :func:`trajectory_from_relative_poses`.
"""

from __future__ import annotations

import numpy as np
import torch

from uni_encoder_core.eval.arrays import to_numpy


def _poses(name: str, x: np.ndarray | torch.Tensor) -> np.ndarray:
    x = to_numpy(x, np.float64)
    if x.ndim != 3 or x.shape[1:] != (4, 4):
        raise ValueError(f"{name} must be Nx4x4 poses, got shape {x.shape}")
    return x


def _positions(name: str, x: np.ndarray | torch.Tensor) -> np.ndarray:
    x = to_numpy(x, np.float64)
    if x.ndim == 3 and x.shape[1:] == (4, 4):
        return x[:, :3, 3]
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"{name} must be Nx4x4 poses or Nx3 positions, got shape {x.shape}")
    return x


def trajectory_from_relative_poses(relative: np.ndarray | torch.Tensor) -> np.ndarray:
    """Camera-to-world poses ``(N+1)x4x4`` (first camera = world) from ``N`` relative poses ``Nx4x4``.

    ``relative[i]`` is the network's ``T_t->s`` with target frame ``i+1`` and source frame ``i``: it maps points
    of camera ``i+1`` into camera ``i``, i.e. it is camera ``i+1``'s pose in camera ``i``. Hence
    ``P_{i+1} = P_i @ relative[i]``.
    """
    relative = _poses("relative poses", relative)
    poses = [np.eye(4)]
    for step in relative:
        poses.append(poses[-1] @ step)
    return np.stack(poses)


def snippet_ate(gt_xyz: np.ndarray | torch.Tensor, pred_xyz: np.ndarray | torch.Tensor) -> float:
    """ATE of one snippet (positions ``Lx3`` in the first camera's coordinates), SfMLearner's formula."""
    gt, pred = _positions("gt_xyz", gt_xyz), _positions("pred_xyz", pred_xyz)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    pred = pred + (gt[0] - pred[0])
    norm = np.sum(pred**2)
    if norm == 0:
        raise ValueError("the predicted snippet does not move; its scale cannot be aligned")
    scale = np.sum(gt * pred) / norm
    return float(np.sqrt(np.sum((scale * pred - gt) ** 2)) / gt.shape[0])


def snippet_ates(gt_poses: np.ndarray | torch.Tensor, pred_poses: np.ndarray | torch.Tensor,
                 length: int = 5) -> np.ndarray:
    """Snippet ATE of every full window of ``length`` frames of two camera-to-world trajectories ``Nx4x4``."""
    gt, pred = _poses("gt_poses", gt_poses), _poses("pred_poses", pred_poses)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    if length < 2 or len(gt) < length:
        raise ValueError(f"need snippets of at least 2 frames and a trajectory that long; got {length}, {len(gt)}")
    ates = []
    for i in range(len(gt) - length + 1):
        gt_local = np.linalg.inv(gt[i]) @ gt[i:i + length]
        pred_local = np.linalg.inv(pred[i]) @ pred[i:i + length]
        ates.append(snippet_ate(gt_local[:, :3, 3], pred_local[:, :3, 3]))
    return np.array(ates)


def umeyama_alignment(source: np.ndarray, target: np.ndarray, with_scale: bool = True
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``(s, R, t)`` minimising ``sum ||target_i - (s R source_i + t)||^2`` (points ``Nx3``)."""
    source, target = _positions("source", source), _positions("target", target)
    if source.shape != target.shape or len(source) < 3:
        raise ValueError(f"need two equal sets of at least 3 points, got {source.shape} and {target.shape}")
    mu_s, mu_t = source.mean(0), target.mean(0)
    centred_s, centred_t = source - mu_s, target - mu_t
    variance = np.mean(np.sum(centred_s**2, axis=1))
    if variance == 0:
        raise ValueError("the source points all coincide; no alignment is defined")
    u, d, vt = np.linalg.svd(centred_t.T @ centred_s / len(source))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / variance) if with_scale else 1.0
    return scale, rotation, mu_t - scale * rotation @ mu_s


def sequence_ate(gt: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor, with_scale: bool = True) -> float:
    """RMSE of positions after aligning the whole predicted trajectory to the ground truth (Umeyama)."""
    gt_xyz, pred_xyz = _positions("gt", gt), _positions("pred", pred)
    scale, rotation, translation = umeyama_alignment(pred_xyz, gt_xyz, with_scale)
    aligned = scale * pred_xyz @ rotation.T + translation
    return float(np.sqrt(np.mean(np.sum((aligned - gt_xyz) ** 2, axis=1))))


def zero_motion_ate(gt: np.ndarray | torch.Tensor) -> float:
    """Sequence ATE of a trajectory that stands still: every predicted position the same point.

    A static trajectory has no scale or rotation to align; the best translation puts it at the ground truth's
    centroid, so the error is the RMS distance of the true positions from their centroid (the limit of
    :func:`sequence_ate` as the predicted motion shrinks to zero). ``gt``: ``Nx4x4`` poses or ``Nx3`` positions.
    """
    gt_xyz = _positions("gt", gt)
    return float(np.sqrt(np.mean(np.sum((gt_xyz - gt_xyz.mean(0)) ** 2, axis=1))))
