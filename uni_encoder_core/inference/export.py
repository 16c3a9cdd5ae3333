"""ONNX graphs of the per-frame inference path, checked against PyTorch.

One graph per network so that a runtime can cache encoder features per frame exactly like the PyTorch
pipeline: ``encoder`` (RGB in [0, 1] -> 4 feature maps), ``depth``, ``pose``, ``motion``, ``steering`` and
``segmentation``. Batch and width are dynamic (segmentation: batch only), the height is the model's.
Every graph is run with ONNX Runtime on the export inputs and on a larger batch of wider inputs (segmentation:
of the export width) and compared with PyTorch; ``export_report.json`` records the maximum absolute differences.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.models.unified import UniEncoder

OPSET = 17
FEATS = [f"feat{i}" for i in range(4)]


class EncoderGraph(nn.Module):
    """RGB ``Bx3xHxW`` in [0, 1] -> 4 feature maps (normalisation included)."""

    def __init__(self, model: UniEncoder):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """See class docstring."""
        return tuple(self.model.encode(images))


class DepthGraph(EncoderGraph):
    """4 feature maps -> (finest disparity ``Bx1xHxW``, depth ``Bx1xHxW``)."""

    def forward(self, f0: Tensor, f1: Tensor, f2: Tensor, f3: Tensor) -> tuple[Tensor, Tensor]:
        """See class docstring."""
        disparities, depth = self.model.predict_depth([f0, f1, f2, f3])
        return disparities[0], depth


class PoseGraph(EncoderGraph):
    """Source and target feature maps -> (``T_t->s`` Bx4x4, axis-angle Bx3, translation Bx3)."""

    def forward(self, *feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """See class docstring."""
        return self.model.predict_pose(list(feats[:4]), list(feats[4:]))


class MotionGraph(EncoderGraph):
    """Source and target feature maps, axis-angle, translation -> (complete flow Bx3xHxW, motion mask Bx1xHxW)."""

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        """See class docstring."""
        return self.model.predict_motion(list(inputs[:4]), list(inputs[4:8]), inputs[8], inputs[9])


class SteeringGraph(EncoderGraph):
    """Window of coarsest feature maps ``BxTxCxhxw`` -> curvature ``B`` (1/m)."""

    def forward(self, window: Tensor) -> Tensor:
        """See class docstring."""
        return self.model.predict_steering(window)


class SegmentationGraph(EncoderGraph):
    """4 feature maps -> class logits and mask logits of each task in ``tasks`` (default: the configured tasks, in
    the config's order)."""

    def __init__(self, model: UniEncoder, tasks: list[str] | None = None):
        super().__init__(model)
        self.tasks = list(model.cfg.segmentation.tasks if tasks is None else tasks)

    def forward(self, f0: Tensor, f1: Tensor, f2: Tensor, f3: Tensor) -> tuple[Tensor, ...]:
        """See class docstring."""
        preds = self.model.predict_segmentation([f0, f1, f2, f3], self.tasks)
        return tuple(t for task in self.tasks for t in (preds[task].class_logits, preds[task].mask_logits))


@dataclass
class GraphReport:
    """Export result of one graph: file, outputs and the largest |ONNX - PyTorch| per checked input.

    ``torch_sensitivity`` is PyTorch's own change under a relative 1e-6 perturbation of the inputs: the
    floor below which a difference cannot be blamed on the export (the segmentation decoder's masked
    attention thresholds ``sigmoid(mask) < 0.5``, so its outputs jump where a mask logit is near 0).
    """

    name: str
    file: str
    outputs: list[str]
    max_abs_diff: dict[str, float]
    torch_sensitivity: dict[str, float]
    error: str | None = None

    def passed(self, tolerance: float) -> bool:
        """No error, and every difference within ``tolerance`` or within twice PyTorch's own sensitivity."""
        return self.error is None and all(
            d <= max(tolerance, 2.0 * self.torch_sensitivity[key]) for key, d in self.max_abs_diff.items()
        )


def _inputs(model: UniEncoder, width: int, batch: int = 1) -> dict[str, dict[str, Tensor]]:
    """Example inputs of every graph for one input width (features from the model's own encoder)."""
    g = torch.Generator().manual_seed(width)
    images = torch.rand(2 * batch, 3, model.cfg.height, width, generator=g)
    with torch.no_grad():
        feats = model.encode(images)
        src, tgt = [f[:batch] for f in feats], [f[batch:] for f in feats]
        _, aa, t = model.predict_pose(src, tgt)
    window = torch.randn(batch, model.cfg.steering.window, *feats[3].shape[1:], generator=g)
    named = dict(zip(FEATS, tgt))
    pair = {**{f"src_{k}": v for k, v in zip(FEATS, src)}, **{f"tgt_{k}": v for k, v in zip(FEATS, tgt)}}
    return {
        "encoder": {"images": images[batch:]},
        "depth": named,
        "pose": pair,
        "motion": {**pair, "axis_angle": aa, "translation": t},
        "steering": {"window": window},
        "segmentation": named,
    }


def _outputs(name: str, model: UniEncoder, tasks: list[str] | None = None) -> list[str]:
    if name == "segmentation":
        tasks = model.cfg.segmentation.tasks if tasks is None else tasks
        return [f"{task}_{kind}" for task in tasks for kind in ("class_logits", "mask_logits")]
    return {
        "encoder": FEATS,
        "depth": ["disparity", "depth"],
        "pose": ["T_t_to_s", "axis_angle", "translation"],
        "motion": ["complete_flow", "motion_mask"],
        "steering": ["curvature"],
    }[name]


def _dynamic_axes(inputs: dict[str, Tensor], outputs: list[str], width: bool) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for name, tensor in inputs.items():
        axes[name] = {0: "batch", tensor.dim() - 1: f"{name}_width"} if width and tensor.dim() >= 4 else {0: "batch"}
    for name in outputs:
        axes[name] = {0: "batch"}  # output widths follow from the inputs
    return axes


GRAPHS = {"encoder": EncoderGraph, "depth": DepthGraph, "pose": PoseGraph, "motion": MotionGraph,
          "steering": SteeringGraph, "segmentation": SegmentationGraph}
# Graphs whose width is fixed at export: the pixel decoder's deformable attention normalises its sampling offsets
# by the feature-map sizes, which the tracer records as constants, so another width would sample wrong places.
STATIC_WIDTH = {"segmentation"}


def _run_torch(graph: nn.Module, inputs: list[Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = graph(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def _compare(session: ort.InferenceSession, graph: nn.Module, inputs: dict[str, Tensor]) -> tuple[float, float]:
    """(max |ONNX - PyTorch|, max |PyTorch(x) - PyTorch(x * (1 + 1e-6 noise))|) for one input set."""
    expected = _run_torch(graph, list(inputs.values()))
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    g = torch.Generator().manual_seed(0)
    nudged = [v * (1 + 1e-6 * torch.randn(v.shape, generator=g)) for v in inputs.values()]
    return _max_diff(expected, got), _max_diff(expected, _run_torch(graph, nudged))


def _export(graph: nn.Module, inputs: dict[str, Tensor], outputs: list[str], file: Path, width: bool) -> None:
    """Trace ``graph`` on ``inputs`` into the ONNX file ``file`` (batch dynamic; widths too when ``width``)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, tuple(inputs.values()), str(file), input_names=list(inputs), output_names=outputs,
            dynamic_axes=_dynamic_axes(inputs, outputs, width), opset_version=OPSET, dynamo=False,
        )


def export_graphs(model: UniEncoder, out_dir: Path, tasks: list[str]) -> dict[str, Path]:
    """Export every graph of ``model`` (segmentation: ``tasks``; none when empty) to ``out_dir/<name>.onnx``
    without checking them against PyTorch (``export_model`` checks); returns the files by graph name."""
    model = model.eval()
    inputs = _inputs(model, model.cfg.width)
    files = {}
    for name, cls in GRAPHS.items():
        if name == "segmentation" and not tasks:
            continue
        graph = SegmentationGraph(model, tasks) if name == "segmentation" else cls(model)
        files[name] = out_dir / f"{name}.onnx"
        _export(graph.eval(), inputs[name], _outputs(name, model, tasks), files[name], name not in STATIC_WIDTH)
    return files


def export_model(model: UniEncoder, out_dir: str | Path, widths: tuple[int, int] | None = None) -> list[GraphReport]:
    """Export every graph of ``model`` to ``out_dir/<name>.onnx`` and compare it with PyTorch.

    ``widths``: (export width, check width); default the model's width and that width + 64. The graphs
    are traced at batch 1 and the export width and checked there and at batch 2 and the check width (the
    export width for ``STATIC_WIDTH`` graphs); ``max_abs_diff`` is keyed ``"<batch>x<width>"``. A graph that
    fails to export is reported with its error and no file; ``export_report.json`` lists them all.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    export_width, check_width = widths or (model.cfg.width, model.cfg.width + 64)
    examples = {f"{b}x{w}": _inputs(model, w, b) for b, w in ((1, export_width), (2, check_width), (2, export_width))}
    first = next(iter(examples))
    reports = []
    for name, cls in GRAPHS.items():
        graph, outputs, file = cls(model).eval(), _outputs(name, model), out_dir / f"{name}.onnx"
        inputs = examples[first][name]
        checks = [first, f"2x{export_width if name in STATIC_WIDTH else check_width}"]
        try:
            _export(graph, inputs, outputs, file, width=name not in STATIC_WIDTH)
            session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
            results = {key: _compare(session, graph, examples[key][name]) for key in checks}
            diffs = {key: r[0] for key, r in results.items()}
            reports.append(GraphReport(name, file.name, outputs, diffs, {key: r[1] for key, r in results.items()}))
        except Exception as exc:  # noqa: BLE001 - recorded in the report, the other graphs still export
            file.unlink(missing_ok=True)
            reports.append(GraphReport(name, "", outputs, {}, {}, f"{type(exc).__name__}: {str(exc)[:500]}"))
    with atomic_writer(out_dir / "export_report.json", "w") as fh:
        json.dump({"opset": OPSET, "height": model.cfg.height, "graphs": [asdict(r) for r in reports]}, fh, indent=2)
    return reports
