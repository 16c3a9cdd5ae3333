"""Segmentation metrics (paper Table II): panoptic quality, mask AP and mIoU on Cityscapes train ids.

Label conventions: semantic maps hold train ids ``0..18`` (``0..10`` stuff, ``11..18`` things) and ``255`` for
void; panoptic maps hold ``category * 1000 + instance`` (instance 0 for stuff). Void ground truth is ignored
everywhere. A thing pixel without an instance id in the ground truth is a crowd region (Cityscapes marks
those ``iscrowd``) and is treated as void.

- PQ/SQ/RQ (torchmetrics ``PanopticQuality``): segments match when their IoU exceeds 0.5;
  ``PQ = sum(IoU of matches) / (TP + FP/2 + FN/2)`` per class; class means run over the classes seen in
  the ground truth or prediction (``TP + FP + FN > 0``), overall and split into things (``PQ_th``) and
  stuff (``PQ_st``). As in panopticapi, a ground-truth segment the prediction leaves void is a false negative
  (torchmetrics alone would skip it when the prediction is mostly void there).
- Mask AP (pycocotools ``COCOeval``, ``iouType='segm'``) over the thing classes: AP averaged over the IoU
  thresholds 0.50:0.05:0.95, also AP50 and AP75.
- mIoU: a data set's confusion matrix, ``IoU = TP / (TP + FP + FN)`` per class, mean over classes present in
  the ground truth or prediction. A prediction of 255 on a labelled pixel counts as a miss for that class.

All scores are fractions in ``[0, 1]``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchmetrics.detection import PanopticQuality

from uni_encoder_core.eval.arrays import to_numpy
from uni_encoder_core.labels import NUM_CLASSES, STUFF_CLASSES, THING_CLASSES, VOID, split_panoptic


def _to_long(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return (x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))).long()


@dataclass(frozen=True)
class PanopticScores:
    """PQ/SQ/RQ over all classes, things and stuff; ``per_class`` maps train id -> (PQ, SQ, RQ)."""

    pq: float
    sq: float
    rq: float
    pq_th: float
    sq_th: float
    rq_th: float
    pq_st: float
    sq_st: float
    rq_st: float
    per_class: dict[int, tuple[float, float, float]]


class PanopticQualityMetric:
    """Accumulates panoptic matches over images; :meth:`compute` gives :class:`PanopticScores`."""

    def __init__(self, things: tuple[int, ...] = THING_CLASSES, stuffs: tuple[int, ...] = STUFF_CLASSES):
        self.things, self.stuffs = tuple(things), tuple(stuffs)
        # Predicted void becomes a category of its own that no ground truth has: torchmetrics would drop the false
        # negative of a ground-truth segment the prediction leaves mostly void; panopticapi counts it.
        self.unlabelled = max(self.things + self.stuffs) + 1
        self._metric = PanopticQuality(things=set(things), stuffs={*stuffs, self.unlabelled},
                                       allow_unknown_preds_category=True, return_sq_and_rq=True,
                                       return_per_class=True)

    def _pairs(self, name: str, panoptic: torch.Tensor, crowd_is_void: bool) -> torch.Tensor:
        category, instance = split_panoptic(panoptic)
        known = torch.isin(category, torch.tensor(self.things + self.stuffs))
        unknown = torch.unique(category[~known & (category != VOID)])
        if unknown.numel():
            raise ValueError(f"{name} has categories {unknown.tolist()} outside things, stuff and {VOID}")
        category = torch.where(known, category, torch.full_like(category, VOID))
        if crowd_is_void:
            crowd = torch.isin(category, torch.tensor(self.things)) & (instance == 0)
            category = torch.where(crowd, torch.full_like(category, VOID), category)
        else:
            void = category == VOID
            category = torch.where(void, torch.full_like(category, self.unlabelled), category)
            instance = torch.where(void, torch.zeros_like(instance), instance)
        return torch.stack([category, instance], dim=-1)

    def update(self, pred_panoptic: np.ndarray | torch.Tensor, gt_panoptic: np.ndarray | torch.Tensor) -> None:
        """Add panoptic id maps ``HxW`` or ``BxHxW`` (``category * 1000 + instance``; category 255 = void)."""
        pred, gt = _to_long(pred_panoptic), _to_long(gt_panoptic)
        if pred.shape != gt.shape or pred.dim() not in (2, 3):
            raise ValueError(f"panoptic maps must both be HxW or BxHxW, got {tuple(pred.shape)}, {tuple(gt.shape)}")
        if pred.dim() == 2:
            pred, gt = pred[None], gt[None]
        self._metric.update(self._pairs("prediction", pred, False), self._pairs("ground truth", gt, True))

    def compute(self) -> PanopticScores:
        """Per-class and averaged scores; raises ``ValueError`` when no segment was seen at all."""
        m = self._metric
        ids = sorted(self.things) + sorted({*self.stuffs, self.unlabelled})  # torchmetrics' continuous id order
        seen = (m.true_positives + m.false_positives + m.false_negatives) > 0  # torchmetrics' classes in the means
        seen &= torch.tensor([i != self.unlabelled for i in ids])
        if not seen.any():
            raise ValueError("no ground-truth or predicted segment was added; PQ is undefined")
        pq, sq, rq = m.compute().double().unbind(-1)  # per class (continuous ids) x (PQ, SQ, RQ)
        is_thing = torch.tensor([i in self.things for i in ids])

        def mean(values: torch.Tensor, subset: torch.Tensor) -> float:
            keep = seen & subset
            return float(values[keep].mean()) if keep.any() else float("nan")

        everything = torch.ones_like(is_thing)
        return PanopticScores(
            *(mean(v, everything) for v in (pq, sq, rq)),
            *(mean(v, is_thing) for v in (pq, sq, rq)),
            *(mean(v, ~is_thing) for v in (pq, sq, rq)),
            per_class={i: (float(pq[k]), float(sq[k]), float(rq[k])) for k, i in enumerate(ids) if seen[k]},
        )


@dataclass(frozen=True)
class SemanticScores:
    """Mean IoU and the IoU of every class present in the ground truth or prediction (train id -> IoU)."""

    miou: float
    per_class: dict[int, float]


class MeanIoUMetric:
    """Confusion-matrix mIoU over a data set (pixels with ground truth 255 are ignored)."""

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_label: int = VOID):
        self.num_classes, self.ignore_label = num_classes, ignore_label
        # Rows: ground truth; columns: prediction, the last one for predictions outside 0..num_classes-1.
        self.confusion = torch.zeros(num_classes, num_classes + 1, dtype=torch.long)

    def update(self, pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> None:
        """Add semantic maps of equal shape (train ids)."""
        pred, gt = _to_long(pred), _to_long(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in shape")
        keep = gt != self.ignore_label
        bad = torch.unique(gt[keep & ((gt < 0) | (gt >= self.num_classes))])
        if bad.numel():
            raise ValueError(f"ground truth has labels {bad.tolist()} outside 0..{self.num_classes - 1} and 255")
        gt, pred = gt[keep], pred[keep]
        pred = torch.where((pred >= 0) & (pred < self.num_classes), pred, torch.full_like(pred, self.num_classes))
        index = gt * (self.num_classes + 1) + pred
        counts = torch.bincount(index, minlength=self.num_classes * (self.num_classes + 1))
        self.confusion += counts.view(self.num_classes, self.num_classes + 1)

    def compute(self) -> SemanticScores:
        """IoU per class and their mean; raises ``ValueError`` before any labelled pixel was added."""
        tp = self.confusion.diagonal().double()
        union = self.confusion.sum(1).double() + self.confusion[:, : self.num_classes].sum(0).double() - tp
        present = union > 0
        if not present.any():
            raise ValueError("no labelled pixel was added; mIoU is undefined")
        iou = tp / union.clamp(min=1)
        return SemanticScores(float(iou[present].mean()), {c: float(iou[c]) for c in range(self.num_classes)
                                                           if present[c]})


def instances_from_panoptic(panoptic: np.ndarray | torch.Tensor, things: tuple[int, ...] = THING_CLASSES
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Thing instances of a panoptic id map ``HxW``: masks ``NxHxW`` bool and train ids ``N`` (crowd skipped)."""
    ids = _to_long(panoptic).numpy()
    segments = np.unique(ids)
    category, instance = split_panoptic(segments)
    thing = np.isin(category, things) & (instance != 0)
    masks = np.stack([ids == s for s in segments[thing]]) if thing.any() else np.zeros((0, *ids.shape), dtype=bool)
    return masks, category[thing]


def _rle(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


class MaskAPMetric:
    """COCO mask AP over the thing classes (pycocotools ``COCOeval`` with ``iouType='segm'``)."""

    def __init__(self, things: tuple[int, ...] = THING_CLASSES):
        self.things = tuple(things)
        self._images: list[dict] = []
        self._gt: list[dict] = []
        self._dt: list[dict] = []

    def update(self, pred_masks, pred_labels, pred_scores, gt_masks, gt_labels) -> None:
        """Add one image: predicted masks ``NxHxW`` with train ids ``N`` and scores ``N``; ground truth ``MxHxW``."""
        pred_masks, gt_masks = to_numpy(pred_masks, bool), to_numpy(gt_masks, bool)
        pred_labels, gt_labels = _to_long(pred_labels).reshape(-1), _to_long(gt_labels).reshape(-1)
        pred_scores = to_numpy(pred_scores, np.float64).reshape(-1)
        if pred_masks.ndim != 3 or gt_masks.ndim != 3 or pred_masks.shape[1:] != gt_masks.shape[1:]:
            raise ValueError(f"masks must be NxHxW of one image size, got {pred_masks.shape} and {gt_masks.shape}")
        if not len(pred_masks) == len(pred_labels) == len(pred_scores) or len(gt_masks) != len(gt_labels):
            raise ValueError("every mask needs exactly one label (and every predicted mask one score)")
        for name, labels in (("predicted", pred_labels), ("ground-truth", gt_labels)):
            if not torch.isin(labels, torch.tensor(self.things)).all():
                raise ValueError(f"{name} instance labels {labels.tolist()} must be thing classes {self.things}")
        image_id = len(self._images) + 1
        self._images.append({"id": image_id, "height": gt_masks.shape[1], "width": gt_masks.shape[2]})
        for mask, label in zip(gt_masks, gt_labels.tolist()):
            rle = _rle(mask)
            self._gt.append({"id": len(self._gt) + 1, "image_id": image_id, "category_id": label, "iscrowd": 0,
                             "segmentation": rle, "area": float(mask_utils.area(rle))})
        for mask, label, score in zip(pred_masks, pred_labels.tolist(), pred_scores.tolist()):
            self._dt.append({"image_id": image_id, "category_id": label, "segmentation": _rle(mask), "score": score})

    def compute(self) -> dict[str, float]:
        """``{"AP", "AP50", "AP75"}``; classes without ground truth are left out of the mean, as COCO does."""
        if not self._gt:
            raise ValueError("no ground-truth instance was added; mask AP is undefined")
        if not self._dt:
            return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = {"images": self._images, "annotations": self._gt,
                               "categories": [{"id": c, "name": str(c)} for c in self.things]}
            coco_gt.createIndex()
            coco_eval = COCOeval(coco_gt, coco_gt.loadRes([dict(d) for d in self._dt]), iouType="segm")
            coco_eval.evaluate()
            coco_eval.accumulate()
        # precision: [IoU threshold, recall point, class, area range ("all" first), max detections (100 last)]
        precision = coco_eval.eval["precision"][:, :, :, 0, -1]
        iou_thresholds = coco_eval.params.iouThrs

        def average(p: np.ndarray) -> float:
            valid = p[p > -1]
            return float(valid.mean()) if valid.size else 0.0

        return {"AP": average(precision), "AP50": average(precision[np.isclose(iou_thresholds, 0.5)]),
                "AP75": average(precision[np.isclose(iou_thresholds, 0.75)])}
