"""Variants of the unified per-frame path: eager fp32, torch.compile, autocast, ONNX Runtime.

Each variant runs two scopes side by side: ``encoder + depth`` and ``all heads`` (the streaming unified step).
Segmentation decodes every configured task in this section, as the exported segmentation graph does.
A variant that cannot run here is reported as ``unavailable: <reason>``.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch
from torch import Tensor

from uni_encoder_core.bench.streaming import Heads, encode_and_depth, measure, synthetic_frame
from uni_encoder_core.bench.timing import Clock, TimeLimitExceeded, time_limit
from uni_encoder_core.inference.export import export_model
from uni_encoder_core.inference.pipeline import FeatureRing
from uni_encoder_core.models.unified import UniEncoder

SCOPES = {"encoder + depth": False, "all heads": True}


class OnnxHeads:
    """The per-frame networks as ONNX Runtime sessions of ``uni-encoder export``'s graphs (same call signatures
    as :class:`Heads`; inputs go to and outputs come from ``device`` as torch tensors)."""

    def __init__(self, files: dict[str, Path], device: torch.device, threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        cuda = device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        self.provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
        self.sessions = {name: ort.InferenceSession(str(f), options, providers=[self.provider])
                         for name, f in files.items()}
        self.device = device

    def context(self) -> contextlib.AbstractContextManager:
        """No autocast: the graphs are float32."""
        return contextlib.nullcontext()

    def _run(self, name: str, *inputs: Tensor) -> list[Tensor]:
        session = self.sessions[name]
        feed = {i.name: t.detach().cpu().numpy() for i, t in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(o).to(self.device) for o in session.run(None, feed)]

    def encode(self, images: Tensor) -> list[Tensor]:
        """RGB -> 4 feature maps."""
        return self._run("encoder", images)

    def depth(self, feats: list[Tensor]) -> Tensor:
        """Features -> depth."""
        return self._run("depth", *feats)[1]

    def pose(self, src: list[Tensor], tgt: list[Tensor]) -> list[Tensor]:
        """Source and target features -> (T, axis-angle, translation)."""
        return self._run("pose", *src, *tgt)

    def motion(self, src: list[Tensor], tgt: list[Tensor], aa: Tensor, t: Tensor) -> list[Tensor]:
        """Features and ego-motion -> (complete flow, motion mask)."""
        return self._run("motion", *src, *tgt, aa, t)

    def segment(self, feats: list[Tensor]) -> list[Tensor]:
        """Features -> class and mask logits of every configured task."""
        return self._run("segmentation", *feats)

    def steer(self, window: Tensor) -> Tensor:
        """Feature window -> curvature."""
        return self._run("steering", window)[0]


class UnifiedPath:
    """The unified per-frame step on swappable networks: one encoder pass per frame; features enter a ``window``-slot
    ring that pose/motion (previous slot) and steering (all slots) read. ``all_heads=False`` runs encoder and depth.

    The streaming section times ``PerceptionPipeline`` itself; the variants cannot, because they swap the networks
    (``torch.compile``d callables, ONNX Runtime sessions) that the pipeline binds to one eager ``UniEncoder``, and
    time an encoder + depth scope that the pipeline, running every head, does not have.
    """

    def __init__(self, heads: Heads | OnnxHeads, window: int, all_heads: bool = True):
        self.heads, self.all_heads = heads, all_heads
        self.ring = FeatureRing(window)

    def prime(self, images: list[Tensor]) -> None:
        """Fill the ring with the features of the frames before the measured ones."""
        if self.all_heads:
            with torch.no_grad(), self.heads.context():
                for image in images[-self.ring.capacity:]:
                    self.ring.push(self.heads.encode(image))

    def step(self, image: Tensor, clock: Clock) -> dict[str, Any]:
        """Process one frame ``1x3xHxW``; returns depth and, with all heads, pose, flow, mask, segmentation,
        curvature."""
        h = self.heads
        with torch.no_grad(), h.context():
            feats, out = encode_and_depth(h, image, clock)
            if not self.all_heads:
                return out
            previous = self.ring.frame(0)
            out["T"], aa, t = h.pose(previous, feats)
            out["flow"], out["mask"] = h.motion(previous, feats, aa, t)
            clock.lap("pose + flow/mask")
            out["segmentation"] = h.segment(feats)
            clock.lap("segmentation")
            self.ring.push(feats)
            out["curvature"] = h.steer(self.ring.window())
            clock.lap("steering")
        return out


def _warm(path: UnifiedPath, model: UniEncoder, device: torch.device) -> None:
    """Prime and run one step (compiles lazily-compiled callables)."""
    h, w, window = model.cfg.height, model.cfg.width, model.cfg.steering.window
    path.prime([synthetic_frame(i, h, w, device) for i in range(window)])
    path.step(synthetic_frame(window, h, w, device), Clock(device))


def compiled_heads(model: UniEncoder, tasks: list[str], timeout: float) -> tuple[Heads | None, dict]:
    """``torch.compile``d heads for both scopes, compiled (warm) within ``timeout`` s, or None and the reason."""
    if timeout <= 0:
        return None, {"unavailable": "disabled (--compile-timeout 0)"}
    device = next(model.parameters()).device
    t0 = time.perf_counter()
    try:
        with time_limit(timeout):
            heads = Heads(model, tasks, wrap=torch.compile)
            for all_heads in SCOPES.values():
                _warm(UnifiedPath(heads, model.cfg.steering.window, all_heads), model, device)
    except Exception as exc:  # noqa: BLE001 - any compiler failure makes the variant unavailable, not the bench
        torch._dynamo.reset()
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, TimeLimitExceeded):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            return None, {"unavailable": f"compilation did not finish within {timeout:g} s"}
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return None, {"unavailable": f"{type(exc).__name__}: {first_line[:300]}"}
    return heads, {"compile_s": time.perf_counter() - t0}


def onnx_heads(model: UniEncoder, directory: Path) -> tuple[OnnxHeads | None, dict]:
    """Export the graphs with ``uni_encoder_core.inference.export`` and open them, or None and the reason."""
    t0 = time.perf_counter()
    try:
        reports = export_model(model, directory)
    except Exception as exc:  # noqa: BLE001 - the variant is reported unavailable
        return None, {"unavailable": f"export failed: {type(exc).__name__}: {str(exc)[:300]}"}
    info = {"export_s": time.perf_counter() - t0,
            "max_abs_diff": {r.name: max(r.max_abs_diff.values(), default=None) for r in reports},
            "failed_graphs": {r.name: r.error for r in reports if r.error}}
    files = {r.name: directory / r.file for r in reports if r.error is None}
    heads = OnnxHeads(files, next(model.parameters()).device, torch.get_num_threads())
    info["provider"] = heads.provider
    return heads, info


VARIANTS = ("eager", "autocast", "compile", "onnx")


def run_variants(model: UniEncoder, frames: int, warmup: int, compile_timeout: float,
                 which: tuple[str, ...] = VARIANTS) -> dict:
    """Section 2: the ``which`` variants (eager fp32 always) in both scopes, ratios to eager fp32 of the same scope."""
    device = next(model.parameters()).device
    tasks = list(model.cfg.segmentation.tasks)
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    window = model.cfg.steering.window
    variants: dict[str, Any] = {"eager fp32": Heads(model, tasks)}
    if "autocast" in which:
        variants[f"autocast {str(low).removeprefix('torch.')}"] = Heads(model, tasks, dtype=low)
    notes: dict[str, dict] = {}
    if "compile" in which:
        compiled, notes["torch.compile"] = compiled_heads(model, tasks, compile_timeout)
        if compiled is not None:
            variants["torch.compile"] = compiled
    with tempfile.TemporaryDirectory(prefix="uni-encoder-bench-onnx-") as tmp:
        if "onnx" in which:
            onnx, notes["onnxruntime"] = onnx_heads(model, Path(tmp))
            if onnx is not None:
                variants["onnxruntime"] = onnx
        table: dict[str, dict] = {}
        for scope, all_heads in SCOPES.items():
            needed = {"encoder", "depth"} | ({"pose", "motion", "segmentation", "steering"} if all_heads else set())
            paths = {}
            for name, heads in variants.items():
                missing = sorted(needed - set(heads.sessions)) if isinstance(heads, OnnxHeads) else []
                if missing:
                    notes.setdefault(name, {})[scope] = f"unavailable: graphs {missing} did not export"
                else:
                    paths[name] = UnifiedPath(heads, window, all_heads)
            table[scope] = measure(paths, frames, warmup, window, model.cfg.height, model.cfg.width, device,
                                   desc=f"variants ({scope})")
    return {"tasks": tasks, "variants": list(variants) + [n for n in notes if n not in variants],
            "notes": notes, "scopes": table}
