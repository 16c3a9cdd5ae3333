"""Training step cost: the full-model stage (everything trainable, with distillation from a frozen teacher) on a
synthetic batch, with the product's losses (``L_total = L_sup + L_ssup + L_distil``), AdamW and gradient clipping.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor
from tqdm import tqdm

from uni_encoder_core.bench.timing import Clock, PeakMemory, summarize
from uni_encoder_core.config import LossConfig, ModelConfig
from uni_encoder_core.losses.distillation import distillation_loss
from uni_encoder_core.losses.segmentation import SupervisedSegmentationLoss, sample_tasks, segmentation_targets
from uni_encoder_core.losses.self_supervised import SelfSupervisedInputs, self_supervised_loss
from uni_encoder_core.losses.total import total_loss
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import TrainOutputs, UniEncoder

SOURCES = (-1, 1)


def street_labels(batch: int, height: int, width: int) -> tuple[Tensor, Tensor]:
    """A street-like label layout: sky, building, sidewalk, road and one car instance (train ids, instance ids)."""
    semantic = torch.full((batch, height, width), 10, dtype=torch.int64)  # sky
    semantic[:, height // 4 :] = 2  # building
    semantic[:, height // 2 :, : width // 3] = 1  # sidewalk
    semantic[:, height // 2 :, width // 3 :] = 0  # road
    instance = torch.zeros_like(semantic)
    car = (slice(None), slice(height // 2, 3 * height // 4), slice(width // 2, 3 * width // 4))
    semantic[car], instance[car] = 13, 1
    return semantic, instance


def synthetic_batch(cfg: ModelConfig, batch: int, device: torch.device, seed: int) -> dict:
    """``batch`` frame triplets (offsets -1, 0, 1) + intrinsics, and ``batch`` labelled images with targets."""
    g = torch.Generator().manual_seed(seed)
    H, W = cfg.height, cfg.width
    frames = {o: torch.rand(batch, 3, H, W, generator=g).to(device) for o in (-1, 0, 1)}
    K = torch.tensor([[0.58 * W, 0.0, W / 2], [0.0, 1.92 * H, H / 2], [0.0, 0.0, 1.0]]).expand(batch, 3, 3)
    semantic, instance = street_labels(batch, H, W)
    tasks = sample_tasks(batch, list(cfg.segmentation.tasks), random.Random(seed))
    targets = segmentation_targets(semantic.to(device), instance.to(device), tasks, cfg.segmentation)
    return {"frames": frames, "K": K.to(device), "labelled": torch.rand(batch, 3, H, W, generator=g).to(device),
            "tasks": tasks, "targets": targets, "text_ids": torch.stack([t.text_ids for t in targets])}


def losses(out: TrainOutputs, teacher_out: TrainOutputs, data: dict, sup_loss: SupervisedSegmentationLoss,
           cfg: ModelConfig, loss_cfg: LossConfig, generator: torch.Generator) -> Tensor:
    """``L_total`` of one batch (paper eq. 4)."""
    inputs = SelfSupervisedInputs.from_outputs(out, data["frames"], data["K"])
    ssup = self_supervised_loss(inputs, loss_cfg, cfg.depth.min_depth, cfg.depth.max_depth, generator)
    sup = sup_loss(out.segmentation, data["targets"])

    def cat(outputs: TrainOutputs, name: str) -> Tensor:
        return torch.cat([getattr(outputs, name)[o] for o in SOURCES])

    distil = distillation_loss(cat(out, "complete_flow"), cat(teacher_out, "complete_flow"),
                               cat(out, "motion_mask"), cat(teacher_out, "motion_mask"), loss_cfg)
    return total_loss(loss_cfg, sup, ssup, distil)[0]


def run_training(cfg: ModelConfig, device: torch.device, batch: int, steps: int, seed: int = 0) -> dict:
    """Section 3: ``steps`` training steps (the first is warm-up), step time by stage and peak memory."""
    if steps < 2:
        raise ValueError(f"training needs >= 2 steps (one warm-up), got {steps}")
    torch.manual_seed(seed)
    student = UniEncoder(cfg).to(device).train()
    teacher = Teacher(cfg).to(device).eval().requires_grad_(False)
    loss_cfg = LossConfig()
    sup_loss = SupervisedSegmentationLoss(loss_cfg, cfg.segmentation).to(device)
    params = [p for p in [*student.parameters(), *sup_loss.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    data = synthetic_batch(cfg, batch, device, seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    clock = Clock(device)
    times: list[float] = []
    stages: dict[str, list[float]] = {}
    with PeakMemory(device) as memory:
        for step in tqdm(range(steps), desc="training", unit="step", leave=False):
            clock.start()
            with torch.no_grad():
                teacher_out = teacher.forward_train(data["frames"], motion=True)
            clock.lap("teacher forward")
            out = student.forward_train(data["frames"], data["labelled"], data["tasks"],
                                        data["text_ids"], motion=True)
            clock.lap("student forward")
            loss = losses(out, teacher_out, data, sup_loss, cfg, loss_cfg, generator)
            clock.lap("losses")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clock.lap("backward")
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            clock.lap("optimizer")
            if not torch.isfinite(loss):
                raise RuntimeError(f"training step {step} gave a non-finite loss {float(loss.detach())}")
            if step > 0:
                times.append(clock.total)
                for name, ms in clock.laps.items():
                    stages.setdefault(name, []).append(ms)
    return {
        "batch": {"triplets": batch, "labelled": batch, "tasks": data["tasks"]},
        "trainable_parameters": sum(p.numel() for p in params),
        "ms": summarize(times), "stages_ms": {k: summarize(v)["median"] for k, v in stages.items()},
        "memory": memory.result(), "final_loss": float(loss.detach()),
    }
