"""Training step cost: the full-model stage (everything trainable, with distillation from a frozen teacher) on a
batch rendered from the synthetic world, timing :class:`TrainingObjective` (``L_total = L_sup + L_ssup + L_distil``),
AdamW and gradient clipping.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from uni_encoder_core.bench.timing import Clock, PeakMemory, summarize
from uni_encoder_core.config import LossConfig, ModelConfig
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.batch import synthetic_batch
from uni_encoder_core.train.objective import TrainingObjective


def run_training(cfg: ModelConfig, device: torch.device, batch: int, steps: int, seed: int = 0) -> dict:
    """Section 3: ``steps`` training steps (the first is warm-up), step time by stage and peak memory.

    The stages are the objective's own phases (teacher forward, student forward, losses), then backward and the
    optimiser step.
    """
    if steps < 2:
        raise ValueError(f"training needs >= 2 steps (one warm-up), got {steps}")
    torch.manual_seed(seed)
    objective = TrainingObjective(UniEncoder(cfg), LossConfig(), teacher=Teacher(cfg)).to(device).train()
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    data = synthetic_batch(cfg, batch, seed).to(device)
    clock = Clock(device)
    times: list[float] = []
    stages: dict[str, list[float]] = {}
    with PeakMemory(device) as memory:
        for step in tqdm(range(steps), desc="training", unit="step", leave=False):
            clock.start()
            teacher_out = objective.teacher_outputs(data)
            clock.lap("teacher forward")
            student_out, segmentation = objective.student_outputs(data)
            clock.lap("student forward")
            loss = objective.loss_terms(data, student_out, segmentation, teacher_out)["total"]
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
        "batch": {"triplets": batch, "labelled": batch, "tasks": data.tasks},
        "trainable_parameters": sum(p.numel() for p in params),
        "ms": summarize(times), "stages_ms": {k: summarize(v)["median"] for k, v in stages.items()},
        "memory": memory.result(), "final_loss": float(loss.detach()),
    }
