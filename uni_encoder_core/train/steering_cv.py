"""The steering stage (paper §III-D, §IV-D, Table IV): an attentive pooler on encoder features, tenfold cross-tested.

For each encoder variant of the recipe (our multi-task checkpoint, frozen or unfrozen; a frozen encoder from a
random initialisation or from ImageNet weights in a local file), and for each of the ten folds of the recording
(``steering_folds``), a fresh :class:`SteeringHead` (and, unfrozen, the encoder restored to its initial weights)
is trained on the windows of the nine training chunks with the weighted loss of eq. 5 and tested on the windows
of the held-out chunk. A frozen encoder's per-frame features are computed once and cached on disk
(``feature_cache``); an unfrozen encoder encodes each batch's frames, each frame once per batch.

Entry points: :func:`load_steering_cv_config` (a YAML recipe with ``kind: steering_cv``) and
:func:`run_steering_cv` (prints Table IV and writes ``steering_cv.json`` / ``steering_cv.md``).
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data.sequences import FrameSequence, SteeringDataConfig, open_sequence
from uni_encoder_core.eval.steering import mse, weighted_mse
from uni_encoder_core.inference.pipeline import preprocess
from uni_encoder_core.losses.steering import weighted_steering_loss
from uni_encoder_core.models.checkpoint import load_checkpoint, save_checkpoint
from uni_encoder_core.models.steering import SteeringHead
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.feature_cache import cached_features, encode_frames
from uni_encoder_core.train.steering_folds import Fold, cross_testing_folds, window_ends, window_frames
from uni_encoder_core.train.steering_report import FoldResult, SteeringCVResult, VariantResult


@dataclass
class SteeringVariant:
    """One row of Table IV: where the encoder's weights come from and whether it trains.

    ``init``: ``checkpoint`` (a ``UniEncoder`` checkpoint file), ``random`` (the model configuration ``model``,
    seeded) or ``imagenet`` (``model`` with the encoder's weights from the local timm state dict
    ``imagenet_weights``, loaded with ``weights_only=True``; never downloaded).
    """

    name: str = "(3) Swin-AttnPool (Encoder frozen)"
    init: Literal["checkpoint", "random", "imagenet"] = "checkpoint"
    checkpoint: str | None = None
    model: str = "config/model/swin_t.yaml"
    imagenet_weights: str | None = None
    frozen: bool = True


@dataclass
class SteeringTrainConfig:
    """Per-fold optimisation: AdamW (``lr`` for the pooler, ``encoder_lr`` for an unfrozen encoder) with a cosine
    decay to zero over ``epochs`` passes of the training windows (every ``train_stride``-th window).

    The label is ``label_scale`` x curvature (1/m); ``steering_lambda`` is eq. 5's lambda on that label.
    ``batching``: ``shuffled`` draws each batch's windows at random; ``consecutive`` makes a batch of
    ``batch_size`` neighbouring windows (batches in random order), so an unfrozen encoder encodes about
    ``batch_size + window`` frames per step instead of up to ``batch_size * window``.
    """

    folds: int = 10
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-4
    encoder_lr: float = 1e-5
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    train_stride: int = 1
    label_scale: float = 100.0
    steering_lambda: float = 0.1
    seed: int = 0
    batching: Literal["shuffled", "consecutive"] = "shuffled"


@dataclass
class SteeringCVConfig:
    """A steering cross-testing recipe (results in ``out_dir`` unless the command names another).

    ``cache_dir`` empty: ``<out>/feature_cache``; ``encode_batch``: frames
    per encoder call when caching or evaluating; ``save_models``: also fit each variant's pooler on every window
    and write the model with it as ``<out>/models/<slug of the variant's name>.pt`` (head output in 1/m)."""

    kind: Literal["steering_cv"] = "steering_cv"
    out_dir: str = "runs/steering_cv"
    data: SteeringDataConfig = field(default_factory=SteeringDataConfig)
    variants: list[SteeringVariant] = field(default_factory=lambda: [SteeringVariant()])
    train: SteeringTrainConfig = field(default_factory=SteeringTrainConfig)
    cache_dir: str = ""
    cache_dtype: Literal["float32", "float16"] = "float32"
    encode_batch: int = 16
    device: str = "cpu"
    save_models: bool = True


def load_steering_cv_config(path: str | os.PathLike) -> SteeringCVConfig:
    """Read a steering recipe; raises ``ConfigError`` (unknown keys, wrong types) or ``ValueError`` (bad values)."""
    recipe = load_config(path, SteeringCVConfig)
    t = recipe.train
    if t.folds < 2 or t.epochs < 1 or t.batch_size < 1 or t.train_stride < 1 or recipe.encode_batch < 1:
        raise ValueError(f"{path}: folds >= 2, epochs, batch_size, train_stride and encode_batch >= 1 needed")
    if not (t.label_scale > 0 and t.lr > 0):
        raise ValueError(f"{path}: label_scale and lr must be positive")
    names = [slug(v.name) for v in recipe.variants]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{path}: variants need distinct names, got {[v.name for v in recipe.variants]}")
    return recipe


def slug(name: str) -> str:
    """A file-name form of a variant's name: lower-case letters and digits joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "variant"


def build_variant_model(variant: SteeringVariant, seed: int) -> UniEncoder:
    """The model whose encoder the variant uses (in eval mode, on the CPU); raises ``ValueError`` on a bad variant."""
    if variant.init == "checkpoint":
        if not variant.checkpoint:
            raise ValueError(f"steering variant '{variant.name}': init 'checkpoint' needs a checkpoint path")
        model = load_checkpoint(variant.checkpoint)
        if not isinstance(model, UniEncoder):
            raise ValueError(f"{variant.checkpoint}: a {type(model).__name__} checkpoint; the steering stage needs "
                             f"a UniEncoder")
        return model
    cfg = load_config(variant.model, ModelConfig)
    cfg.encoder.pretrained = None
    if variant.init == "imagenet":
        if not variant.imagenet_weights:
            raise ValueError(f"steering variant '{variant.name}': init 'imagenet' needs imagenet_weights (a file)")
        cfg.encoder.pretrained = variant.imagenet_weights
    torch.manual_seed(seed)
    return UniEncoder(cfg).eval()


def _encode_coarsest(model: UniEncoder) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda images: model.encode(images)[-1]


def fit_pooler(head: SteeringHead, windows: Callable[[np.ndarray], torch.Tensor], labels: torch.Tensor,
               ends: np.ndarray, groups: list[dict], cfg: SteeringTrainConfig, seed: int,
               bar: tqdm | None = None) -> None:
    """Train on the windows ending at ``ends`` with eq. 5 (AdamW, cosine decay, gradient clipping).

    ``windows(ends)`` gives ``BxTxCxhxw`` features; ``labels`` (N, on the features' device) the scaled curvature
    per frame; ``groups`` are the optimizer's parameter groups. Raises ``FloatingPointError`` on a non-finite loss.
    """
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(ends) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    params = [p for g in groups for p in g["params"]]
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(cfg.epochs):
        if cfg.batching == "consecutive":
            runs = torch.arange(len(ends)).split(cfg.batch_size)
            batches = [runs[i] for i in torch.randperm(len(runs), generator=generator)]
        else:
            batches = torch.randperm(len(ends), generator=generator).split(cfg.batch_size)
        for batch in batches:
            batch_ends = ends[batch.numpy()]
            loss, _ = weighted_steering_loss(head(windows(batch_ends)), labels[batch_ends], cfg.steering_lambda)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite steering loss {float(loss)} (lr too high?)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            schedule.step()
            if bar is not None:
                bar.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
    head.eval()


@torch.no_grad()
def predict_windows(head: SteeringHead, features: torch.Tensor, ends: np.ndarray, batch: int,
                    device: torch.device) -> np.ndarray:
    """Predictions (N_windows,) for the windows ending at ``ends`` over per-frame ``features`` (NxCxhxw)."""
    head.eval()
    out = [head(features[window_frames(part, head.window)].to(device, torch.float32)).cpu()
           for part in np.array_split(ends, max(1, -(-len(ends) // batch)))]
    return torch.cat(out).numpy()


def fold_errors(fold: Fold, train_pred: np.ndarray, test_pred: np.ndarray, labels: np.ndarray,
                lam: float) -> FoldResult:
    """Plain and weighted MSE of both parts of a fold, and the always-zero predictor's MSE."""
    y_train, y_test = labels[fold.train_ends], labels[fold.test_ends]
    return FoldResult(
        fold=fold.index, test_frames=(fold.test.start, fold.test.stop), train_windows=len(fold.train_ends),
        test_windows=len(fold.test_ends), train_mse=mse(train_pred, y_train),
        train_weighted_mse=weighted_mse(train_pred, y_train, lam), test_mse=mse(test_pred, y_test),
        test_weighted_mse=weighted_mse(test_pred, y_test, lam), zero_train_mse=mse(np.zeros_like(y_train), y_train),
        zero_test_mse=mse(np.zeros_like(y_test), y_test),
    )


class _FrameWindows:
    """Windows for an unfrozen encoder: each batch encodes its distinct frames once, with gradients."""

    def __init__(self, model: UniEncoder, frames: torch.Tensor, device: torch.device):
        self.model, self.frames, self.device = model, frames, device  # frames: N x 3 x H x W uint8

    def __call__(self, ends: np.ndarray) -> torch.Tensor:
        idx = window_frames(ends, self.model.cfg.steering.window)
        unique, inverse = torch.unique(idx, return_inverse=True)
        images = self.frames[unique].to(self.device, torch.float32) / 255.0
        return self.model.encode(images)[-1][inverse]

    def all_features(self, batch: int) -> torch.Tensor:
        return encode_frames(_encode_coarsest(self.model), lambda i: self.frames[torch.from_numpy(i)].float() / 255,
                             len(self.frames), batch, self.device, torch.float32)


def run_variant(variant: SteeringVariant, recipe: SteeringCVConfig, sequence: FrameSequence, cache_dir: Path,
                models_dir: Path | None, device: torch.device, progress: bool = True) -> VariantResult:
    """Cross-test one encoder variant over all folds (and fit the saved model when ``models_dir`` is set)."""
    cfg = recipe.train
    model = build_variant_model(variant, cfg.seed).to(device).eval()
    window, size, crop = model.cfg.steering.window, (model.cfg.height, model.cfg.width), recipe.data.crop_bottom
    folds = cross_testing_folds(len(sequence), window, cfg.folds, cfg.train_stride)
    scaled = sequence.curvature * cfg.label_scale
    labels = torch.from_numpy(scaled).float().to(device)
    cache_hit = None
    if variant.frozen:
        model.requires_grad_(False)
        dtype = getattr(torch, recipe.cache_dtype)
        features, cache_hit = cached_features(model.encoder, _encode_coarsest(model), sequence, cache_dir, size,
                                              crop, recipe.encode_batch, device, dtype)
        windows = lambda ends: features[window_frames(ends, window)].to(device, torch.float32)  # noqa: E731
    else:
        frames = torch.stack([torch.from_numpy(preprocess(sequence.image(i), crop, size)[0]).permute(2, 0, 1)
                              for i in range(len(sequence))])
        windows = _FrameWindows(model, frames, device)
        initial = copy.deepcopy(model.encoder.state_dict())

    def fit(ends: np.ndarray, seed: int, bar: tqdm | None = None) -> tuple[SteeringHead, torch.Tensor]:
        torch.manual_seed(seed)
        head = SteeringHead(model.encoder.channels[-1], model.cfg.steering).to(device)
        groups = [{"params": list(head.parameters()), "lr": cfg.lr}]
        if not variant.frozen:
            model.encoder.load_state_dict(initial)
            model.encoder.train()
            groups.append({"params": list(model.encoder.parameters()), "lr": cfg.encoder_lr})
        fit_pooler(head, windows, labels, ends, groups, cfg, seed, bar)
        model.encoder.eval()
        return head, features if variant.frozen else windows.all_features(recipe.encode_batch)

    results = []
    with tqdm(folds, desc=variant.name, disable=not progress, leave=False) as bar:
        for fold in bar:
            head, feats = fit(fold.train_ends, cfg.seed * 1000 + fold.index + 1, bar)
            train_pred, test_pred = (predict_windows(head, feats, ends, recipe.encode_batch, device)
                                     for ends in (fold.train_ends, fold.test_ends))
            results.append(fold_errors(fold, train_pred, test_pred, scaled, cfg.steering_lambda))
    model_path = None
    if models_dir is not None:
        head, _ = fit(window_ends(range(len(sequence)), window, cfg.train_stride), cfg.seed * 1000)
        with torch.no_grad():  # the saved head outputs curvature in 1/m
            head.curvature.weight.div_(cfg.label_scale)
            head.curvature.bias.div_(cfg.label_scale)
        model.steering.load_state_dict(head.state_dict())
        model_path = str(models_dir / f"{slug(variant.name)}.pt")
        save_checkpoint(model.cpu(), model_path, steering_variant=variant.name, steering_data=sequence.identity)
    return VariantResult(variant.name, variant.init, variant.frozen, window, results, cache_hit, model_path)


def run_steering_cv(recipe: SteeringCVConfig, out_dir: str | os.PathLike, device: str | None = None,
                    progress: bool = True) -> SteeringCVResult:
    """Run every variant of ``recipe`` on the same folds; print Table IV and write the JSON and Markdown reports.

    ``device`` overrides the recipe's. Returns the result (``steering_cv.json`` / ``steering_cv.md`` are in
    ``out_dir``; the fitted models in ``out_dir/models`` when ``save_models``).
    """
    out_dir = Path(out_dir)
    dev = torch.device(device or recipe.device)
    sequence = open_sequence(recipe.data)
    cache_dir = Path(recipe.cache_dir) if recipe.cache_dir else out_dir / "feature_cache"
    models_dir = out_dir / "models" if recipe.save_models else None
    if models_dir is not None:
        models_dir.mkdir(parents=True, exist_ok=True)
    result = SteeringCVResult(sequence.identity, len(sequence), recipe.train.label_scale, recipe.train.steering_lambda)
    for variant in recipe.variants:
        result.variants.append(run_variant(variant, recipe, sequence, cache_dir, models_dir, dev, progress))
    result.write(out_dir)
    print(result.table())
    return result
