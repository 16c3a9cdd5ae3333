"""Supervised segmentation loss (paper eq. 1): OneFormer's set criterion with Hungarian matching.

``L_sup = 2*L_cls + 5*L_bce + 5*L_dice + 0.5*L_contrast`` (weights from ``LossConfig``), computed by
transformers' ``OneFormerHungarianMatcher`` and ``OneFormerLoss`` on the final decoder layer and, with
the same weights, on every earlier layer (deep supervision); the contrastive term uses the final layer.

Targets follow OneFormer's task-conditioned construction from one label map: semantic = one segment
per class present, instance = one segment per thing instance, panoptic = stuff per class + things per
instance. Thing pixels without an instance id (crowd regions) belong to no segment in the instance and
panoptic tasks. Text queries list "a photo with a {class}" per segment, padded with "a {task} photo".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.models.oneformer.modeling_oneformer import OneFormerHungarianMatcher, OneFormerLoss

from uni_encoder_core.config import LossConfig, SegmentationConfig
from uni_encoder_core.labels import NUM_CLASSES, THING_CLASSES, VOID
from uni_encoder_core.models.segmentation import SegmentationPrediction
from uni_encoder_core.models.tokenizer import (
    TASKS,
    Tokenizer,
    class_prompt,
    filler_prompt,
)


@dataclass
class SegmentationTarget:
    """OneFormer targets of one image: ``masks`` KxHxW float {0,1}, ``classes`` K int64, ``text_ids`` TxL int64."""

    masks: Tensor
    classes: Tensor
    text_ids: Tensor


def sample_tasks(batch_size: int, tasks: list[str], rng: random.Random) -> list[str]:
    """One task per image, uniformly (OneFormer's task-conditioned joint training)."""
    return [rng.choice(tasks) for _ in range(batch_size)]


def image_segments(semantic: Tensor, instance: Tensor, task: str) -> tuple[Tensor, Tensor]:
    """Binary masks KxHxW (float) and classes K (int64) of one HxW label map for ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown segmentation task '{task}' (known: {', '.join(TASKS)})")
    if semantic.shape != instance.shape or semantic.dim() != 2:
        raise ValueError(f"semantic {tuple(semantic.shape)} and instance {tuple(instance.shape)} must be equal HxW")
    masks, classes = [], []
    for label in torch.unique(semantic).tolist():
        if label == VOID:
            continue
        if not 0 <= label < NUM_CLASSES:
            raise ValueError(f"semantic label {label} is not a train id (0..18) or void ({VOID})")
        region = semantic == label
        if label not in THING_CLASSES:
            if task != "instance":
                masks.append(region)
                classes.append(label)
        elif task == "semantic":
            masks.append(region)
            classes.append(label)
        else:
            for inst in torch.unique(instance[region]).tolist():
                if inst > 0:
                    masks.append(region & (instance == inst))
                    classes.append(label)
    stacked = torch.stack(masks).float() if masks else semantic.new_zeros((0, *semantic.shape), dtype=torch.float32)
    return stacked, torch.tensor(classes, dtype=torch.int64, device=semantic.device)


def segmentation_targets(
    semantic: Tensor, instance: Tensor, tasks: list[str], cfg: SegmentationConfig
) -> list[SegmentationTarget]:
    """Targets of B images: ``semantic`` BxHxW train ids (255 void), ``instance`` BxHxW (0 = none), one task each."""
    if len(tasks) != semantic.shape[0]:
        raise ValueError(f"need one task per image: {len(tasks)} tasks for {semantic.shape[0]} label maps")
    tokenizer = Tokenizer(cfg.text_context_length)
    num_text = cfg.num_text_queries
    targets = []
    for sem, inst, task in zip(semantic, instance, tasks):
        masks, classes = image_segments(sem, inst, task)
        texts = [class_prompt(c) for c in sorted(classes.tolist())][:num_text]
        texts += [filler_prompt(task)] * (num_text - len(texts))
        targets.append(SegmentationTarget(masks, classes, tokenizer(texts).to(semantic.device)))
    return targets


class SupervisedSegmentationLoss(nn.Module):
    """``L_sup`` for a ``SegmentationPrediction`` from ``SegmentationHead.forward_train``.

    Holds one learnable parameter, OneFormer's contrastive logit scale (initial 1/temperature): the
    optimiser must include this module's parameters.
    """

    def __init__(self, loss_cfg: LossConfig, seg_cfg: SegmentationConfig):
        super().__init__()
        self.weights = {
            "cls": loss_cfg.class_weight,
            "bce": loss_cfg.mask_bce_weight,
            "dice": loss_cfg.mask_dice_weight,
            "contrast": loss_cfg.contrastive_weight,
        }
        matcher = OneFormerHungarianMatcher(
            cost_class=loss_cfg.class_weight,
            cost_mask=loss_cfg.mask_bce_weight,
            cost_dice=loss_cfg.mask_dice_weight,
            num_points=seg_cfg.train_num_points,
        )
        self.criterion = OneFormerLoss(
            num_classes=seg_cfg.num_classes,
            matcher=matcher,
            weight_dict={},
            eos_coef=loss_cfg.no_object_weight,
            num_points=seg_cfg.train_num_points,
            oversample_ratio=seg_cfg.oversample_ratio,
            importance_sample_ratio=seg_cfg.importance_sample_ratio,
            contrastive_temperature=loss_cfg.contrastive_temperature,
        )

    def forward(
        self, prediction: SegmentationPrediction, targets: list[SegmentationTarget]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Return (L_sup, unweighted ``cls``/``bce``/``dice``/``contrast`` terms summed over layers, detached)."""
        if len(targets) != prediction.class_logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {prediction.class_logits.shape[0]} predictions")
        aux = [{"class_queries_logits": c, "masks_queries_logits": m} for c, m in prediction.auxiliary]
        losses = self.criterion(
            masks_queries_logits=prediction.mask_logits,
            class_queries_logits=prediction.class_logits,
            contrastive_queries_logits=prediction.contrastive_queries,
            mask_labels=[t.masks for t in targets],
            class_labels=[t.classes for t in targets],
            text_queries=prediction.text_queries,
            auxiliary_predictions=aux or None,
            calculate_contrastive_loss=prediction.text_queries is not None,
        )
        prefixes = {
            "cls": "loss_cross_entropy", "bce": "loss_mask", "dice": "loss_dice", "contrast": "loss_contrastive"
        }
        zero = prediction.class_logits.new_zeros(())
        terms = {
            name: sum((v.sum() for k, v in losses.items() if k.startswith(prefix)), zero)
            for name, prefix in prefixes.items()
        }
        total = sum(self.weights[name] * value for name, value in terms.items())
        return total, {name: value.detach() for name, value in terms.items()}
