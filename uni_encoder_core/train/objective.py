"""The one training step of the product: model + :class:`TrainBatch` -> every named loss term and ``L_total``.

Paper eqs. 1-4, with the stage's loss switches (``losses``, a subset of ``sup``, ``ssup``, ``distil``):

- eq. 1 ``L_sup = 2 L_cls + 5 L_bce + 5 L_dice + 0.5 L_contrast`` (OneFormer set criterion) on the labelled images;
- eq. 2 ``L_ssup = L_recon + L_s + 5 L_c + 0.1 L_m + 0.1 L_g`` on the frame triplets, warping the source frames by
  the rigid flow (``warp="rigid"``: no flow predicted), the complete flow ``F_C`` (``"complete"``) or the final flow
  ``F_R + M (F_C - F_R)`` (``"final"``);
- eq. 3 ``L_distil = 0.1 |F_C^teacher - F_C^student|_1 + 1e-3 |M^teacher - M^student|_1`` over every source frame,
  the frozen teacher's outputs being the targets;
- eq. 4 ``L_total = l1 L_sup + l2 L_ssup + l3 L_distil`` (weights from ``LossConfig``).

A trainer only does ``terms = objective(batch); terms["total"].backward()``: everything trainable (the model's
trainable parts, the contrastive logit scale of ``L_sup``) is reached through ``forward``, so the objective can be
wrapped in DistributedDataParallel. Which model parts train is ``MultiTaskModel.set_trainable``'s business.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from uni_encoder_core.config import LossConfig, StageConfig
from uni_encoder_core.losses.distillation import distillation_loss
from uni_encoder_core.losses.segmentation import SupervisedSegmentationLoss
from uni_encoder_core.losses.self_supervised import SelfSupervisedInputs, self_supervised_loss
from uni_encoder_core.losses.total import total_loss
from uni_encoder_core.models.segmentation import SegmentationPrediction
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, TrainOutputs
from uni_encoder_core.train.batch import TrainBatch

LOSSES = ("sup", "ssup", "distil")
Warp = Literal["rigid", "complete", "final"]
WARPS = ("rigid", "complete", "final")


def stage_warp(stage: StageConfig) -> Warp:
    """The warp of a stage's ``L_ssup``: the final flow once the motion mask trains or is distilled, the complete
    flow while only the scene-flow decoder trains, the rigid flow before."""
    if "motion_mask" in stage.trainable or "distil" in stage.losses:
        return "final"
    return "complete" if "scene_flow" in stage.trainable else "rigid"


class TrainingObjective(nn.Module):
    """``forward(batch) -> {name: value}``: ``total`` (``L_total``, the one tensor with a graph), each switched-on
    part (``sup``, ``ssup``, ``distil``, unweighted) and its terms as ``<part>/<term>`` (e.g. ``sup/dice``,
    ``ssup/recon``, ``distil/flow``), all scalars; terms other than ``total`` are detached.

    ``model`` is the network being trained (the unified model or the teacher itself); ``teacher`` (only with
    ``distil``) is held frozen: ``requires_grad`` off and in eval mode whatever ``train()`` is called with.
    Raises ``ValueError`` for an unknown or empty ``losses``, an unknown ``warp``, ``distil`` without a teacher or
    with the rigid warp (no flow to distil), or a teacher without ``distil``.
    """

    def __init__(self, model: MultiTaskModel, loss_cfg: LossConfig, losses: Sequence[str] = LOSSES,
                 teacher: Teacher | None = None, warp: Warp = "final"):
        super().__init__()
        unknown = sorted(set(losses) - set(LOSSES))
        if unknown or not losses:
            raise ValueError(f"losses must be a non-empty subset of {list(LOSSES)}, got {list(losses)}")
        if warp not in WARPS:
            raise ValueError(f"warp must be one of {list(WARPS)}, got '{warp}'")
        if ("distil" in losses) != (teacher is not None):
            raise ValueError("'distil' needs a teacher" if teacher is None else "a teacher given but 'distil' is off")
        if "distil" in losses and warp == "rigid":
            raise ValueError("'distil' needs the predicted scene flow and motion mask: warp 'rigid' predicts none")
        self.model, self.loss_cfg, self.losses, self.warp = model, loss_cfg, tuple(losses), warp
        self.teacher = None if teacher is None else teacher.requires_grad_(False).eval()
        self.sup_loss = SupervisedSegmentationLoss(loss_cfg, model.cfg.segmentation) if "sup" in losses else None

    @classmethod
    def from_stage(cls, model: MultiTaskModel, stage: StageConfig, teacher: Teacher | None = None) -> TrainingObjective:
        """The objective of a training stage: its loss weights and switches, its warp (:func:`stage_warp`)."""
        return cls(model, stage.loss, stage.losses, teacher, stage_warp(stage))

    def train(self, mode: bool = True) -> TrainingObjective:
        """Like ``nn.Module.train``, but the teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def check(self, batch: TrainBatch) -> None:
        """Raise ``ValueError`` when the batch does not hold what the switched-on losses need (and nothing else)."""
        uses_frames = {"ssup", "distil"} & set(self.losses)
        if uses_frames and batch.triplets is None:
            raise ValueError(f"{sorted(uses_frames)} switched on but the batch has no frame triplets")
        if not uses_frames and batch.triplets is not None:
            raise ValueError("the batch has frame triplets but neither 'ssup' nor 'distil' is switched on")
        if "sup" in self.losses and batch.labelled is None:
            raise ValueError("'sup' switched on but the batch has no labelled images")
        if "sup" not in self.losses and batch.labelled is not None:
            raise ValueError("the batch has labelled images but 'sup' is switched off")
        if batch.triplets is not None and batch.triplets.images.dim() != 5:
            raise ValueError(f"triplet images must be BxSx3xHxW, got {tuple(batch.triplets.images.shape)}")
        if batch.labelled is not None:
            n = batch.labelled.image.shape[0] if batch.labelled.image.dim() == 4 else -1
            if n < 0 or len(batch.tasks or ()) != n or len(batch.targets or ()) != n:
                raise ValueError(f"labelled images (shape {tuple(batch.labelled.image.shape)}, Nx3xHxW) need one "
                                 f"task and one target each, got {len(batch.tasks or ())} and "
                                 f"{len(batch.targets or ())}")

    def teacher_outputs(self, batch: TrainBatch) -> TrainOutputs | None:
        """The frozen teacher's flows and masks on the triplets (no graph), or None without ``distil``."""
        if self.teacher is None:
            return None
        with torch.no_grad():
            return self.teacher.forward_train(batch.frames, motion=True)

    def student_outputs(self, batch: TrainBatch) -> tuple[TrainOutputs | None, SegmentationPrediction | None]:
        """The model's training pass: (outputs on the triplets or None, segmentation of the labelled images or None)."""
        self.check(batch)
        labelled = None if batch.labelled is None else batch.labelled.image
        if batch.triplets is None:
            feats = self.model.encode(labelled)
            return None, self.model.segmentation.forward_train(feats, batch.tasks, batch.text_ids)
        out = self.model.forward_train(batch.frames, labelled, batch.tasks,
                                       None if labelled is None else batch.text_ids, motion=self.warp != "rigid")
        return out, out.segmentation

    def loss_terms(self, batch: TrainBatch, student: TrainOutputs | None, segmentation: SegmentationPrediction | None,
                   teacher: TrainOutputs | None) -> dict[str, Tensor]:
        """Eqs. 1-4 on the outputs of :meth:`student_outputs` and :meth:`teacher_outputs`."""
        sup = ssup = distil = None
        if self.sup_loss is not None:
            sup = self.sup_loss(segmentation, batch.targets)
        if "ssup" in self.losses:
            inputs = SelfSupervisedInputs.from_outputs(student, batch.frames, batch.triplets.K)
            if self.warp == "complete":
                inputs = dataclasses.replace(inputs, motion_mask=None)
            device = batch.triplets.images.device
            depth = self.model.cfg.depth
            generator = torch.Generator(device=device).manual_seed(batch.seed)
            ssup = self_supervised_loss(inputs, self.loss_cfg, depth.min_depth, depth.max_depth, generator)
        if teacher is not None:
            offsets = sorted(student.complete_flow)

            def cat(outputs: TrainOutputs, name: str) -> Tensor:
                return torch.cat([getattr(outputs, name)[o] for o in offsets])

            distil = distillation_loss(cat(student, "complete_flow"), cat(teacher, "complete_flow"),
                                       cat(student, "motion_mask"), cat(teacher, "motion_mask"), self.loss_cfg)
        total, terms = total_loss(self.loss_cfg, sup, ssup, distil)
        return {**terms, "total": total}

    def forward(self, batch: TrainBatch) -> dict[str, Tensor]:
        """Every named loss term of ``batch`` and ``total`` = ``L_total`` (eq. 4), the value to backpropagate."""
        student, segmentation = self.student_outputs(batch)
        return self.loss_terms(batch, student, segmentation, self.teacher_outputs(batch))
