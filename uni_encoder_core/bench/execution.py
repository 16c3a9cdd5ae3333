"""The product's pipeline under its execution settings, and the steering command's cost with and without the ring.

``execution``: ``PerceptionPipeline.process`` (8-bit frame in host memory -> outputs at input resolution) with
``execution: torch`` (eager fp32, the reference), ``execution: onnxruntime`` (on CUDA only with ONNX Runtime's
CUDA provider) and, on CUDA, ``precision: fp16``
(weights converted once), ``cuda_graphs`` in fp32 and fp16. ``steering``: the steering command from the feature
ring (the head on 16 cached coarsest maps) against re-encoding the 15 previous frames for it.
Paths step round-robin over the same frames (``streaming.measure``); ratios are per-round medians.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import onnxruntime as ort
import torch
from torch import Tensor

from uni_encoder_core.bench.streaming import PipelinePath, measure
from uni_encoder_core.bench.timing import Clock
from uni_encoder_core.inference.feature_ring import FeatureRing
from uni_encoder_core.models.unified import UniEncoder


def execution_paths(model: UniEncoder, tasks: list[str]) -> dict[str, PipelinePath]:
    """The execution settings to compare, eager fp32 first; each pipeline gets its own copy of the model where the
    setting changes the model (weights converted, ONNX export)."""
    paths = {"torch eager fp32": PipelinePath(model, tasks)}
    cuda = next(model.parameters()).device.type == "cuda"
    if not cuda or "CUDAExecutionProvider" in ort.get_available_providers():  # not ONNX on the CPU next to a GPU
        paths["onnxruntime"] = PipelinePath(copy.deepcopy(model), tasks, execution="onnxruntime")
    if cuda:
        paths["torch fp16"] = PipelinePath(copy.deepcopy(model), tasks, precision="fp16")
        paths["cuda graph fp32"] = PipelinePath(copy.deepcopy(model), tasks, cuda_graphs=True)
        paths["cuda graph fp16"] = PipelinePath(copy.deepcopy(model), tasks, cuda_graphs=True, precision="fp16")
    return paths


def run_execution(model: UniEncoder, tasks: list[str], frames: int, warmup: int) -> dict:
    """Section ``execution``: ms/frame of the pipeline per setting and ratio to eager fp32."""
    device = next(model.parameters()).device
    paths = execution_paths(model, tasks)
    notes = {name: {"runner": type(p.pipeline.runner).__name__} for name, p in paths.items()}
    results = measure(paths, frames, warmup, model.cfg.steering.window, model.cfg.height, model.cfg.width, device,
                      desc="execution")
    return {"tasks": tasks, "paths": results, "notes": notes}


class BufferedSteering:
    """The steering command from the ring: the current frame's coarsest map joins the 15 cached ones."""

    def __init__(self, model: UniEncoder):
        self.model, self.ring = model, FeatureRing(model.cfg.steering.window)

    def prime(self, images: list[Tensor]) -> None:
        """Cache the window's features."""
        with torch.no_grad():
            for image in images[-self.ring.capacity:]:
                self.ring.push(self.model.encode(image))

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """One command; the current frame's encoder pass is shared by every head, so it is not counted."""
        with torch.no_grad():
            feats = self.model.encode(image)
            clock.start()
            self.ring.push(feats)
            curvature = self.model.predict_steering(self.ring.window())
            clock.lap("steering")
        return {"curvature": curvature}


class NaiveSteering(BufferedSteering):
    """The steering command without a cache: the 15 previous frames are encoded again, one by one."""

    def __init__(self, model: UniEncoder):
        super().__init__(model)
        self.history: deque[Tensor] = deque(maxlen=model.cfg.steering.window - 1)

    def prime(self, images: list[Tensor]) -> None:
        """Remember the previous images."""
        self.history.extend(images)

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """One command (the current frame's encoder pass not counted, as for the ring)."""
        with torch.no_grad():
            feats = self.model.encode(image)
            clock.start()
            window = torch.stack([self.model.encode(old)[-1] for old in self.history] + [feats[-1]], dim=1)
            curvature = self.model.predict_steering(window)
            clock.lap("steering")
        self.history.append(image)
        return {"curvature": curvature}


def run_steering(model: UniEncoder, frames: int, warmup: int) -> dict:
    """Section ``steering``: ms per steering command with the ring and with re-encoding; ratio ring / naive."""
    device = next(model.parameters()).device
    paths = {"feature ring": BufferedSteering(model), "re-encoding": NaiveSteering(model)}
    results = measure(paths, frames, warmup, model.cfg.steering.window, model.cfg.height, model.cfg.width, device,
                      desc="steering")
    return {"paths": results, "buffered_vs_naive": 1.0 / results["re-encoding"]["ratio"]}
