"""Training cost per stage: step time and peak memory of the real training step, and the whole schedule's wall time.

For each recipe (default: the paper's chain in ``training/configs/``) this builds the stage's network from
``--model`` (default: the recipe's own), sets its trainable parts, builds ``TrainingObjective.from_stage`` (stage 4
gets a randomly initialised teacher: the cost does not depend on its weights), AdamW over the trainable parameters,
and a synthetic batch of the recipe's size (``batch_labelled`` labelled images, ``batch_triplets`` frame triplets,
each dropped when the stage's losses do not use it). One warm-up step, then ``--steps`` timed steps, each the
forward pass, backward, gradient clipping to the recipe's ``grad_clip`` and the optimizer step.

Peak memory: on CPU the process's resident set size (``/proc/self/statm``) sampled every 2 ms by a thread during
the timed steps, reported as the peak and as the increase over the RSS just before the warm-up step; on CUDA
``torch.cuda.max_memory_allocated`` over the timed steps. On CUDA the step runs under the recipe's autocast
precision (bf16/fp16), as the training loop does; on CPU in float32, as the loop does.

Prints a Markdown table: one row per stage, then the projected wall time of every stage's ``steps`` at the
measured median step time, and the sum. Usage::

    python training/stage_cost.py [--device cpu|cuda] [--model config/model/swin_t.yaml] [--steps 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import multiprocessing
import os
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.train.batch import TrainBatch, synthetic_batch
from uni_encoder_core.train.objective import TrainingObjective
from uni_encoder_core.train.recipe import NETWORKS, load_stage

RECIPES = [f"training/configs/{name}.yaml" for name in
           ("teacher", "student_stage1", "student_stage2", "student_stage3", "student_stage4")]
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIB = 2 ** 20


class RssSampler:
    """Peak resident set size (bytes) of this process while running, sampled every ``period`` seconds."""

    def __init__(self, period: float = 0.002):
        self.period, self.peak, self._stop = period, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def stage_batch(batch: TrainBatch, losses: tuple[str, ...]) -> TrainBatch:
    """``batch`` with the labelled images dropped without ``sup`` and the triplets without ``ssup``/``distil``."""
    if "sup" not in losses:
        batch = dataclasses.replace(batch, labelled=None, tasks=None, targets=None)
    if not {"ssup", "distil"} & set(losses):
        batch = dataclasses.replace(batch, triplets=None)
    return batch


def measure(recipe: str, model_path: str | None, steps: int, device: torch.device, threads: int) -> dict:
    """Median/max step seconds, peak memory (MiB) and trainable parameters of one recipe's training step
    (run in a fresh process, so that memory freed by an earlier stage does not hide this one's)."""
    torch.set_num_threads(threads)
    stage = load_stage(recipe)
    cfg = load_config(model_path or stage.model, ModelConfig)
    torch.manual_seed(stage.seed)
    model = NETWORKS[stage.network](cfg).to(device)
    model.set_trainable(stage.trainable)
    teacher = Teacher(cfg).to(device) if "distil" in stage.losses else None
    objective = TrainingObjective.from_stage(model, stage, teacher).train()
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, betas=tuple(stage.betas), weight_decay=stage.weight_decay)
    sizes = {"sup": stage.batch_labelled, "ssup": stage.batch_triplets, "distil": stage.batch_triplets}
    size = max(sizes[name] for name in stage.losses)
    if {stage.batch_labelled, stage.batch_triplets} != {size}:
        raise ValueError(f"{recipe}: the synthetic batch needs batch_labelled == batch_triplets")
    batch = stage_batch(synthetic_batch(cfg, size, stage.seed), stage.losses).to(device)
    dtype = AUTOCAST.get(stage.precision) if device.type == "cuda" else None

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            total = objective(batch)["total"]
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, stage.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    gc.collect()
    before = RssSampler.rss()
    times = []
    with RssSampler() as sampler:
        step()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        memory = f"{torch.cuda.max_memory_allocated(device) / MIB:,.0f} (CUDA allocated)"
    else:
        memory = f"{sampler.peak / MIB:,.0f} ({(sampler.peak - before) / MIB:+,.0f})"
    labelled, triplets = (size if "sup" in stage.losses else 0), (0 if batch.triplets is None else size)
    return {"name": stage.name, "trainable": sum(p.numel() for p in params) / 1e6, "batch": f"{labelled}+{triplets}",
            "losses": "+".join(stage.losses), "median": statistics.median(times), "max": max(times),
            "memory": memory, "steps": stage.steps}


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h ({seconds / 86400:,.1f} d)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model config (default: each recipe's own)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per stage, after one warm-up step")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--recipes", nargs="+", default=RECIPES, help="stage recipes (default: the paper's chain)")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    memory = "peak CUDA MiB" if device.type == "cuda" else "peak RSS MiB (over pre-step)"
    print(f"| stage | losses | batch (labelled+triplets) | trainable M | median s/step | max s/step | {memory} "
          "| steps | projected |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for recipe in args.recipes:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            r = pool.submit(measure, recipe, args.model, args.steps, device, args.threads).result()
        rows.append(r)
        print(f"| {r['name']} | {r['losses']} | {r['batch']} | {r['trainable']:.1f} | "
              f"{r['median']:.2f} | {r['max']:.2f} | {r['memory']} | {r['steps']:,} | "
              f"{hours(r['median'] * r['steps'])} |", flush=True)
    total = sum(r["median"] * r["steps"] for r in rows)
    print(f"\nWhole schedule ({sum(r['steps'] for r in rows):,} steps): {hours(total)}")


if __name__ == "__main__":
    main()
