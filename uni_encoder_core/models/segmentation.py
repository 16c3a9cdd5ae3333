"""OneFormer segmentation head on the shared encoder's features, and its post-processing.

The head wires transformers' OneFormer modules to our own encoder: the pixel decoder (multi-scale
deformable attention over strides 8..32 plus an FPN level at stride 4) consumes the 4 feature maps
directly, the task encoder maps the tokenized task prompt to a task token, and the transformer
module decodes ``num_queries`` masks and classes conditioned on it. At inference the pixel decoder
runs once and the transformer decoder runs once for all requested tasks (stacked along the batch).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import OneFormerConfig
from transformers.models.oneformer.modeling_oneformer import (
    OneFormerPixelDecoder,
    OneFormerPixelDecoderEncoderLayer,
    OneFormerPreTrainedModel,
    OneFormerTaskModel,
    OneFormerTextMapper,
    OneFormerTransformerModule,
)

from uni_encoder_core.config import SegmentationConfig
from uni_encoder_core.labels import LABEL_DIVISOR, THING_CLASSES, VOID
from uni_encoder_core.models.oneformer_inference import Constants, pixel_decode, transformer_decode
from uni_encoder_core.models.tokenizer import TASKS, VOCABULARY, Tokenizer, task_prompt


@dataclass
class SegmentationPrediction:
    """Raw head outputs for a batch of B images (Q queries, C classes, masks at stride 4).

    ``class_logits`` BxQx(C+1) (last = no object), ``mask_logits`` BxQx(H/4)x(W/4),
    ``contrastive_queries`` BxQxD, ``auxiliary`` (class_logits, mask_logits) of the earlier decoder
    layers, ``text_queries`` BxQxD (training only, else None).
    """

    class_logits: Tensor
    mask_logits: Tensor
    contrastive_queries: Tensor
    auxiliary: tuple[tuple[Tensor, Tensor], ...] = ()
    text_queries: Tensor | None = None


@dataclass
class InstancePrediction:
    """Instances of B images: ``id_map`` BxHxW int64 (0 = none, k = instance k), per image ``classes``/``scores``."""

    id_map: Tensor
    classes: list[Tensor]
    scores: list[Tensor]


def oneformer_config(cfg: SegmentationConfig, vocab_size: int) -> OneFormerConfig:
    """transformers' ``OneFormerConfig`` for our ``SegmentationConfig`` (no backbone: we bring the features)."""
    return OneFormerConfig(
        num_labels=cfg.num_classes, num_queries=cfg.num_queries, hidden_dim=cfg.hidden_dim, conv_dim=cfg.hidden_dim,
        mask_dim=cfg.hidden_dim, decoder_layers=cfg.decoder_layers, encoder_layers=cfg.encoder_layers,
        encoder_feedforward_dim=cfg.encoder_feedforward_dim, query_dec_layers=cfg.query_decoder_layers,
        num_attention_heads=cfg.num_heads, dim_feedforward=cfg.dim_feedforward, dropout=cfg.dropout,
        task_seq_len=cfg.max_seq_len, text_encoder_context_length=cfg.text_context_length,
        text_encoder_width=cfg.hidden_dim, text_encoder_num_layers=cfg.text_encoder_layers,
        text_encoder_vocab_size=vocab_size, text_encoder_n_ctx=cfg.text_context_queries,
        use_auxiliary_loss=True, strides=[4, 8, 16, 32], common_stride=4,
    )


def _without_dropout(config: OneFormerConfig) -> OneFormerConfig:
    """A copy of ``config`` with ``dropout = 0`` (for the transformer module, see ``SegmentationHead``)."""
    config = copy.deepcopy(config)
    config.dropout = 0.0
    return config


def _dropout_follows_mode(layer: nn.Module, args: tuple) -> None:
    """Forward pre-hook: a pixel-decoder encoder layer drops out only in train mode.

    transformers switches that layer's dropout with its ``is_training`` attribute (fixed by the config)
    instead of ``self.training``, so without this hook it would stay on (or off) regardless of
    ``train()``/``eval()``.
    """
    layer.is_training = layer.training


class SegmentationHead(OneFormerPreTrainedModel):
    """OneFormer head: ``head(features, tasks) -> {task: SegmentationPrediction}``.

    ``features``: 4 NCHW maps at strides 4, 8, 16, 32 with ``in_channels`` channels. Built through
    ``OneFormerPreTrainedModel.post_init``, which runs OneFormer's initialisation on every module; the
    query and level embeddings are then drawn from N(0, 1) as in the reference OneFormer (not
    transformers' N(0, 0.02) and zeros): the object queries all start from the same task token, and
    their embeddings are what tells them apart. ``cfg.dropout`` acts in the pixel decoder and the text
    mapper, in train mode only; the transformer module runs without dropout, so that the object queries
    cannot learn to tell themselves apart by dropout noise that ``eval()`` removes (docs/decisions.md).
    """

    def __init__(self, in_channels: list[int], cfg: SegmentationConfig):
        if len(in_channels) != 4:
            raise ValueError(f"SegmentationHead needs 4 feature maps (strides 4..32), got in_channels={in_channels}")
        if cfg.hidden_dim % 64:
            raise ValueError(f"segmentation hidden_dim must be a multiple of 64, got {cfg.hidden_dim}")
        if not 0 <= cfg.text_context_queries < cfg.num_queries - 1:
            raise ValueError(
                f"text_context_queries ({cfg.text_context_queries}) must be in [0, num_queries - 1), "
                f"num_queries = {cfg.num_queries}"
            )
        unknown = sorted(set(cfg.tasks) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown segmentation task '{unknown[0]}' (known: {', '.join(TASKS)})")
        super().__init__(oneformer_config(cfg, len(VOCABULARY)))
        self.cfg = cfg
        self.pixel_decoder = OneFormerPixelDecoder(self.config, feature_channels=list(in_channels))
        self.transformer = OneFormerTransformerModule(cfg.hidden_dim, _without_dropout(self.config))
        self.task_encoder = OneFormerTaskModel(self.config)
        self.text_mapper = OneFormerTextMapper(self.config)
        task_ids = Tokenizer(cfg.max_seq_len)([task_prompt(t) for t in TASKS]).float()
        self.register_buffer("task_ids", task_ids, persistent=False)  # 3 x max_seq_len, in TASKS order
        self.post_init()
        with torch.no_grad():
            nn.init.normal_(self.transformer.queries_embedder.weight)
            nn.init.normal_(self.transformer.level_embed.weight)
            nn.init.normal_(self.pixel_decoder.level_embed)
        for layer in self.pixel_decoder.modules():
            if isinstance(layer, OneFormerPixelDecoderEncoderLayer):
                layer.register_forward_pre_hook(_dropout_follows_mode)

    @classmethod
    def is_custom_code(cls) -> bool:
        """False: every module is transformers' own, so ``post_init`` runs OneFormer's ``_init_weights`` on all.

        transformers treats a subclass defined outside its package as custom code and then skips every
        module without parameters of its own (the deformable attention, the decoder layers, the query
        transformer): their OneFormer initialisation (sampling-offset grid, Xavier weights) never ran.
        """
        return False

    def _task_tokens(self, tasks: list[str]) -> Tensor:
        """Task tokens of a list of task names: len(tasks) x D."""
        for task in tasks:
            if task not in self.cfg.tasks:
                raise ValueError(f"segmentation task '{task}' is not one of this head's tasks {self.cfg.tasks}")
        # slices, not an index list: no host-to-device copy (the pass stays capturable in a CUDA graph)
        return self.task_encoder(torch.cat([self.task_ids[TASKS.index(t)][None] for t in tasks]))

    def _decode(self, multi_scale: list[Tensor], mask_features: Tensor, task_tokens: Tensor) -> SegmentationPrediction:
        out = self.transformer(multi_scale, mask_features, task_tokens)
        aux = tuple((a["class_queries_logits"], a["masks_queries_logits"]) for a in out.auxiliary_predictions or ())
        return SegmentationPrediction(out.prediction_class, out.prediction_masks, out.contrastive_logits, aux)

    def forward(self, features: list[Tensor], tasks: list[str]) -> dict[str, SegmentationPrediction]:
        """Predict every task in ``tasks`` for all B images: pixel decoder once, one batched decoder pass.

        In eval mode this is the inference pass of ``models.oneformer_inference`` (the same outputs up to float
        rounding, no auxiliary predictions); in train mode transformers' modules run as they are.
        """
        if len(features) != 4:
            raise ValueError(f"SegmentationHead expects 4 feature maps (strides 4..32), got {len(features)}")
        if not tasks:
            return {}
        n, batch = len(tasks), features[0].shape[0]
        tokens = self._task_tokens(list(tasks)).repeat_interleave(batch, dim=0)  # task-major: (n*B) x D
        if self.training:
            pixels = self.pixel_decoder(list(features))
            multi_scale, mask_features = pixels.multi_scale_features, pixels.mask_features
        else:
            constants = self.__dict__.setdefault("inference_constants", Constants())
            multi_scale, mask_features = pixel_decode(self.pixel_decoder, list(features), constants)
        if n > 1:
            multi_scale = [f.repeat(n, 1, 1, 1) for f in multi_scale]
            mask_features = mask_features.repeat(n, 1, 1, 1)
        if self.training:
            pred = self._decode(multi_scale, mask_features, tokens)
        else:
            pred = SegmentationPrediction(*transformer_decode(self.transformer, multi_scale, mask_features, tokens,
                                                              constants))

        def part(x: Tensor, i: int) -> Tensor:
            return x[i * batch : (i + 1) * batch]

        return {
            task: SegmentationPrediction(
                part(pred.class_logits, i), part(pred.mask_logits, i), part(pred.contrastive_queries, i),
                tuple((part(c, i), part(m, i)) for c, m in pred.auxiliary),
            )
            for i, task in enumerate(tasks)
        }

    def forward_train(self, features: list[Tensor], tasks: list[str], text_ids: Tensor) -> SegmentationPrediction:
        """Training pass with one task per image (``len(tasks) == B``) and its text queries.

        ``text_ids``: B x num_text x text_context_length token ids (see ``losses.segmentation``).
        """
        if len(tasks) != features[0].shape[0]:
            raise ValueError(f"forward_train needs one task per image: {len(tasks)} tasks for {features[0].shape[0]}")
        expected = (features[0].shape[0], self.cfg.num_text_queries, self.cfg.text_context_length)
        if tuple(text_ids.shape) != expected:
            got = tuple(text_ids.shape)
            raise ValueError(f"text_ids must be B x num_text x text_context_length = {expected}, got {got}")
        pixels = self.pixel_decoder(list(features))
        pred = self._decode(pixels.multi_scale_features, pixels.mask_features, self._task_tokens(list(tasks)))
        pred.text_queries = self.text_mapper(text_ids)
        return pred


def _mask_probs(mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(mask_logits, size=tuple(size), mode="bilinear", align_corners=False).sigmoid()


def to_semantic(class_logits: Tensor, mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Semantic map BxHxW (int64 train ids): argmax_c sum_q softmax(class_q)[c] * sigmoid(mask_q)."""
    probs = class_logits.softmax(-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probs, _mask_probs(mask_logits, size)).argmax(1)


def _segments(probs: Tensor, mask_logits: Tensor, size: tuple[int, int], stuff: bool, object_threshold: float,
              overlap_threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """Non-overlapping segments of one image: (ids HxW, -1 = none; classes K; scores K).

    probs Qx(C+1) class probabilities, mask_logits Qxhxw (resized to ``size`` HxW for the queries kept).
    Queries with a confident class (> ``object_threshold``) claim pixels by argmax of prob * mask probability; a
    segment survives when it keeps at least ``overlap_threshold`` of its own mask (probability >= 0.5); stuff
    segments of one class are merged. All queries are decided at once: the host reads the per-query flags once.
    """
    scores, labels = probs.max(-1)
    keep = (labels != probs.shape[-1] - 1) & (scores > object_threshold)
    if not stuff:
        keep &= torch.isin(labels, torch.tensor(THING_CLASSES, device=labels.device))
    scores, labels = scores[keep], labels[keep]
    ids = torch.full(tuple(size), -1, dtype=torch.int64, device=probs.device)
    if not len(labels):
        return ids, labels, probs.new_zeros(0)
    masks = _mask_probs(mask_logits[keep][None], size)[0]
    owner = (scores[:, None, None] * masks).argmax(0)
    claimed = owner[None] == torch.arange(len(labels), device=owner.device)[:, None, None]
    own = masks >= 0.5
    region = claimed & own
    area = region.sum((1, 2))
    survives = (area > 0) & (claimed.sum((1, 2)) >= overlap_threshold * own.sum((1, 2)))
    mean_prob = (masks * region).sum((1, 2)) / area.clamp(min=1)
    classes: list[int] = []
    table = [-1] * len(labels)  # query -> segment id (-1: dropped)
    stuff_ids: dict[int, int] = {}
    seg_scores = []
    for k, (label, alive) in enumerate(zip(labels.tolist(), survives.tolist())):
        if not alive:
            continue
        if label in stuff_ids:
            table[k] = stuff_ids[label]
            continue
        if label not in THING_CLASSES:
            stuff_ids[label] = len(classes)
        table[k] = len(classes)
        classes.append(label)
        seg_scores.append(k)
    segment = torch.tensor(table, dtype=torch.int64, device=probs.device)[owner]
    ids = torch.where(own.gather(0, owner[None])[0], segment, ids)
    picked = torch.tensor(seg_scores, dtype=torch.int64, device=probs.device)
    return ids, torch.tensor(classes, dtype=torch.int64, device=probs.device), (scores * mean_prob)[picked]


def to_panoptic(
    class_logits: Tensor, mask_logits: Tensor, size: tuple[int, int], object_threshold: float = 0.8,
    overlap_threshold: float = 0.8,
) -> Tensor:
    """Panoptic map BxHxW int64: category*LABEL_DIVISOR + instance (stuff: instance 0; things: 1, 2, ... per class).

    Unclaimed pixels are void: ``VOID * LABEL_DIVISOR``.
    """
    out = []
    for probs, logits in zip(class_logits.softmax(-1), mask_logits):
        ids, classes, _ = _segments(probs, logits, size, True, object_threshold, overlap_threshold)
        table: list[int] = []  # segment k -> panoptic id; the last entry (ids == -1) is void
        counts: dict[int, int] = {}
        for label in classes.tolist():
            counts[label] = counts.get(label, 0) + (label in THING_CLASSES)
            table.append(label * LABEL_DIVISOR + counts[label])
        table.append(VOID * LABEL_DIVISOR)
        out.append(torch.tensor(table, dtype=torch.int64, device=ids.device)[ids])
    return torch.stack(out)


def to_instance(
    class_logits: Tensor, mask_logits: Tensor, size: tuple[int, int], object_threshold: float = 0.8,
    overlap_threshold: float = 0.8,
) -> InstancePrediction:
    """Thing instances only (stuff queries are dropped before pixels are assigned); scores for AP."""
    maps, classes, scores = [], [], []
    for probs, logits in zip(class_logits.softmax(-1), mask_logits):
        ids, cls, sc = _segments(probs, logits, size, False, object_threshold, overlap_threshold)
        maps.append(ids + 1)
        classes.append(cls)
        scores.append(sc)
    return InstancePrediction(torch.stack(maps), classes, scores)
