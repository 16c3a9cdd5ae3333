"""Per-frame streaming paths measured side by side: the product's ``PerceptionPipeline`` (the unified model with its
feature ring), separate per-task networks, and naive steering that re-encodes the whole 16-frame window every frame.

Every path sees the same frame sequence and computes depth, pose and scene flow + motion mask against the
previous frame, segmentation and steering over the last ``window`` frames. Paths are stepped round-robin, one
frame each per round, so a load change on the machine hits all of them alike.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from uni_encoder_core.bench.timing import CallCounter, Clock, summarize
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.inference.pipeline import CameraFrame, FeatureRing, PerceptionPipeline
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.models.encoder import SharedEncoder
from uni_encoder_core.models.steering import SteeringHead
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder

STAGES = ("encoder", "depth", "pose + flow/mask", "segmentation", "steering")


class Heads:
    """The unified model's per-frame networks as callables; ``wrap`` (e.g. ``torch.compile``) wraps each one and
    ``dtype`` runs them under autocast."""

    def __init__(self, model: UniEncoder, tasks: list[str], dtype: torch.dtype | None = None,
                 wrap: Callable[[Callable], Callable] = lambda f: f):
        self.device_type = next(model.parameters()).device.type
        self.dtype = dtype
        self.encode = wrap(model.encode)
        self.depth = wrap(lambda feats: model.predict_depth(feats)[1])
        self.pose = wrap(model.predict_pose)
        self.motion = wrap(model.predict_motion)
        self.steer = wrap(model.predict_steering)
        segment = wrap(model.predict_segmentation)
        self.segment = (lambda feats: segment(feats, tasks)) if tasks else (lambda feats: {})

    def context(self) -> contextlib.AbstractContextManager:
        """Autocast to ``dtype`` (or nothing)."""
        return torch.autocast(self.device_type, self.dtype) if self.dtype else contextlib.nullcontext()


def encode_and_depth(h: Heads, image: Tensor, clock: Clock) -> tuple[list[Tensor], dict[str, Any]]:
    """The current frame's encoder pass and depth, each timed: (features, outputs so far)."""
    feats = h.encode(image)
    clock.lap("encoder")
    out: dict[str, Any] = {"depth": h.depth(feats)}
    clock.lap("depth")
    return feats, out


class PipelinePath:
    """The product's per-frame path: ``PerceptionPipeline.process`` on the unified model (one encoder pass, the
    16-slot feature ring, outputs post-processed to the input resolution as the node publishes them).

    The pipeline has no clock of its own: forward pre-hooks on the model's parts lap the clock, so each stage also
    carries the pipeline's work that follows it, and the encoder carries the frame's preprocessing; the label maps
    count under segmentation, and the work after them (ring, the copy off the device, the result) under depth.
    ``settings`` are further ``PipelineConfig`` fields (``execution``, ``precision``, ``cuda_graphs``); a pipeline
    that does not call the model's parts (ONNX Runtime, a CUDA graph) puts everything under encoder.
    """

    STAGE_OF = {"encoder": "encoder", "depth": "depth", "pose": "pose + flow/mask", "scene_flow": "pose + flow/mask",
                "motion_mask": "pose + flow/mask", "segmentation": "segmentation", "steering": "steering"}

    def __init__(self, model: UniEncoder, tasks: list[str], **settings: Any):
        device = next(model.parameters()).device
        cfg = PipelineConfig(device=str(device), segmentation_tasks=list(tasks), warmup_frames=0, **settings)
        self.pipeline = PerceptionPipeline(cfg, model=model)
        self.K = np.array([[model.cfg.width / 2, 0.0, model.cfg.width / 2],
                           [0.0, model.cfg.width / 2, model.cfg.height / 2], [0.0, 0.0, 1.0]])
        self.stamp = 0.0
        self.stage: str | None = None

    def _frame(self, image: Tensor) -> CameraFrame:
        """The benchmark's ``1x3xHxW`` frame as the camera delivers it: HxWx3 uint8 in host memory, 10 frames/s."""
        self.stamp += 0.1
        rgb = (image[0].permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
        return CameraFrame(rgb, self.stamp, self.K)

    def prime(self, images: list[Tensor]) -> None:
        """Process the frames before the measured ones (fills the ring)."""
        for image in images[-self.pipeline.ring.capacity:]:
            self.pipeline.process(self._frame(image))

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """Process one frame ``1x3xHxW`` (values k/255); returns the pipeline's depth, relative pose, scene flow,
        motion mask (bool) and curvature as tensors shaped like the other paths' outputs, and its label maps."""
        frame = self._frame(image)
        model = self.pipeline.model

        def enter(stage: str) -> None:
            clock.lap(self.stage or stage)
            self.stage = stage

        # hooks only while this path steps: the naive path and the variants share the model
        handles = [getattr(model, part).register_forward_pre_hook(lambda *_, s=stage: enter(s))
                   for part, stage in self.STAGE_OF.items()]
        segment = self.pipeline._segment

        def label_maps(*args: Any) -> dict:
            enter("segmentation")
            maps = segment(*args)
            enter("depth")
            return maps

        self.pipeline._segment = label_maps
        self.stage = None
        clock.start()  # converting the benchmark's tensor to a camera image is not the pipeline's work
        try:
            result = self.pipeline.process(frame)
            clock.lap(self.stage or "encoder")
        finally:
            del self.pipeline._segment
            for handle in handles:
                handle.remove()
        return {
            "depth": torch.from_numpy(result.depth)[None, None],
            "T": torch.from_numpy(result.relative_pose).float()[None],
            "flow": torch.from_numpy(result.scene_flow).permute(2, 0, 1)[None],
            "mask": torch.from_numpy(result.motion_mask)[None, None],
            "segmentation": {t: getattr(result, t) for t in ("semantic", "instance", "panoptic")},
            "curvature": torch.tensor([result.curvature]),
        }


class NaivePath:
    """The unified model without a feature cache: every frame re-encodes the ``window - 1`` previous images one by
    one for the steering window (and takes the previous frame's features from there): ``window`` encoder calls."""

    def __init__(self, heads: Heads, window: int):
        self.heads = heads
        self.history: deque[Tensor] = deque(maxlen=window - 1)

    def prime(self, images: list[Tensor]) -> None:
        """Remember the images before the measured ones."""
        self.history.extend(images)

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """Process one frame ``1x3xHxW`` with every head."""
        h = self.heads
        with torch.no_grad(), h.context():
            feats, out = encode_and_depth(h, image, clock)
            older = [h.encode(old) for old in self.history]
            clock.lap("encoder")
            out["T"], aa, t = h.pose(older[-1], feats)
            out["flow"], out["mask"] = h.motion(older[-1], feats, aa, t)
            clock.lap("pose + flow/mask")
            out["segmentation"] = h.segment(feats)
            clock.lap("segmentation")
            window = torch.stack([f[-1] for f in older] + [feats[-1]], dim=1)
            out["curvature"] = h.steer(window)
            clock.lap("steering")
        self.history.append(image)
        return out


class SteeringNetwork(MultiTaskModel):
    """A stand-alone steering network: its own encoder (the model's encoder config) and attentive-pooling head."""

    parts = ("encoder", "steering")

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder = SharedEncoder(cfg.encoder)
        self.steering = SteeringHead(self.encoder.channels[-1], cfg.steering)

    def encode(self, images: Tensor) -> Tensor:
        """RGB ``1x3xHxW`` in [0, 1] -> coarsest feature map ``1xCxhxw``."""
        return self.encoder(self.normalise(images))[-1]


class SeparatePath:
    """Per-task networks: the teacher's Swin (depth + segmentation) and ResNet18 pair encoders (pose; flow + mask,
    both fed the previous and current images), plus a separate steering network caching its own window."""

    def __init__(self, teacher: Teacher, steering: SteeringNetwork, tasks: list[str]):
        self.teacher, self.steering, self.tasks = teacher, steering, tasks
        self.ring = FeatureRing(steering.cfg.steering.window)
        self.previous: Tensor | None = None

    def prime(self, images: list[Tensor]) -> None:
        """Fill the steering network's window and remember the previous image."""
        with torch.no_grad():
            for image in images[-self.ring.capacity:]:
                self.ring.push([self.steering.encode(image)])
        self.previous = images[-1]

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """Process one frame ``1x3xHxW`` with every network; the pair encoders count under pose + flow/mask."""
        m = self.teacher
        with torch.no_grad():
            feats = m.encode(image)
            clock.lap("encoder")
            out: dict[str, Any] = {"depth": m.predict_depth(feats)[1]}
            clock.lap("depth")
            out["T"], aa, t = m.predict_pose(self.previous, image)
            out["flow"], out["mask"] = m.predict_motion(self.previous, image, aa, t)
            clock.lap("pose + flow/mask")
            out["segmentation"] = m.predict_segmentation(feats, self.tasks) if self.tasks else {}
            clock.lap("segmentation")
            self.ring.push([self.steering.encode(image)])
            clock.lap("encoder")
            out["curvature"] = self.steering.steering(self.ring.window())
            clock.lap("steering")
        self.previous = image
        return out


def synthetic_frame(index: int, height: int, width: int, device: torch.device) -> Tensor:
    """Seeded random RGB frame ``1x3xHxW`` with values k/255 (what an 8-bit camera gives, so every path sees the same
    image; network cost does not depend on the picture)."""
    g = torch.Generator().manual_seed(index)
    return torch.randint(0, 256, (1, 3, height, width), generator=g).float().div_(255.0).to(device)


def measure(
    paths: dict[str, Any], frames: int, warmup: int, window: int, height: int, width: int, device: torch.device,
    counter: CallCounter | None = None, desc: str = "bench",
) -> dict[str, dict]:
    """Prime every path with ``window`` frames, then step them round-robin (rotating the order each round) over
    ``warmup + frames`` more; returns per path its ms/frame samples, stage samples and per-round ratio to the
    first path (``ratio`` = median over rounds of path ms / first path ms in the same round)."""
    prime = [synthetic_frame(i, height, width, device) for i in range(window)]
    for path in paths.values():
        path.prime(prime)
    names = list(paths)
    clock = Clock(device)
    samples: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for i in tqdm(range(warmup + frames), desc=desc, unit="frame", leave=False):
        image = synthetic_frame(window + i, height, width, device)
        for name in names[i % len(names):] + names[: i % len(names)]:
            if counter is not None:
                counter.current = name if i >= warmup else ""
            clock.start()
            paths[name].step(image, clock)
            if i >= warmup:
                samples[name].append(clock.total)
                for stage, ms in clock.laps.items():
                    stages[name].setdefault(stage, []).append(ms)
    base = samples[names[0]]
    return {
        name: {
            "ms": summarize(samples[name]),
            "ratio": summarize([a / b for a, b in zip(samples[name], base)])["median"],
            "stages_ms": {s: summarize(v)["median"] for s, v in stages[name].items()},
            "samples_ms": samples[name],
            **({"encoder_calls_per_frame": counter.per_frame(name, frames)} if counter else {}),
        }
        for name in names
    }


def build_paths(model: UniEncoder, tasks: list[str], seed: int = 0) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The three streaming paths (unified first: ratios refer to it) and every encoder module by name."""
    device = next(model.parameters()).device
    torch.manual_seed(seed + 1)
    teacher = Teacher(model.cfg).to(device).eval()
    steering = SteeringNetwork(model.cfg).to(device).eval()
    window = model.cfg.steering.window
    paths = {"unified": PipelinePath(model, tasks), "separate": SeparatePath(teacher, steering, tasks),
             "naive": NaivePath(Heads(model, tasks), window)}
    encoders = {"unified encoder (Swin)": model.encoder, "teacher encoder (Swin, depth + seg)": teacher.encoder,
                "teacher pose pair encoder": teacher.pose_encoder, "teacher flow/mask pair encoder":
                teacher.motion_encoder, "steering encoder (Swin)": steering.encoder}
    return paths, encoders


def run_streaming(model: UniEncoder, tasks: list[str], frames: int, warmup: int, seed: int = 0) -> dict:
    """Section 1: unified vs separate networks vs naive re-encoding, ms/frame and ratios to unified."""
    device = next(model.parameters()).device
    paths, encoders = build_paths(model, tasks, seed)
    counter = CallCounter(encoders)
    try:
        results = measure(paths, frames, warmup, model.cfg.steering.window, model.cfg.height, model.cfg.width,
                          device, counter, desc="streaming")
    finally:
        counter.close()
    return {"tasks": tasks, "stages": list(STAGES), "paths": results}
