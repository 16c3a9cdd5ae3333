"""Per-frame perception: one encoder pass per camera frame, every head on the cached features.

``PerceptionPipeline.process(frame)`` takes an RGB frame at any resolution, removes the bottom
``crop_bottom`` fraction of rows (Cityscapes: the ego bonnet), resizes to the model's size and runs
the encoder once. Its features enter a ring buffer of ``window`` (16) slots: the pose and motion heads
pair them with the previous frame's slot, the steering head reads the whole window. Every output
comes back at the input image's resolution; cropped rows are NaN depth / void labels.

Temporal state (ring buffer, odometry) resets when the stamp goes backwards (a bag loop) or jumps by
more than ``max_frame_gap``; a frame with the previous frame's stamp is rejected and changes nothing.
With ``metric_scale`` the up-to-scale depth, translation and scene flow are scaled to metres from a
RANSAC ground-plane fit and the known ``camera_height``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from uni_encoder_core.geometry import metric_scale_from_camera_height, pose_vec_to_matrix, scale_intrinsics
from uni_encoder_core.inference.device_io import preprocess_on_device, to_host
from uni_encoder_core.inference.feature_ring import FeatureRing
from uni_encoder_core.inference.frame_pass import EagerPass, OnnxPass, capture
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.labels import LABEL_DIVISOR, THING_CLASSES, VOID
from uni_encoder_core.models.checkpoint import load_checkpoint
from uni_encoder_core.models.segmentation import to_instance, to_panoptic, to_semantic
from uni_encoder_core.models.steering import ackermann_steering_angle
from uni_encoder_core.models.unified import UniEncoder

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
EXECUTIONS = ("torch", "onnxruntime")
log = logging.getLogger(__name__)


class PipelineError(ValueError):
    """A frame or a setting the pipeline cannot work with; the text names the problem."""


@dataclass
class CameraFrame:
    """One camera image: ``rgb`` HxWx3 uint8, ``stamp`` (s), intrinsics ``K`` 3x3 (pixels, this resolution)."""

    rgb: np.ndarray
    stamp: float
    K: np.ndarray


@dataclass
class PerceptionResult:
    """Everything inferred from one frame, at the input resolution HxW (optical frame: x right, y down, z fwd).

    ``depth`` HxW float32 (NaN = invalid; metres when ``metric``), ``semantic`` HxW uint8 (train ids, 255 void),
    ``instance`` HxW uint16 (0 = none), ``panoptic`` HxW int32 (category*1000 + instance, 255000 void),
    ``scene_flow`` HxWx3 float32 (per pixel of this frame: displacement of its 3D point into the previous
    camera frame, expressed in this camera's frame, depth units per frame), ``motion_mask`` HxW bool,
    ``relative_pose`` 4x4 (this camera in the previous camera's frame, ``T_prev_cur``), ``pose`` 4x4 (this camera
    in the first camera of the sequence), ``curvature`` (1/m, + = left) and ``steering_angle`` (rad) once the window
    holds ``window`` frames. Maps that were not computed are None; ``reset`` names why the window restarted here.
    """

    stamp: float
    K: np.ndarray
    depth: np.ndarray
    metric: bool
    scale: float
    pose: np.ndarray
    window_length: int
    semantic: np.ndarray | None = None
    instance: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    scene_flow: np.ndarray | None = None
    motion_mask: np.ndarray | None = None
    relative_pose: np.ndarray | None = None
    curvature: float | None = None
    steering_angle: float | None = None
    reset: str | None = None


def crop_rows(height: int, crop_bottom: float) -> int:
    """Number of image rows removed at the bottom for a ``crop_bottom`` fraction in [0, 1)."""
    if not 0.0 <= crop_bottom < 1.0:
        raise PipelineError(f"crop_bottom must be in [0, 1), got {crop_bottom}")
    return int(round(height * crop_bottom))


def model_intrinsics(K: np.ndarray, kept_hw: tuple[int, int], model_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics of the network input: the kept (top) ``kept_hw`` rows resized to ``model_hw``.

    Cropping bottom rows leaves ``K`` unchanged; the resize keeps pixel centres aligned
    (``u' = sx (u + 0.5) - 0.5``, as ``cv2.resize`` and ``geometry.scale_intrinsics``).
    """
    sx, sy = model_hw[1] / kept_hw[1], model_hw[0] / kept_hw[0]
    return scale_intrinsics(torch.as_tensor(K, dtype=torch.float64)[None], sx, sy)[0].numpy()


def preprocess(rgb: np.ndarray, crop_bottom: float, model_hw: tuple[int, int]) -> tuple[np.ndarray, int]:
    """HxWx3 uint8 -> (model-size HxWx3 uint8 image, number of cropped rows)."""
    crop = crop_rows(rgb.shape[0], crop_bottom)
    kept = rgb[: rgb.shape[0] - crop]
    interpolation = cv2.INTER_AREA if kept.shape[0] > model_hw[0] else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(kept), (model_hw[1], model_hw[0]), interpolation=interpolation)
    return resized, crop


def restore_rows(maps: torch.Tensor, height: int, width: int, crop: int, fill: float, mode: str) -> torch.Tensor:
    """Bx C x h x w network-size maps -> Bx C x height x width: resize onto the kept rows, ``fill`` the cropped ones."""
    kept = F.interpolate(maps.float(), size=(height - crop, width), mode=mode)
    if crop == 0:
        return kept
    return torch.cat([kept, kept.new_full((*kept.shape[:2], crop, width), fill)], dim=2)


def instance_ids(panoptic: torch.Tensor) -> torch.Tensor:
    """Instance id map (int32, 0 = none, 1.. per thing segment in panoptic-id order) of a panoptic map."""
    category, instance = panoptic // LABEL_DIVISOR, panoptic % LABEL_DIVISOR
    things = torch.isin(category, torch.tensor(THING_CLASSES, device=panoptic.device)) & (instance > 0)
    _, inverse = torch.unique(panoptic[things], return_inverse=True)
    return torch.zeros(panoptic.shape, dtype=torch.int32, device=panoptic.device).masked_scatter_(
        things, inverse.to(torch.int32) + 1)


def instance_ids_from_panoptic(panoptic: np.ndarray) -> np.ndarray:
    """Instance id map (uint16, 0 = none, 1.. per thing segment) from a panoptic map (numpy)."""
    return instance_ids(torch.from_numpy(np.asarray(panoptic, np.int64))).numpy().astype(np.uint16)


# task -> (post-processing (class logits, mask logits, size, SegmentationConfig) to a label map, fill of the cropped
# rows, dtype on the device, output dtype)
SEGMENTATION_OUTPUTS = {
    "panoptic": (lambda c, m, size, s: to_panoptic(c, m, size, s.object_threshold, s.overlap_threshold),
                 VOID * LABEL_DIVISOR, torch.int32, np.int32),
    "semantic": (lambda c, m, size, s: to_semantic(c, m, size), VOID, torch.uint8, np.uint8),
    "instance": (lambda c, m, size, s: to_instance(c, m, size, s.object_threshold, s.overlap_threshold).id_map,
                 0, torch.int32, np.uint16),
}
SEGMENTATION_NUMPY = {task: numpy_dtype for task, (*_, numpy_dtype) in SEGMENTATION_OUTPUTS.items()}


class PerceptionPipeline:
    """Loads a checkpoint and turns camera frames into :class:`PerceptionResult` (see the module docstring).

    Execution (``PipelineConfig``): ``execution: torch`` runs the model eager, or replays a CUDA graph of the whole
    per-frame pass with ``cuda_graphs`` (captured at configure; eager with a warning when it cannot be);
    ``execution: onnxruntime`` runs the exported graphs (float32). On CUDA, ``fp16``/``bf16`` convert the weights
    once at configure and frames are resized on the device; on the CPU reduced precision autocasts. Every output of
    a frame comes off the device in one copy.
    """

    def __init__(self, cfg: PipelineConfig, model: torch.nn.Module | None = None):
        if cfg.precision not in PRECISIONS:
            raise PipelineError(f"precision must be one of {list(PRECISIONS)}, got '{cfg.precision}'")
        if cfg.execution not in EXECUTIONS:
            raise PipelineError(f"execution must be one of {list(EXECUTIONS)}, got '{cfg.execution}'")
        if cfg.execution == "onnxruntime" and (cfg.precision != "fp32" or cfg.cuda_graphs):
            raise PipelineError("execution 'onnxruntime' runs float32 graphs: it needs precision fp32 and "
                                "cuda_graphs false")
        crop_rows(100, cfg.crop_bottom)
        unknown = sorted(set(cfg.segmentation_tasks) - {"semantic", "instance", "panoptic"})
        if unknown:
            raise PipelineError(f"unknown segmentation task '{unknown[0]}' (semantic, instance, panoptic)")
        if cfg.metric_scale and cfg.camera_height <= 0:
            raise PipelineError(f"metric_scale needs a positive camera_height, got {cfg.camera_height}")
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise PipelineError(f"device '{cfg.device}' requested but CUDA is not available")
        self.model = (model if model is not None else load_checkpoint(cfg.checkpoint, map_location="cpu")).eval()
        if not isinstance(self.model, UniEncoder):
            raise PipelineError(f"checkpoint '{cfg.checkpoint}' holds a {type(self.model).__name__}, not a UniEncoder")
        self.model_hw = (self.model.cfg.height, self.model.cfg.width)
        self.ring = FeatureRing(self.model.cfg.steering.window)
        self.tasks = list(cfg.segmentation_tasks)
        self.runner = None
        self.scale = 1.0
        self.pose = np.eye(4)
        self.last_stamp: float | None = None
        self.acquire()

    # ----------------------------------------------------------------- device

    @property
    def converts_weights(self) -> bool:
        """Whether reduced precision converts the weights (CUDA) rather than autocasting (CPU)."""
        return self.device.type == "cuda" and self.cfg.precision != "fp32"

    def acquire(self) -> None:
        """Move the model to the configured device (weights converted once for reduced precision on CUDA, channels
        last if asked), build the execution (ONNX Runtime sessions, CUDA graph capture) and warm it up."""
        self.model.to(self.device)
        if self.converts_weights:
            self.model.to(PRECISIONS[self.cfg.precision])
        if self.cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        eager = EagerPass(self.model, self.tasks)
        if self.cfg.execution == "onnxruntime":
            self.runner = OnnxPass(self.model, self.tasks, torch.get_num_threads())
        elif self.cfg.cuda_graphs:
            with self._autocast():
                self.runner = capture(eager, self.model_hw, self.device, self.ring.capacity) or eager
        else:
            self.runner = eager
        rng = np.random.default_rng(0)
        for i in range(self.cfg.warmup_frames):
            rgb = rng.integers(0, 256, (*self.model_hw, 3), dtype=np.uint8)
            self.process(CameraFrame(rgb, 0.05 * i, np.array([[100.0, 0, 64], [0, 100.0, 32], [0, 0, 1]])))
        if self.cfg.warmup_frames:  # every head, steering on a window made of the last frame
            previous = self.ring.frame(0)
            history = previous[-1][:, None].expand(-1, self.ring.capacity - 1, -1, -1, -1)
            with torch.no_grad(), self._autocast():
                self.runner(torch.zeros(1, 3, *self.model_hw, device=self.device), previous, history)
        self.reset()

    def release(self) -> None:
        """Free device memory: temporal state and the captured graph dropped, model moved to the CPU."""
        self.reset()
        self.ring.release()
        self.runner = None
        self.model.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def reset(self) -> None:
        """Forget the temporal window and the odometry."""
        self.ring.clear()
        self.pose = np.eye(4)
        self.scale = 1.0
        self.last_stamp = None

    def _autocast(self):
        dtype = PRECISIONS[self.cfg.precision]
        if dtype == torch.float32 or self.converts_weights:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    # ----------------------------------------------------------------- per frame

    def _window_check(self, stamp: float) -> str | None:
        if self.last_stamp is None:
            return None
        dt = stamp - self.last_stamp
        if dt == 0:
            raise PipelineError(f"duplicate stamp {stamp:.9f} s (the previous frame's): frame skipped, window and "
                                "odometry kept")
        if dt < 0:
            self.pose = np.eye(4)  # a new pass over the sequence (bag loop) starts a new odometry
            return f"stamp went backwards by {-dt:.3f} s"
        if dt > self.cfg.max_frame_gap:
            return f"gap of {dt:.3f} s > max_frame_gap {self.cfg.max_frame_gap} s"
        return None

    def _check(self, frame: CameraFrame) -> None:
        rgb, K = frame.rgb, np.asarray(frame.K)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise PipelineError(f"frame must be HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise PipelineError(f"intrinsics must be a finite 3x3 matrix with fx, fy > 0, got {K.tolist()}")
        if not math.isfinite(frame.stamp):
            raise PipelineError(f"stamp must be finite, got {frame.stamp}")

    def _input(self, rgb: np.ndarray) -> tuple[torch.Tensor, int]:
        """The network input 1x3xhxw in [0, 1] and the number of cropped rows (resized on the device on CUDA)."""
        if self.device.type == "cuda":
            crop = crop_rows(rgb.shape[0], self.cfg.crop_bottom)
            return preprocess_on_device(torch.from_numpy(rgb).to(self.device), crop, self.model_hw), crop
        image, crop = preprocess(rgb, self.cfg.crop_bottom, self.model_hw)
        return torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0), crop

    @torch.no_grad()
    def process(self, frame: CameraFrame) -> PerceptionResult:
        """Run every head on one frame (the encoder exactly once) and return the outputs at input resolution."""
        self._check(frame)
        reset = self._window_check(frame.stamp)
        if reset is not None:
            self.ring.clear()
        self.last_stamp = frame.stamp
        H, W = frame.rgb.shape[:2]
        x, crop = self._input(frame.rgb)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        previous = self.ring.frame(0) if len(self.ring) > 0 else None
        history = self.ring.window()[:, 1:] if len(self.ring) >= self.ring.capacity - 1 else None
        with self._autocast():
            out = self.runner(x, previous, history)
        depth = out["depth"].float()
        if self.cfg.metric_scale:
            K_net = model_intrinsics(frame.K, (H - crop, W), self.model_hw)
            K_t = torch.as_tensor(K_net, dtype=torch.float32, device=self.device)[None]
            scale = float(metric_scale_from_camera_height(depth, K_t, self.cfg.camera_height,
                                                          max_tilt_deg=self.cfg.max_ground_tilt)[0])
            self.scale = scale if math.isfinite(scale) and scale > 0 else self.scale
        else:
            self.scale = 1.0
        maps = {"depth": restore_rows(depth * self.scale, H, W, crop, math.nan, "bilinear")[0, 0]}
        if previous is not None:
            maps["relative_pose"] = pose_vec_to_matrix(out["axis_angle"].float(), out["translation"].float())[0]
            flow = restore_rows(out["flow"].float() * self.scale, H, W, crop, math.nan, "bilinear")
            maps["scene_flow"] = flow[0].permute(1, 2, 0)
            maps["motion_mask"] = restore_rows(out["mask"].float(), H, W, crop, 0.0, "bilinear")[0, 0] > 0.5
        if history is not None:
            maps["curvature"] = out["curvature"].float()
        maps.update(self._segment(out, H, W, crop))
        self.ring.push(out["feats"])
        host = to_host(maps) if self.device.type == "cuda" else {k: v.numpy() for k, v in maps.items()}
        relative = None
        if previous is not None:
            relative = host["relative_pose"].astype(np.float64)
            relative[:3, 3] *= self.scale
            self.pose = self.pose @ relative
        curvature = float(host["curvature"][0]) if history is not None else None
        return PerceptionResult(
            stamp=frame.stamp, K=np.asarray(frame.K, np.float64), depth=host["depth"],
            metric=self.cfg.metric_scale, scale=self.scale, pose=self.pose.copy(), window_length=len(self.ring),
            scene_flow=host.get("scene_flow"), motion_mask=host.get("motion_mask"), relative_pose=relative,
            curvature=curvature,
            steering_angle=None if curvature is None else ackermann_steering_angle(curvature, self.cfg.wheelbase),
            reset=reset, **{t: host[t].astype(SEGMENTATION_NUMPY[t]) for t in SEGMENTATION_NUMPY if t in host},
        )

    def _segment(self, out: dict, H: int, W: int, crop: int) -> dict[str, torch.Tensor]:
        """Semantic / instance / panoptic maps at the input size, on the device; panoptic alone also yields the
        other two."""
        result = {}
        for task in self.tasks:
            post, fill, dtype, _ = SEGMENTATION_OUTPUTS[task]
            labels = post(out[f"{task}/class_logits"].float(), out[f"{task}/mask_logits"].float(), self.model_hw,
                          self.model.cfg.segmentation)
            # float32 holds every label id exactly (< 2**24), so nearest resizing keeps them
            result[task] = restore_rows(labels[:, None], H, W, crop, fill, "nearest")[0, 0].to(dtype)
        if "panoptic" in result:
            if "semantic" not in result:
                result["semantic"] = (result["panoptic"] // LABEL_DIVISOR).to(torch.uint8)
            if "instance" not in result:
                result["instance"] = instance_ids(result["panoptic"])
        return result
