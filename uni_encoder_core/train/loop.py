"""The training loop of one stage: batches -> ``objective(batch)`` -> guarded update, with logging,
validation and crash-safe checkpoints.

Each step: the next frame triplets and labelled images (resumable data order), every loss term from the
objective, ``L_total`` backpropagated (DDP averages gradients across processes), gradients clipped to the
recipe's norm, the update skipped when the loss or gradient is not finite (:mod:`.guard`), the learning rate
stepped. Every ``log_every`` steps: the period's mean loss terms, the learning rate, the clipped gradient norm and
each loss group's gradient norm on the shared encoder go to TensorBoard; every ``image_every`` steps the panels of
a held-out sample; every ``validate_every`` steps the held-out loss terms and metrics (the best ones also as
``best.pt``); every ``checkpoint_every`` steps and at the end a resumable checkpoint. Only rank 0 logs and
writes. SIGINT and SIGTERM end the run after the current step with a checkpoint of it.

A run resumed from a checkpoint (``resume=True``) continues with the same weights, optimizer, scheduler, random
states and data order, so on a CPU it ends bit-identical to a run that was never interrupted.
"""

from __future__ import annotations

import math
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.utils import distribute_bn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from uni_encoder_core.config import ModelConfig, StageConfig
from uni_encoder_core.config_yaml import load_config, save_config, to_dict
from uni_encoder_core.data.registry import build_dataset
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.models.checkpoint import save_checkpoint
from uni_encoder_core.train import checkpoints as ckpt
from uni_encoder_core.train.batch import TrainBatch
from uni_encoder_core.train.distributed import any_rank, gather, launch
from uni_encoder_core.train.grad_norms import encoder_grad_norms
from uni_encoder_core.train.guard import NonFiniteGuard
from uni_encoder_core.train.objective import TrainingObjective
from uni_encoder_core.train.panels import panels
from uni_encoder_core.train.recipe import NETWORKS
from uni_encoder_core.train.sampling import BatchStream
from uni_encoder_core.train.schedule import build_scheduler
from uni_encoder_core.train.validation import held_out_batches, validate


class RunError(RuntimeError):
    """The run directory or the options do not fit (e.g. an existing run without ``--resume``)."""


@dataclass
class RunResult:
    """What a run did: the last step reached, whether it finished, the signal that stopped it (or None), the
    skipped steps ``(step, reason)``, this process's ``L_total`` per step and the last checkpoint written."""

    step: int
    finished: bool
    stopped_by: int | None
    skipped: list[tuple[int, str]]
    losses: list[float] = field(default_factory=list)
    checkpoint: Path | None = None


class Trainer:
    """One stage of training from a checked recipe (``train.recipe.load_stage``).

    ``out_dir`` overrides the recipe's; ``init`` overrides its ``init_from``; ``resume`` continues the run in
    ``out_dir``. Raises ``ConfigError``, ``CheckpointError``, ``DeviceError`` or :class:`RunError` naming the
    problem before any step runs.
    """

    def __init__(self, stage: StageConfig, out_dir: str | Path | None = None, device: str = "cpu",
                 init: str | None = None, resume: bool = False, progress: bool = True):
        self.stage, self.progress = stage, progress
        self.out_dir = Path(out_dir or stage.out_dir)
        stage.out_dir = str(self.out_dir)
        model_cfg = load_config(stage.model, ModelConfig)
        if (model_cfg.height, model_cfg.width) != (stage.data.height, stage.data.width):
            raise ConfigError(f"data is {stage.data.height}x{stage.data.width} but the model ({stage.model}) takes "
                              f"{model_cfg.height}x{model_cfg.width}")
        existing = ckpt.step_checkpoints(self.out_dir)
        if existing and not resume:
            raise RunError(f"{self.out_dir} already holds a run (up to step {existing[-1][0]}): pass --resume to "
                           "continue it, or choose another --out")
        self.fabric = fabric = launch(device, stage.precision)
        self.rank0 = fabric.is_global_zero
        torch.manual_seed(stage.seed)
        self.model = model = NETWORKS[stage.network](model_cfg)
        payload = ckpt.load_resume(self.out_dir, stage, model) if resume else None
        if payload is None and (init or stage.init_from):
            ckpt.load_init(init or stage.init_from, model)
        model.set_trainable(stage.trainable)
        teacher = ckpt.load_teacher(stage.teacher) if "distil" in stage.losses else None
        objective = TrainingObjective.from_stage(model, stage, teacher)
        params = [p for p in objective.parameters() if p.requires_grad]
        optimizer_cls = torch.optim.AdamW if stage.optimizer == "adamw" else torch.optim.Adam
        optimizer = optimizer_cls(params, lr=stage.lr, betas=tuple(stage.betas), weight_decay=stage.weight_decay)
        self.scheduler = build_scheduler(optimizer, stage.schedule, stage.steps)
        self.objective, self.optimizer = fabric.setup(objective, optimizer)
        self.fp16 = fabric.device.type == "cuda" and stage.precision == "fp16"
        self.guard = NonFiniteGuard(stage.max_nonfinite, scaler_handles_gradients=self.fp16)
        self.streams = self._streams(payload["data"] if payload else {})
        self.val_batches = self._held_out() if self.rank0 else None
        self.step, self.best_loss = 0, None
        self.loop_rng = random.Random(stage.seed * 7919 + fabric.global_rank)
        torch.manual_seed(stage.seed + fabric.global_rank)
        np.random.seed(stage.seed + fabric.global_rank)
        if payload is not None:
            self._restore(payload)
        self.stopped_by: int | None = None

    # ------------------------------------------------------------------ setup

    def _streams(self, state: dict) -> dict[str, BatchStream]:
        stage, fabric = self.stage, self.fabric
        streams = {}
        wanted = {"triplets": ({"ssup", "distil"} & set(stage.losses), stage.data, stage.batch_triplets),
                  "labelled": ("sup" in stage.losses, stage.labelled, stage.batch_labelled)}
        for seed_offset, (role, (used, data, size)) in enumerate(wanted.items()):
            if used:
                streams[role] = BatchStream(build_dataset(data, role, "train"), size, list, stage.seed + seed_offset,
                                            fabric.global_rank, fabric.world_size, data.num_workers,
                                            tuple(state.get(role) or (0, 0)))
        return streams

    def _held_out(self) -> tuple:
        stage = self.stage
        triplets = build_dataset(stage.data, "triplets", "val") if "triplets" in self.streams else None
        labelled = build_dataset(stage.labelled, "labelled", "val") if "labelled" in self.streams else None
        return triplets, labelled

    def _val_batches(self):
        triplets, labelled = self.val_batches
        return held_out_batches(triplets, labelled, self.stage.batch_triplets, self.stage.batch_labelled,
                                self.stage.validation_batches, self.model.cfg.segmentation, self.stage.seed)

    def _restore(self, payload: dict) -> None:
        self.step, self.best_loss = int(payload["step"]), payload["best_loss"]
        if self.objective.module.sup_loss is not None:
            self.objective.module.sup_loss.load_state_dict(payload["objective"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if payload["scaler"]:
            self.fabric.strategy.precision.load_state_dict(payload["scaler"])
        states = payload["rng"]
        if len(states) == self.fabric.world_size:
            ckpt.restore_rng(states[self.fabric.global_rank], self.loop_rng)

    # ------------------------------------------------------------------ steps

    def next_batch(self) -> TrainBatch:
        """The next training batch of this process (on its device)."""
        trip = next(self.streams["triplets"]) if "triplets" in self.streams else None
        lab = next(self.streams["labelled"]) if "labelled" in self.streams else None
        batch = TrainBatch.from_samples(trip, lab, self.model.cfg.segmentation, self.loop_rng)
        return batch.to(self.fabric.device)

    def train_step(self, batch: TrainBatch) -> tuple[dict[str, float], float, str | None]:
        """One guarded update: (loss terms, gradient norm before clipping, reason the update was skipped or None).

        A non-finite loss on any process skips the backward pass everywhere (a NaN-laden graph is never
        differentiated); a non-finite gradient norm (the same on every process after DDP's averaging) skips the
        update. Under fp16 the gradient scaler decides on non-finite gradients itself. A skipped step also puts
        back the buffers the forward pass moved (batch-norm running statistics).
        """
        buffers = list(self.model.buffers())
        saved = [b.detach().clone() for b in buffers]
        terms = self.objective(batch)
        values = {key: float(value.detach()) for key, value in terms.items()}
        loss_ok = not any_rank(self.fabric, not math.isfinite(values["total"]))
        norm = float("nan")
        if loss_ok:
            self.fabric.backward(terms["total"])
            norm = float(self.fabric.clip_gradients(self.objective, self.optimizer, max_norm=self.stage.grad_clip,
                                                    error_if_nonfinite=False))
        reason = self.guard.check(self.step + 1, values["total"] if loss_ok else float("nan"), norm)
        if reason is None:
            self.optimizer.step()
        else:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)
        self.optimizer.zero_grad(set_to_none=True)
        return values, norm, reason

    # ------------------------------------------------------------------ checkpoints

    def sync_statistics(self) -> None:
        """Average the batch-norm running statistics of the trainable parts over the processes (each saw its own
        batches), so every rank holds identical weights; frozen parts never move. A collective."""
        if self.fabric.world_size > 1:
            for part in self.stage.trainable:
                distribute_bn(getattr(self.model, part), self.fabric.world_size, reduce=True)

    def save(self) -> Path:
        """Write the resumable checkpoint of the current step (rank 0; every rank must call it)."""
        self.sync_statistics()
        rng = gather(self.fabric, ckpt.rng_state(self.loop_rng))
        path = ckpt.step_path(self.out_dir, self.step)
        if self.rank0:
            sup_loss = self.objective.module.sup_loss
            ckpt.save_step(path, self.model, step=self.step, optimizer=self.optimizer.state_dict(),
                           scheduler=self.scheduler.state_dict(), scaler=self.fabric.strategy.precision.state_dict(),
                           objective={} if sup_loss is None else sup_loss.state_dict(), rng=rng,
                           data={role: stream.state() for role, stream in self.streams.items()},
                           recipe=to_dict(self.stage), best_loss=self.best_loss)
            ckpt.prune(self.out_dir, self.stage.keep_last)
        self.fabric.barrier()
        return path

    # ------------------------------------------------------------------ run

    def _stop(self, signum: int, frame) -> None:
        self.stopped_by = signum

    def run(self) -> RunResult:
        """Train up to the recipe's steps (or until SIGINT/SIGTERM); raises ``TrainingDiverged`` after too many
        non-finite steps in a row."""
        stage, rank0 = self.stage, self.rank0
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        writer = SummaryWriter(self.out_dir / "tensorboard", purge_step=self.step + 1) if rank0 else None
        if rank0:
            save_config(stage, self.out_dir / "recipe.yaml")
        bar = tqdm(total=stage.steps, initial=self.step, desc=stage.name, unit="step", disable=not (rank0 and
                                                                                                   self.progress))
        losses, sums, count, path, interrupted = [], {}, 0, None, False
        try:
            while self.step < stage.steps:
                if any_rank(self.fabric, self.stopped_by is not None):
                    interrupted = True
                    break
                batch = self.next_batch()
                terms, norm, reason = self.train_step(batch)
                self.step += 1
                self.scheduler.step()
                losses.append(terms["total"])
                if reason is None:
                    count += 1
                    for key, value in terms.items():
                        sums[key] = sums.get(key, 0.0) + value
                elif rank0:
                    tqdm.write(f"step {self.step}: update skipped ({reason})")
                    writer.add_scalar("train/skipped", 1.0, self.step)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items() if "/" not in k})
                if self.step % stage.validate_every == 0 or self.step % stage.image_every == 0:
                    self.sync_statistics()
                if rank0:
                    self._periodic(writer, batch, sums, count, norm)
                if self.step % stage.log_every == 0:
                    sums, count = {}, 0
                if self.step % stage.checkpoint_every == 0 or self.step == stage.steps:
                    path = self.save()
            if interrupted and path != ckpt.step_path(self.out_dir, self.step):
                path = self.save()
            if not interrupted and rank0:
                save_checkpoint(self.model, self.out_dir / "final.pt", step=self.step, recipe=to_dict(stage))
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            for s, handler in handlers.items():
                signal.signal(s, handler)
        return RunResult(self.step, not interrupted, self.stopped_by, list(self.guard.skipped), losses, path)

    def _periodic(self, writer: SummaryWriter, batch: TrainBatch, sums: dict, count: int, norm: float) -> None:
        """Rank 0's logging, panels, validation and best weights at the periodic steps."""
        stage, step = self.stage, self.step
        autocast = self.fabric.autocast()
        if step % stage.log_every == 0:
            for key, value in sums.items():
                writer.add_scalar(f"train/{key}", value / max(count, 1), step)
            writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], step)
            writer.add_scalar("train/grad_norm", norm, step)
            for group, value in encoder_grad_norms(self.objective.module, batch, autocast).items():
                writer.add_scalar(f"grad_norm_encoder/{group}", value, step)
        if step % stage.image_every == 0:
            first = next(iter(self._val_batches())).to(self.fabric.device)
            for name, image in panels(self.model, first).items():
                writer.add_image(f"panels/{name}", image, step, dataformats="HWC")
        if step % stage.validate_every == 0:
            metrics = validate(self.objective.module, self._val_batches(), self.fabric.device, autocast)
            for key, value in metrics.items():
                writer.add_scalar(key, value, step)
            total = metrics.get("val/total", float("nan"))
            if np.isfinite(total) and (self.best_loss is None or total < self.best_loss):
                self.best_loss = total
                save_checkpoint(self.model, self.out_dir / "best.pt", step=step, metrics=metrics)
        writer.flush()
