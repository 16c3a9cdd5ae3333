"""The per-frame network pass and the ways to execute it: eager PyTorch, a captured CUDA graph, ONNX Runtime.

One pass takes the preprocessed frame ``x`` (1x3xHxW in [0, 1], the model's size) and, from the feature ring,
the previous frame's features (pose, scene flow, motion mask) and the coarsest maps of the ``window - 1``
frames before this one (steering). It returns a dict of tensors: ``feats`` (the 4 maps that enter the ring),
``depth`` (1x1xHxW), ``axis_angle``/``translation`` (1x3), ``flow`` (1x3xHxW), ``mask`` (1x1xHxW),
``curvature`` (1), and per segmentation task ``<task>/class_logits``, ``<task>/mask_logits``.

- :class:`EagerPass` calls the model; without a previous frame or a full history it skips those heads.
- :class:`GraphPass` captures the whole pass (every head, with static input buffers) in one CUDA graph at
  configure and replays it per frame: one launch instead of thousands. Outputs of heads whose inputs are not
  valid yet (no previous frame, short history) are computed on stale buffers and dropped by the pipeline.
- :class:`OnnxPass` runs the graphs of ``inference.export`` with ONNX Runtime sessions built at configure.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from uni_encoder_core.models.unified import UniEncoder

log = logging.getLogger(__name__)


class EagerPass:
    """The network pass on ``model`` (its parameters' dtype; inputs are cast to it)."""

    def __init__(self, model: UniEncoder, tasks: list[str]):
        self.model, self.tasks = model, list(tasks)

    def __call__(self, x: Tensor, previous: list[Tensor] | None, history: Tensor | None) -> dict:
        """See the module docstring; ``history``: 1 x (window-1) x C x h x w, oldest first."""
        model = self.model
        x = x.to(next(model.parameters()).dtype)
        feats = model.encode(x)
        out: dict = {"feats": feats, "depth": model.predict_depth(feats)[1]}
        if previous is not None:
            _, out["axis_angle"], out["translation"] = model.predict_pose(previous, feats)
            out["flow"], out["mask"] = model.predict_motion(previous, feats, out["axis_angle"], out["translation"])
        if self.tasks:
            for task, pred in model.predict_segmentation(feats, self.tasks).items():
                out[f"{task}/class_logits"], out[f"{task}/mask_logits"] = pred.class_logits, pred.mask_logits
        if history is not None:
            out["curvature"] = model.predict_steering(torch.cat([history, feats[-1][:, None]], dim=1))
        return out


class GraphPass:
    """:class:`EagerPass` with every head, captured once in a CUDA graph on static input buffers.

    ``example``: an input ``x`` of the model's size; ``previous``/``history``: example ring contents of the right
    shapes. Raises whatever capture raises (the pipeline then falls back to eager).
    """

    def __init__(self, eager: EagerPass, example: Tensor, previous: list[Tensor], history: Tensor, warmup: int = 3):
        self.x, self.history = example.clone(), history.clone()
        self.previous = [f.clone() for f in previous]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up off the default stream, as capture requires
            for _ in range(warmup):
                eager(self.x, self.previous, self.history)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = eager(self.x, self.previous, self.history)

    def __call__(self, x: Tensor, previous: list[Tensor] | None, history: Tensor | None) -> dict:
        """Copy the inputs into the static buffers and replay; the returned tensors are overwritten by the next
        call (the pipeline copies what it keeps)."""
        self.x.copy_(x)
        if previous is not None:
            for buffer, f in zip(self.previous, previous):
                buffer.copy_(f)
        if history is not None:
            self.history.copy_(history)
        self.graph.replay()
        return self.out


def capture(eager: EagerPass, model_hw: tuple[int, int], device: torch.device, window: int) -> GraphPass | None:
    """A :class:`GraphPass` for ``eager``, or None with a warning naming the reason (no CUDA, capture failed)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        log.warning("cuda_graphs requested on device '%s': CUDA graphs need a CUDA device; running eager", device)
        return None
    try:
        with torch.no_grad():
            x = torch.rand(1, 3, *model_hw, device=device)
            feats = eager(x, None, None)["feats"]
            history = feats[-1][:, None].expand(-1, window - 1, -1, -1, -1).contiguous()
            graph = GraphPass(eager, x, [f.clone() for f in feats], history)
    except Exception as exc:  # noqa: BLE001 - any capture failure leaves the eager pass working
        log.warning("CUDA graph capture failed (%s: %s); running eager", type(exc).__name__, str(exc)[:300])
        return None
    log.info("captured the per-frame pass in a CUDA graph (%dx%d, %d outputs)", *model_hw, len(graph.out))
    return graph


class OnnxPass:
    """The network pass on ONNX Runtime sessions of ``inference.export``'s graphs, exported from ``model`` into a
    temporary directory at construction (float32 graphs; tensors go through host memory)."""

    def __init__(self, model: UniEncoder, tasks: list[str], threads: int | None = None):
        import onnxruntime as ort

        from uni_encoder_core.inference.export import export_graphs

        self.tasks = list(tasks)
        self.device = next(model.parameters()).device
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        cuda = self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        with tempfile.TemporaryDirectory(prefix="uni-encoder-onnx-") as tmp:
            files = export_graphs(model.float().cpu(), Path(tmp), self.tasks)
            self.sessions = {name: ort.InferenceSession(str(f), options, providers=providers)
                             for name, f in files.items()}
        model.to(self.device)

    def _run(self, name: str, *inputs: Tensor) -> list[Tensor]:
        session = self.sessions[name]
        feed = {i.name: np.ascontiguousarray(t.detach().float().cpu().numpy())
                for i, t in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(o).to(self.device) for o in session.run(None, feed)]

    def __call__(self, x: Tensor, previous: list[Tensor] | None, history: Tensor | None) -> dict:
        """See the module docstring."""
        feats = self._run("encoder", x)
        out: dict = {"feats": feats, "depth": self._run("depth", *feats)[1]}
        if previous is not None:
            _, out["axis_angle"], out["translation"] = self._run("pose", *previous, *feats)
            out["flow"], out["mask"] = self._run("motion", *previous, *feats, out["axis_angle"], out["translation"])
        if self.tasks:
            logits = self._run("segmentation", *feats)
            for i, task in enumerate(self.tasks):
                out[f"{task}/class_logits"], out[f"{task}/mask_logits"] = logits[2 * i], logits[2 * i + 1]
        if history is not None:
            out["curvature"] = self._run("steering", torch.cat([history, feats[-1][:, None]], dim=1))[0]
        return out
