"""The segmentation head's inference pass against transformers' OneFormer modules: same outputs up to float rounding,
deformable sampling equal to grid_sample's, post-processing equal to a per-query reference, constants reused."""

import pytest
import torch
import torch.nn.functional as F
from transformers.models.oneformer.modeling_oneformer import multi_scale_deformable_attention

from uni_encoder_core.config import SegmentationConfig
from uni_encoder_core.labels import LABEL_DIVISOR, THING_CLASSES, VOID
from uni_encoder_core.models.oneformer_inference import _level_geometry, sample_values
from uni_encoder_core.models.segmentation import SegmentationHead, to_instance, to_panoptic

CHANNELS = [16, 24, 32, 48]
pytestmark = pytest.mark.usefixtures("one_thread")


def head_cfg(**overrides) -> SegmentationConfig:
    base = dict(hidden_dim=64, num_queries=12, decoder_layers=5, encoder_layers=2, encoder_feedforward_dim=64,
                num_heads=4, dim_feedforward=64, dropout=0.0, text_context_length=8, max_seq_len=8,
                text_encoder_layers=1, text_context_queries=2)
    return SegmentationConfig(**(base | overrides))


def features(batch=2, height=64, width=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, height // s, width // s, generator=g) for c, s in zip(CHANNELS, (4, 8, 16, 32))]


def test_deformable_sampling_equals_grid_sample_with_zero_padding():
    g = torch.Generator().manual_seed(1)
    shapes = [(6, 10), (3, 5), (2, 3)]
    B, heads, d, N, P = 2, 4, 8, 7, 4
    value = torch.randn(B, sum(h * w for h, w in shapes), heads, d, generator=g)
    # locations well outside [0, 1] too: zero padding, corners partly inside
    locations = torch.rand(B, N, heads, len(shapes), P, 2, generator=g) * 1.6 - 0.3
    weights = torch.rand(B, N, heads, len(shapes), P, generator=g)
    _, padded, _ = _level_geometry(shapes, B, torch.device("cpu"), torch.float32)
    got = sample_values(value, shapes, padded, locations, weights)
    expected = multi_scale_deformable_attention(value, shapes, locations, weights)
    assert got.shape == expected.shape == (B, N, heads * d)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tasks", [["panoptic"], ["panoptic", "semantic", "instance"]])
def test_inference_pass_equals_transformers_modules(tasks):
    torch.manual_seed(0)
    head = SegmentationHead(CHANNELS, head_cfg())
    with torch.no_grad():  # weights far from the init's near-zero mask logits: masked attention blocks part of each row
        for p in head.parameters():
            p.normal_(0.0, 0.2) if p.dim() > 1 else None
    feats = features()
    with torch.no_grad():
        reference = head.train()(feats, tasks)  # transformers' modules; dropout 0 makes train mode deterministic
        fast = head.eval()(feats, tasks)
    for task in tasks:
        ref, got = reference[task], fast[task]
        assert len(ref.auxiliary) == 4 and got.auxiliary == ()
        scale = ref.mask_logits.abs().max()
        assert scale > 1.0  # logits of a size where a wrong mask or attention would show
        for name in ("class_logits", "mask_logits", "contrastive_queries"):  # 1e-5 of the outputs' range
            expected = getattr(ref, name)
            torch.testing.assert_close(getattr(got, name), expected, atol=1e-5 * expected.abs().max(), rtol=0)


def test_constants_are_built_once_per_size_and_rebuilt_for_another_dtype():
    torch.manual_seed(0)
    head = SegmentationHead(CHANNELS, head_cfg()).eval()
    with torch.no_grad():
        head(features(), ["panoptic"])
        constants = head.inference_constants
        stored = {k: id(v) for k, v in constants.store.items()}
        head(features(seed=3), ["panoptic"])
        assert {k: id(v) for k, v in constants.store.items()} == stored  # reused, not rebuilt
        head(features(width=128), ["panoptic"])
        assert len(constants.store) == 2 * len(stored)  # a new size adds its own entries
        out = head.to(torch.bfloat16)([f.bfloat16() for f in features()], ["panoptic"])["panoptic"]
        assert constants.where[1] == torch.bfloat16 and len(constants.store) == len(stored)
        assert out.mask_logits.dtype == torch.bfloat16 and torch.isfinite(out.mask_logits).all()


def segments_reference(probs, masks, stuff, object_threshold, overlap_threshold):
    """The per-query definition: confident queries claim pixels by argmax of score * mask, in query order."""
    scores, labels = probs.max(-1)
    ids = torch.full(masks.shape[1:], -1, dtype=torch.int64)
    classes, seg_scores, stuff_ids = [], [], {}
    for k in range(len(labels)):
        label = int(labels[k])
        if label == probs.shape[-1] - 1 or scores[k] <= object_threshold or (not stuff and label not in THING_CLASSES):
            continue
        keep = [j for j in range(len(labels)) if labels[j] != probs.shape[-1] - 1 and scores[j] > object_threshold
                and (stuff or int(labels[j]) in THING_CLASSES)]
        owner = torch.stack([scores[j] * masks[j] for j in keep]).argmax(0)
        claimed, own = owner == keep.index(k), masks[k] >= 0.5
        region = claimed & own
        if not region.any() or claimed.sum() < overlap_threshold * own.sum():
            continue
        if label in stuff_ids:
            ids[region] = stuff_ids[label]
            continue
        if label not in THING_CLASSES:
            stuff_ids[label] = len(classes)
        ids[region] = len(classes)
        classes.append(label)
        seg_scores.append(float(scores[k] * masks[k][region].mean()))
    return ids, classes, seg_scores


def test_post_processing_equals_the_per_query_definition():
    g = torch.Generator().manual_seed(5)
    Q, C, size = 12, 19, (16, 24)
    class_logits = torch.randn(2, Q, C + 1, generator=g) * 6  # many confident queries, stuff and things
    mask_logits = torch.randn(2, Q, 8, 12, generator=g) - 4  # noisy tiles: 8 queries own one each, 4 overlap them
    for q in range(Q):
        r, c = 4 * (q % 8 // 4) + (q >= 8), 3 * (q % 4) + (q >= 8)
        mask_logits[:, q, r : r + 4, c : c + 3] += 8 + q / 4
    panoptic = to_panoptic(class_logits, mask_logits, size, 0.5, 0.5)
    instances = to_instance(class_logits, mask_logits, size, 0.5, 0.5)
    masks = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False).sigmoid()
    for b, (probs, m) in enumerate(zip(class_logits.softmax(-1), masks)):
        ids, classes, _ = segments_reference(probs, m, True, 0.5, 0.5)
        counts, table = {}, []
        for label in classes:
            counts[label] = counts.get(label, 0) + (label in THING_CLASSES)
            table.append(label * LABEL_DIVISOR + counts[label])
        expected = torch.tensor(table + [VOID * LABEL_DIVISOR])[ids]
        assert len(classes) >= 3 and torch.equal(panoptic[b], expected)
        ids, classes, scores = segments_reference(probs, m, False, 0.5, 0.5)
        assert len(classes) >= 1 and torch.equal(instances.id_map[b], ids + 1)
        assert instances.classes[b].tolist() == classes
        torch.testing.assert_close(instances.scores[b], torch.tensor(scores), atol=1e-6, rtol=1e-5)
