"""Image panels for TensorBoard: depth, segmentation, motion mask and flow of one held-out sample, each
prediction beside its ground truth (``HxWx3`` uint8 RGB, captioned)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from uni_encoder_core.labels import PALETTE
from uni_encoder_core.models.segmentation import to_semantic
from uni_encoder_core.models.unified import MultiTaskModel
from uni_encoder_core.train.batch import TrainBatch


def _colour(values: np.ndarray, valid: np.ndarray | None = None, scale: float | None = None) -> np.ndarray:
    """HxW non-negative values -> magma RGB, scaled by ``scale`` (default: their 98th percentile); invalid black."""
    valid = np.isfinite(values) if valid is None else valid & np.isfinite(values)
    if scale is None:
        scale = float(np.percentile(values[valid], 98)) if valid.any() else 1.0
    img = cv2.applyColorMap(np.clip(values / max(scale, 1e-9) * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_MAGMA)
    return np.where(valid[..., None], img[..., ::-1], 0).astype(np.uint8)


def _pair(left: np.ndarray, right: np.ndarray, caption: str) -> np.ndarray:
    panel = np.ascontiguousarray(np.concatenate([left, right], axis=1))
    cv2.putText(panel, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def _inverse(depth: np.ndarray) -> np.ndarray:
    return np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)


@torch.no_grad()
def panels(model: MultiTaskModel, batch: TrainBatch) -> dict[str, np.ndarray]:
    """Panels of the first sample of ``batch``: ``depth`` (inverse depth), ``segmentation`` (semantic, Cityscapes
    colours), ``motion_mask`` and ``flow`` (3D flow magnitude; predicted complete flow vs ground-truth object
    motion) to the next frame. Only what the batch has ground truth for; the model is used in eval mode."""
    was_training = model.training
    model.eval()
    out: dict[str, np.ndarray] = {}
    try:
        if batch.triplets is not None:
            trip = batch.triplets
            frames = {o: images[:1] for o, images in batch.frames.items()}
            pred = model.forward_train(frames, motion=True)
            if trip.depth is not None:
                gt = trip.depth[0, 0].cpu().numpy()
                out["depth"] = _pair(_colour(_inverse(pred.depth[0, 0].float().cpu().numpy())),
                                     _colour(_inverse(gt), gt > 0), "depth: prediction | truth")
            o = max(pred.motion_mask) if pred.motion_mask else None
            if o is not None and trip.motion_mask is not None:
                mask = pred.motion_mask[o][0, 0].float().cpu().numpy()
                out["motion_mask"] = _pair(_colour(mask, scale=1.0), _colour(trip.motion_mask[0, 0].cpu().numpy(),
                                                                             scale=1.0), "motion: prediction | truth")
            if o is not None and trip.scene_flow is not None:
                flow = pred.complete_flow[o][0].float().norm(dim=0).cpu().numpy()
                truth = trip.scene_flow[0, trip.offsets.index(o)].norm(dim=0).cpu().numpy()
                out["flow"] = _pair(_colour(flow), _colour(truth), f"|flow| to {o:+d}: complete | object truth")
        if batch.labelled is not None:
            size = tuple(batch.labelled.image.shape[-2:])
            tasks = model.cfg.segmentation.tasks
            task = "semantic" if "semantic" in tasks else tasks[0]
            seg = model.predict_segmentation(model.encode(batch.labelled.image[:1]), [task])[task]
            labels = to_semantic(seg.class_logits.float(), seg.mask_logits.float(), size)[0].cpu().numpy()
            truth = batch.labelled.semantic[0].cpu().numpy().astype(np.uint8)
            caption = "semantic: prediction | truth"
            out["segmentation"] = _pair(PALETTE[labels.astype(np.uint8)], PALETTE[truth], caption)
    finally:
        model.train(was_training)
    return out
