"""Self-supervised loss ``L_ssup`` (paper eq. 2) over depth, pose, 3D scene flow and motion mask.

``L_ssup = L_recon + L_s + l_c L_c + l_m L_m + l_g L_g``, computed for every disparity scale (upsampled to the
input size for warping, monodepth2 style) and averaged over scales; the per-scale regularisers are divided by
``2**scale`` (Dynamo-Depth). The complete flow and motion mask come at the input resolution only, so their
smoothness terms are computed once. What is given decides what is trained: without ``complete_flow`` the source
is warped by the rigid flow ``F_R`` alone; with it but without ``motion_mask`` by ``F_C``; with both by the final
flow ``F_F = F_R + M (F_C - F_R)``, and ``L_c``, ``L_m``, ``L_g`` and the mask smoothness become active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from uni_encoder_core.config import LossConfig
from uni_encoder_core.geometry import (
    backproject,
    disparity_to_depth,
    scale_intrinsics,
    transform_points,
    warp_points,
)
from uni_encoder_core.losses.ground import above_ground_loss
from uni_encoder_core.losses.motion import motion_consistency_loss, motion_sparsity_loss
from uni_encoder_core.losses.photometric import photometric_loss, reprojection_errors
from uni_encoder_core.losses.smoothness import disparity_smoothness, edge_aware_smoothness

if TYPE_CHECKING:
    from uni_encoder_core.models.unified import TrainOutputs


@dataclass
class SelfSupervisedInputs:
    """Everything ``L_ssup`` needs for one batch of frame tuples (target frame plus source frames).

    target: Bx3xHxW image in [0, 1]; sources: one Bx3xHxW image per source frame; K: Bx3x3 at HxW;
    disparities: sigmoid disparity maps Bx1xhxw, finest first; T_t_to_s: one Bx4x4 per source;
    complete_flow: one Bx3xHxW 3D flow ``F_C`` per source (target camera frame) or None;
    motion_mask: one Bx1xHxW mask ``M`` in [0, 1] per source or None.
    """

    target: Tensor
    sources: list[Tensor]
    K: Tensor
    disparities: list[Tensor]
    T_t_to_s: list[Tensor]
    complete_flow: list[Tensor] | None = None
    motion_mask: list[Tensor] | None = None

    @classmethod
    def from_outputs(cls, outputs: TrainOutputs, frames: dict[int, Tensor], K: Tensor) -> SelfSupervisedInputs:
        """Inputs from a ``forward_train`` pass (``TrainOutputs``) over ``frames`` (offset -> Bx3xHxW, 0 = target).

        The sources are the non-zero offsets in ascending order; complete flow and motion mask enter when the pass
        predicted them (``motion=True``), so the loss warps by the final flow, else by the rigid flow.
        """
        offsets = sorted(o for o in frames if o != 0)
        motion = bool(offsets) and all(o in outputs.motion_mask for o in offsets)
        return cls(
            target=frames[0], sources=[frames[o] for o in offsets], K=K, disparities=outputs.disparities,
            T_t_to_s=[outputs.poses[o] for o in offsets],
            complete_flow=[outputs.complete_flow[o] for o in offsets] if motion else None,
            motion_mask=[outputs.motion_mask[o] for o in offsets] if motion else None,
        )

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        n = len(self.sources)
        if n == 0 or len(self.T_t_to_s) != n:
            raise ValueError(f"need >= 1 source and one T_t_to_s per source, got {n} and {len(self.T_t_to_s)}")
        if self.target.dim() != 4 or any(s.shape != self.target.shape for s in self.sources):
            raise ValueError(f"target and sources must be BxCxHxW alike, target is {tuple(self.target.shape)}")
        if not self.disparities:
            raise ValueError("disparities must hold at least one scale")
        if self.motion_mask is not None and self.complete_flow is None:
            raise ValueError("motion_mask needs complete_flow")
        B, _, H, W = self.target.shape
        for name, channels in (("complete_flow", 3), ("motion_mask", 1)):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} needs one entry per source ({n}), got {len(value)}")
            if value is not None and any(v.shape != (B, channels, H, W) for v in value):
                shapes = [tuple(v.shape) for v in value]
                raise ValueError(f"{name} entries must be {B}x{channels}x{H}x{W}, got {shapes}")


def self_supervised_loss(
    inputs: SelfSupervisedInputs,
    cfg: LossConfig,
    min_depth: float,
    max_depth: float,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_ssup`` and its unweighted terms (scale-averaged, detached) for logging.

    ``min_depth``/``max_depth`` map the sigmoid disparities to depth (DepthConfig); ``generator`` (on the inputs'
    device) drives the auto-mask tie noise and the RANSAC ground fit. Terms: ``recon``, ``smooth_disp`` and, when
    available, ``smooth_flow``, ``smooth_mask``, ``consistency``, ``sparsity``, ``ground``, ``automask_fraction``.
    """
    inputs.check()
    target, K = inputs.target, inputs.K
    H, W = target.shape[-2:]
    flows, masks = inputs.complete_flow, inputs.motion_mask
    has_motion = masks is not None  # check() makes sure complete flows come with the masks
    identity_errors = reprojection_errors(inputs.sources, target, cfg.ssim_weight) if cfg.automask else None
    terms: dict[str, Tensor] = {}
    per_scale = []
    for scale, disp in enumerate(inputs.disparities):
        factor = 1.0 / 2**scale
        disp_full = disp
        if disp.shape[-2:] != (H, W):
            disp_full = F.interpolate(disp, (H, W), mode="bilinear", align_corners=False)
        depth = disparity_to_depth(disp_full, min_depth, max_depth)
        points = backproject(depth, K)
        warped, consistency, sparsity = [], 0.0, 0.0
        for i, source in enumerate(inputs.sources):
            flow = transform_points(inputs.T_t_to_s[i], points) - points  # F_R
            if has_motion:
                consistency += motion_consistency_loss(
                    flows[i], flow, masks[i], disp_full, cfg.mask_disparity_threshold
                ) / len(inputs.sources)
                sparsity += motion_sparsity_loss(masks[i], flows[i], flow) / len(inputs.sources)
                flow = flow + masks[i] * (flows[i] - flow)  # F_F = F_R + F_I
            elif flows is not None:
                flow = flows[i]
            warped.append(warp_points(source, points + flow, K)[0])
        recon, automask = photometric_loss(target, warped, identity_errors, cfg.ssim_weight, generator)
        scale_terms = {"recon": recon, "smooth_disp": disparity_smoothness(disp, target) * factor}
        total = cfg.recon_weight * recon + cfg.smoothness_weight * scale_terms["smooth_disp"]
        if automask is not None:
            scale_terms["automask_fraction"] = 1.0 - automask.mean()
        if has_motion:
            Ks = scale_intrinsics(K, disp.shape[-1] / W, disp.shape[-2] / H)
            ground = above_ground_loss(
                disp, Ks, min_depth, max_depth, cfg.ground_lower_fraction, cfg.ground_iterations,
                cfg.ground_threshold, cfg.ground_margin, generator,
            )
            scale_terms.update(consistency=consistency * factor, sparsity=sparsity * factor, ground=ground * factor)
            total = total + (
                cfg.motion_consistency_weight * scale_terms["consistency"]
                + cfg.motion_sparsity_weight * scale_terms["sparsity"]
                + cfg.above_ground_weight * scale_terms["ground"]
            )
        per_scale.append(total)
        for name, value in scale_terms.items():
            terms[name] = terms.get(name, 0.0) + value.detach() / len(inputs.disparities)
    loss = torch.stack(per_scale).mean()
    if flows is not None:
        terms["smooth_flow"] = sum(edge_aware_smoothness(f, target) for f in flows) / len(flows)
        loss = loss + cfg.flow_smoothness_weight * terms["smooth_flow"]
    if masks is not None:
        terms["smooth_mask"] = sum(edge_aware_smoothness(m, target) for m in masks) / len(masks)
        loss = loss + cfg.mask_smoothness_weight * terms["smooth_mask"]
    return loss, {name: value.detach() for name, value in terms.items()}
