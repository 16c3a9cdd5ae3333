"""Periodic validation: held-out loss terms and cheap metrics (depth abs_rel, semantic mIoU).

The held-out batches are fixed: evenly spaced samples of the ``val`` split (the same every time), with task
and loss-seed draws from a fixed seed, so two validations of the same weights give the same numbers.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from uni_encoder_core.config import SegmentationConfig
from uni_encoder_core.eval.depth import compute_depth_errors
from uni_encoder_core.eval.segmentation import MeanIoUMetric
from uni_encoder_core.models.segmentation import to_semantic
from uni_encoder_core.train.batch import TrainBatch
from uni_encoder_core.train.objective import TrainingObjective

MAX_EVAL_DEPTH = 80.0  # m: ground truth farther away is not scored (monodepth2's cap)


def held_out_batches(triplets: Dataset | None, labelled: Dataset | None, batch_triplets: int, batch_labelled: int,
                     count: int, seg_cfg: SegmentationConfig, seed: int = 0) -> Iterator[TrainBatch]:
    """``count`` batches of evenly spaced held-out samples (fewer when the data sets are smaller)."""
    sizes = [len(d) // b for d, b in ((triplets, batch_triplets), (labelled, batch_labelled)) if d is not None]
    count = min([count, *sizes])

    def pick(dataset: Dataset | None, per_batch: int, i: int) -> list | None:
        if dataset is None:
            return None
        index = np.linspace(0, len(dataset) - 1, count * per_batch).round().astype(int)
        return [dataset[int(j)] for j in index[i * per_batch:(i + 1) * per_batch]]

    for i in range(count):
        yield TrainBatch.from_samples(pick(triplets, batch_triplets, i), pick(labelled, batch_labelled, i), seg_cfg,
                                      random.Random(seed + i))


@torch.no_grad()
def validate(objective: TrainingObjective, batches: Iterator[TrainBatch], device: torch.device,
             autocast: contextlib.AbstractContextManager | None = None) -> dict[str, float]:
    """Mean of every loss term over the batches (``val/<term>``), ``val/depth_abs_rel`` (median-scaled, ground
    truth up to 80 m) and ``val/miou`` (semantic task) where the batches hold that ground truth.

    The objective is in eval mode meanwhile and back in train mode afterwards.
    """
    model = objective.model
    objective.eval()
    sums: dict[str, float] = {}
    abs_rel: list[float] = []
    miou = MeanIoUMetric(model.cfg.segmentation.num_classes)
    seen_labels = False
    count = 0
    try:
        for batch in batches:
            batch = batch.to(device)
            with autocast or contextlib.nullcontext():
                terms = objective(batch)
                depth = labels = None
                if batch.triplets is not None and batch.triplets.depth is not None:
                    depth = model.predict_depth(model.encode(batch.triplets.target))[1]
                if batch.labelled is not None:
                    task = "semantic" if "semantic" in model.cfg.segmentation.tasks else model.cfg.segmentation.tasks[0]
                    pred = model.predict_segmentation(model.encode(batch.labelled.image), [task])[task]
                    labels = to_semantic(pred.class_logits.float(), pred.mask_logits.float(),
                                         tuple(batch.labelled.image.shape[-2:]))
            count += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            if depth is not None:
                for gt, pred_depth in zip(batch.triplets.depth, depth.float()):
                    with contextlib.suppress(ValueError):  # no valid ground truth, or a non-finite prediction
                        abs_rel.append(compute_depth_errors(gt, pred_depth, model.cfg.depth.min_depth,
                                                            MAX_EVAL_DEPTH)["abs_rel"])
            if labels is not None:
                miou.update(labels.cpu(), batch.labelled.semantic.cpu())
                seen_labels = True
    finally:
        objective.train()
    out = {f"val/{key}": value / max(count, 1) for key, value in sums.items()}
    if abs_rel:
        out["val/depth_abs_rel"] = float(np.mean(abs_rel))
    if seen_labels:
        with contextlib.suppress(ValueError):  # every held-out pixel void
            out["val/miou"] = miou.compute().miou
    return out
