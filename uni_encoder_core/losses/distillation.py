"""Distillation loss ``L_distil`` (paper eq. 3): the teacher's scene flow and motion mask supervise the student."""

from __future__ import annotations

from torch import Tensor

from uni_encoder_core.config import LossConfig


def distillation_loss(
    student_flow: Tensor, teacher_flow: Tensor, student_mask: Tensor, teacher_mask: Tensor, cfg: LossConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """``beta1 * |F_C^teacher - F_C^student|_1 + beta2 * |M^teacher - M^student|_1`` (mean absolute errors).

    Flows are Bx3xHxW (m), masks Bx1xHxW in [0, 1]; the teacher's outputs are targets (detached). The teacher
    output is resized to the student's by the caller. Returns (loss, unweighted ``flow``/``mask`` terms, detached).
    """
    if student_flow.shape != teacher_flow.shape or student_mask.shape != teacher_mask.shape:
        raise ValueError(
            "teacher and student outputs must have the same shapes, got flow "
            f"{tuple(teacher_flow.shape)} vs {tuple(student_flow.shape)}, mask "
            f"{tuple(teacher_mask.shape)} vs {tuple(student_mask.shape)}"
        )
    terms = {
        "flow": (teacher_flow.detach() - student_flow).abs().mean(),
        "mask": (teacher_mask.detach() - student_mask).abs().mean(),
    }
    loss = cfg.distil_flow_weight * terms["flow"] + cfg.distil_mask_weight * terms["mask"]
    return loss, {name: value.detach() for name, value in terms.items()}
