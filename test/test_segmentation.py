"""OneFormer segmentation head, prompt tokenizer, post-processing and the L_sup set criterion."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from uni_encoder_core.config import LossConfig, SegmentationConfig
from uni_encoder_core.labels import split_panoptic
from uni_encoder_core.losses.segmentation import (
    SegmentationTarget,
    SupervisedSegmentationLoss,
    image_segments,
    sample_tasks,
    segmentation_targets,
)
from uni_encoder_core.models.segmentation import (
    SegmentationHead,
    SegmentationPrediction,
    to_instance,
    to_panoptic,
    to_semantic,
)
from uni_encoder_core.models.tokenizer import VOCABULARY, Tokenizer

CHANNELS = [16, 24, 32, 48]
ROAD, BUILDING, SKY, PERSON, CAR = 0, 2, 10, 11, 13
END = len(VOCABULARY) - 1


def tiny_cfg(**overrides) -> SegmentationConfig:
    base = dict(
        hidden_dim=64, num_queries=8, decoder_layers=3, encoder_layers=1, encoder_feedforward_dim=64,
        num_heads=4, dim_feedforward=64, dropout=0.0, text_context_length=8, max_seq_len=8,
        text_encoder_layers=1, text_context_queries=2, train_num_points=256,
    )  # fmt: skip
    base.update(overrides)
    return SegmentationConfig(**base)


def features(batch=2, height=64, width=96, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, height // s, width // s, generator=g).requires_grad_(requires_grad)
        for c, s in zip(CHANNELS, (4, 8, 16, 32))
    ]


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    return SegmentationHead(CHANNELS, tiny_cfg()).eval()


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_known_ids_and_padding():
    tok = Tokenizer(context_length=10)
    ids = tok(["the task is panoptic", "a photo with a traffic light", "A Photo with a CAR"])
    assert ids.dtype == torch.int64 and ids.shape == (3, 10)
    assert ids[0].tolist() == [1, 2, 3, 4, 9, END, 0, 0, 0, 0]
    assert ids[1].tolist() == [1, 5, 7, 8, 5, 18, 19, END, 0, 0]
    assert ids[2].tolist() == [1, 5, 7, 8, 5, VOCABULARY.index("car"), END, 0, 0, 0]
    assert tok.vocab_size == len(VOCABULARY) == END + 1
    assert int(ids.max()) == END  # the text encoder reads the feature at argmax(ids)


def test_tokenizer_rejects_unknown_words_and_overlong_text():
    tok = Tokenizer(context_length=6)
    with pytest.raises(ValueError, match="word 'lorry'"):
        tok.encode("a photo with a lorry")
    with pytest.raises(ValueError, match="word '<end>'"):
        tok.encode("a <end>")
    with pytest.raises(ValueError, match="context length 6"):
        tok.encode("a photo with a traffic light")


# --------------------------------------------------------------------------- head


def test_head_is_initialised_and_outputs_are_finite(head):
    bad = [n for n, p in head.named_parameters() if not torch.isfinite(p).all()]
    assert not bad
    # OneFormer's init reached the modules without parameters of their own (deformable attention: zero offsets)
    attention = head.pixel_decoder.encoder.layers[0].self_attn
    assert torch.count_nonzero(attention.sampling_offsets.weight) == 0
    assert torch.count_nonzero(attention.attention_weights.weight) == 0
    embeddings = (head.pixel_decoder.level_embed, head.transformer.level_embed.weight,
                  head.transformer.queries_embedder.weight)
    assert all(0.7 < float(e.std()) < 1.3 for e in embeddings)  # N(0, 1) as in the reference, not N(0, 0.02)
    with torch.no_grad():
        out = head(features(), ["panoptic"])["panoptic"]
    assert out.class_logits.shape == (2, 8, 20)
    assert out.mask_logits.shape == (2, 8, 16, 24)  # stride 4
    assert out.contrastive_queries.shape == (2, 8, 64)
    assert out.auxiliary == ()  # eval: the inference pass makes no auxiliary predictions
    with torch.no_grad():
        trained = head.train()(features(), ["panoptic"])["panoptic"]
    head.eval()
    assert len(trained.auxiliary) == 2 and trained.auxiliary[0][1].shape == (2, 8, 16, 24)
    assert all(torch.isfinite(t).all() for t in (out.class_logits, out.mask_logits, out.contrastive_queries))


def test_tasks_are_batched_and_equal_to_one_at_a_time(head):
    calls = {"pixel": 0, "decoder": 0}
    hooks = [  # layers that run once per pixel-decoder / transformer-decoder pass
        head.pixel_decoder.mask_projection.register_forward_hook(
            lambda *_: calls.__setitem__("pixel", calls["pixel"] + 1)),
        head.transformer.decoder.query_input_projection.register_forward_hook(
            lambda *_: calls.__setitem__("decoder", calls["decoder"] + 1)),
    ]
    feats = features(batch=2, seed=1)
    with torch.no_grad():
        batched = head(feats, ["panoptic", "instance", "semantic"])
        assert calls == {"pixel": 1, "decoder": 1}
        single = {task: head(feats, [task])[task] for task in ("panoptic", "instance", "semantic")}
    for h in hooks:
        h.remove()
    for task, ref in single.items():
        torch.testing.assert_close(batched[task].class_logits, ref.class_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(batched[task].mask_logits, ref.mask_logits, atol=1e-3, rtol=1e-4)
    # the task prompt conditions the decoder
    assert (batched["panoptic"].class_logits - batched["semantic"].class_logits).abs().max() > 1e-3


def test_head_rejects_bad_input(head):
    with pytest.raises(ValueError, match="unknown segmentation task 'depth'"):
        SegmentationHead(CHANNELS, tiny_cfg(tasks=["panoptic", "depth"]))
    with pytest.raises(ValueError, match="multiple of 64"):
        SegmentationHead(CHANNELS, tiny_cfg(hidden_dim=96))
    with pytest.raises(ValueError, match="4 feature maps"):
        SegmentationHead(CHANNELS[:3], tiny_cfg())
    with pytest.raises(ValueError, match="text_context_queries"):
        SegmentationHead(CHANNELS, tiny_cfg(text_context_queries=8))
    with pytest.raises(ValueError, match="'motion' is not one of"):
        head(features(), ["motion"])
    with pytest.raises(ValueError, match="4 feature maps"):
        head(features()[1:], ["semantic"])
    assert head(features(), []) == {}


# --------------------------------------------------------------------------- post-processing


def logits_for(classes_probs: list[dict[int, float]], num_classes=19) -> torch.Tensor:
    """Class logits Qx(C+1) with the given probabilities (the rest goes to "no object")."""
    probs = torch.full((len(classes_probs), num_classes + 1), 1e-9)
    for q, cp in enumerate(classes_probs):
        for c, p in cp.items():
            probs[q, c] = p
        probs[q, num_classes] = max(1e-9, 1 - sum(cp.values()))
    return probs.log()


def masks_for(regions: list[tuple[slice, slice]], height=4, width=8) -> torch.Tensor:
    m = torch.full((len(regions), height, width), -50.0)
    for q, (rows, cols) in enumerate(regions):
        m[q, rows, cols] = 50.0
    return m


ALL = (slice(None), slice(None))


def test_post_processing_known_answer():
    # image 0: road left half, two cars on the right (top/bottom), an unsure person and a no-object query
    # image 1: a confident car on the left; a building query covering everything keeps only half of its mask
    cls0 = logits_for([{ROAD: 0.99}, {CAR: 0.97}, {CAR: 0.95}, {PERSON: 0.6}, {}])
    msk0 = masks_for([(slice(None), slice(0, 4)), (slice(0, 2), slice(4, 8)), (slice(2, 4), slice(4, 8)), ALL, ALL])
    cls1 = logits_for([{CAR: 0.99}, {BUILDING: 0.85}, {}, {}, {}])
    msk1 = masks_for([(slice(None), slice(0, 4)), ALL, ALL, ALL, ALL])
    cls, msk = torch.stack([cls0, cls1]), torch.stack([msk0, msk1])
    size = (8, 16)  # masks are upsampled x2

    semantic = to_semantic(cls, msk, size)
    expected = torch.zeros(2, 8, 16, dtype=torch.int64)
    expected[0, :, 8:] = CAR
    expected[1, :, :8], expected[1, :, 8:] = CAR, BUILDING
    assert torch.equal(semantic, expected)

    panoptic = to_panoptic(cls, msk, size)
    expected = torch.zeros(2, 8, 16, dtype=torch.int64)
    expected[0, :4, 8:], expected[0, 4:, 8:] = CAR * 1000 + 1, CAR * 1000 + 2
    expected[1, :, :8], expected[1, :, 8:] = CAR * 1000 + 1, 255000  # the building fails the overlap test
    assert torch.equal(panoptic, expected)
    # with a lower overlap threshold the building keeps its half
    assert (to_panoptic(cls, msk, size, overlap_threshold=0.4)[1, :, 8:] == BUILDING * 1000).all()
    # with a lower object threshold the unsure person (0.6) claims nothing from the confident queries
    assert not (to_panoptic(cls, msk, size, object_threshold=0.5) // 1000 == PERSON).any()

    instances = to_instance(cls, msk, size)
    expected = torch.zeros(2, 8, 16, dtype=torch.int64)
    expected[0, :4, 8:], expected[0, 4:, 8:], expected[1, :, :8] = 1, 2, 1
    assert torch.equal(instances.id_map, expected)
    assert instances.classes[0].tolist() == [CAR, CAR] and instances.classes[1].tolist() == [CAR]
    torch.testing.assert_close(instances.scores[0], torch.tensor([0.97, 0.95]), atol=2e-4, rtol=0)


def test_post_processing_without_confident_queries_is_void():
    cls = logits_for([{CAR: 0.5}, {}])[None]
    msk = masks_for([ALL, ALL])[None]
    assert (to_panoptic(cls, msk, (4, 8)) == 255000).all()
    instances = to_instance(cls, msk, (4, 8))
    assert (instances.id_map == 0).all() and instances.classes[0].numel() == 0 and instances.scores[0].numel() == 0


# --------------------------------------------------------------------------- targets


def label_map():
    """8x8: road on top, two cars (instances 1, 2) bottom left, a person crowd (no instance) and a void pixel."""
    semantic = torch.full((8, 8), ROAD, dtype=torch.int64)
    instance = torch.zeros(8, 8, dtype=torch.int64)
    semantic[4:, :2], instance[4:, :2] = CAR, 1
    semantic[4:, 2:4], instance[4:, 2:4] = CAR, 2
    semantic[4:, 4:] = PERSON
    semantic[0, 0] = 255
    return semantic, instance


def test_task_conditioned_targets():
    semantic, instance = label_map()
    masks, classes = image_segments(semantic, instance, "semantic")
    assert classes.tolist() == [ROAD, PERSON, CAR]
    assert masks.sum((1, 2)).tolist() == [31, 16, 16]
    masks, classes = image_segments(semantic, instance, "instance")
    assert classes.tolist() == [CAR, CAR] and masks.sum((1, 2)).tolist() == [8, 8]
    assert masks[0, 4:, :2].all() and masks[1, 4:, 2:4].all()
    masks, classes = image_segments(semantic, instance, "panoptic")
    assert classes.tolist() == [ROAD, CAR, CAR] and masks.sum((1, 2)).tolist() == [31, 8, 8]

    cfg = tiny_cfg()  # 8 queries - 2 context = 6 text queries
    targets = segmentation_targets(semantic[None].repeat(2, 1, 1), instance[None].repeat(2, 1, 1),
                                   ["panoptic", "instance"], cfg)  # fmt: skip
    tok = Tokenizer(cfg.text_context_length)
    texts = ["a photo with a road", "a photo with a car", "a photo with a car"] + ["a panoptic photo"] * 3
    assert torch.equal(targets[0].text_ids, tok(texts))
    assert torch.equal(targets[1].text_ids, tok(["a photo with a car"] * 2 + ["an instance photo"] * 4))
    assert targets[1].masks.shape == (2, 8, 8) and targets[1].masks.dtype == torch.float32


def test_targets_reject_bad_labels_and_split_panoptic():
    semantic, instance = label_map()
    semantic[1, 1] = 40
    with pytest.raises(ValueError, match="semantic label 40"):
        image_segments(semantic, instance, "panoptic")
    with pytest.raises(ValueError, match="unknown segmentation task 'depth'"):
        image_segments(semantic, instance, "depth")
    with pytest.raises(ValueError, match="one task per image"):
        segmentation_targets(semantic[None], instance[None], ["panoptic", "semantic"], tiny_cfg())
    sem, inst = split_panoptic(torch.tensor([[13002, 0, 255000, 11000]]))
    assert sem.tolist() == [[13, 0, 255, 11]] and inst.tolist() == [[2, 0, 0, 0]]
    tasks = sample_tasks(300, ["panoptic", "instance", "semantic"], random.Random(0))
    assert set(tasks) == {"panoptic", "instance", "semantic"} and min(map(tasks.count, set(tasks))) > 70


# --------------------------------------------------------------------------- loss


def test_loss_is_finite_with_gradients_to_features_and_head_params():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    head = SegmentationHead(CHANNELS, cfg).train()
    criterion = SupervisedSegmentationLoss(LossConfig(), cfg)
    feats = features(batch=2, height=32, width=32, requires_grad=True)
    semantic, instance = label_map()
    sem = F.interpolate(semantic[None, None].float(), size=(32, 32), mode="nearest")[:, 0].long().repeat(2, 1, 1)
    inst = F.interpolate(instance[None, None].float(), size=(32, 32), mode="nearest")[:, 0].long().repeat(2, 1, 1)
    sem[1], inst[1] = ROAD, 0  # the second image has no things: an empty instance target
    tasks = ["panoptic", "instance"]
    targets = segmentation_targets(sem, inst, tasks, cfg)
    assert targets[1].classes.numel() == 0
    text_ids = torch.stack([t.text_ids for t in targets])
    with pytest.raises(ValueError, match=r"text_ids must be B x num_text x text_context_length = \(2, 6, 8\)"):
        head.forward_train(feats, tasks, text_ids[:, :5])
    with pytest.raises(ValueError, match="one task per image"):
        head.forward_train(feats, tasks[:1], text_ids)
    pred = head.forward_train(feats, tasks, text_ids)
    assert pred.text_queries.shape == (2, 8, 64)
    total, terms = criterion(pred, targets)
    assert total.shape == () and torch.isfinite(total)
    assert set(terms) == {"cls", "bce", "dice", "contrast"} and all(t > 0 for t in terms.values())
    expected = 2 * terms["cls"] + 5 * terms["bce"] + 5 * terms["dice"] + 0.5 * terms["contrast"]
    torch.testing.assert_close(total.detach(), expected)
    total.backward()
    assert all(torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0 for f in feats)
    no_grad = [n for n, p in head.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad
    assert criterion.criterion.logit_scale.grad is not None


def perfect_prediction(targets_classes, target_masks, order, num_queries=6, num_classes=19):
    """Queries ``order[i]`` predict target i exactly (class logit 10, mask logits +-10); the rest 'no object'."""
    cls = torch.full((num_queries, num_classes + 1), -10.0)
    cls[:, num_classes] = 10.0
    msk = torch.full((num_queries, *target_masks.shape[1:]), -10.0)
    for i, q in enumerate(order):
        cls[q] = -10.0
        cls[q, targets_classes[i]] = 10.0
        msk[q] = target_masks[i] * 20 - 10
    return cls, msk


def test_loss_prefers_the_target_and_matcher_finds_known_pairs():
    torch.manual_seed(0)
    semantic, instance = (t.repeat_interleave(8, 0).repeat_interleave(8, 1) for t in label_map())  # 64x64
    cfg = tiny_cfg(num_queries=6)
    (target,) = segmentation_targets(semantic[None], instance[None], ["panoptic"], cfg)
    criterion = SupervisedSegmentationLoss(LossConfig(), cfg)
    order = [4, 0, 2]  # target i is predicted by query order[i]
    cls, msk = perfect_prediction(target.classes, target.masks, order)
    good = SegmentationPrediction(cls[None], msk[None], torch.zeros(1, 6, 64))
    wrong_cls, _ = perfect_prediction(target.classes.flip(0), target.masks, order)
    _, wrong_msk = perfect_prediction(target.classes, target.masks.roll(32, dims=1), order)  # shifted half-way

    (queries, targets_idx), = criterion.criterion.matcher(msk[None], cls[None], [target.masks], [target.classes])
    assert dict(zip(targets_idx.tolist(), queries.tolist())) == {0: 4, 1: 0, 2: 2}

    def loss(c, m):
        return criterion(SegmentationPrediction(c[None], m[None], torch.zeros(1, 6, 64)), [target])

    good_total, good = loss(cls, msk)
    # uncertainty-sampled points sit on the mask boundaries, so even an exact mask keeps some BCE/dice
    assert good_total < 1.0 and good["cls"] < 1e-3 and good["contrast"] == 0  # no text queries: no contrast
    wrong_total, wrong = loss(wrong_cls, wrong_msk)
    assert wrong_total > 20 * good_total
    _, wrong = loss(wrong_cls, msk)
    assert wrong["cls"] > 10
    _, wrong = loss(cls, wrong_msk)
    assert wrong["bce"] > 5 * good["bce"] and wrong["dice"] > 5 * good["dice"]


def test_contrastive_term_matches_queries_to_their_own_texts():
    criterion = SupervisedSegmentationLoss(LossConfig(), tiny_cfg())
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(2, 6, 64, generator=g)
    empty = [SegmentationTarget(torch.zeros(0, 8, 8), torch.zeros(0, dtype=torch.int64), torch.zeros(6, 8).long())] * 2
    cls, msk = torch.zeros(2, 6, 20), torch.zeros(2, 6, 8, 8)
    _, same = criterion(SegmentationPrediction(cls, msk, queries, text_queries=queries.clone()), empty)
    _, swapped = criterion(SegmentationPrediction(cls, msk, queries, text_queries=queries.flip(0)), empty)
    # logits = cos * 1/0.07: the matched pair wins by ~14 -> ~2*exp(-14) per direction
    assert same["contrast"] < 1e-4
    cos = F.cosine_similarity(queries[0].flatten(), queries[1].flatten(), dim=0)
    assert swapped["contrast"] == pytest.approx(2 * math.log1p(math.exp((1 - cos.item()) / 0.07)), rel=1e-3)


# --------------------------------------------------------------------------- learning


def synthetic_scene(n: int, size: int, seed: int):
    """Label maps: sky band on top, road below, one car rectangle; train ids, instance 1 on the car."""
    g = torch.Generator().manual_seed(seed)
    semantic = torch.full((n, size, size), ROAD, dtype=torch.int64)
    instance = torch.zeros_like(semantic)
    for i in range(n):
        horizon = int(torch.randint(size // 4, size // 2, (1,), generator=g))
        semantic[i, :horizon] = SKY
        top = int(torch.randint(size // 2, 3 * size // 4, (1,), generator=g))
        left = int(torch.randint(0, size // 2, (1,), generator=g))
        semantic[i, top : top + size // 4, left : left + size // 3] = CAR
        instance[i, top : top + size // 4, left : left + size // 3] = 1
    return semantic, instance


def encode(semantic: torch.Tensor, projections: list[torch.Tensor]) -> list[torch.Tensor]:
    """Fixed 'encoder': pooled one-hot labels through fixed random 1x1 projections, strides 4..32."""
    onehot = F.one_hot(semantic, 19).permute(0, 3, 1, 2).float()
    return [
        torch.einsum("oc,bchw->bohw", p, F.avg_pool2d(onehot, s)) for p, s in zip(projections, (4, 8, 16, 32))
    ]


def miou(pred: torch.Tensor, target: torch.Tensor, classes=(ROAD, SKY, CAR)) -> float:
    ious = [((pred == c) & (target == c)).sum() / ((pred == c) | (target == c)).sum().clamp(min=1) for c in classes]
    return float(torch.stack(ious).mean())


def test_head_learns_a_tiny_segmentation_problem():
    """L_sup with one random task per image (as in training) on fixed label-encoding features."""
    torch.manual_seed(0)
    cfg = tiny_cfg(num_queries=8, decoder_layers=2)
    head = SegmentationHead(CHANNELS, cfg)
    criterion = SupervisedSegmentationLoss(LossConfig(), cfg)
    g = torch.Generator().manual_seed(1)
    projections = [torch.randn(c, 19, generator=g) for c in CHANNELS]
    semantic, instance = synthetic_scene(16, 64, seed=2)
    feats_all = encode(semantic, projections)
    rng = random.Random(0)
    params = [*head.parameters(), *criterion.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    losses = []
    for _ in range(250):
        idx = torch.tensor(rng.sample(range(16), 4))
        tasks = sample_tasks(4, cfg.tasks, rng)
        targets = segmentation_targets(semantic[idx], instance[idx], tasks, cfg)
        pred = head.forward_train([f[idx] for f in feats_all], tasks, torch.stack([t.text_ids for t in targets]))
        total, _ = criterion(pred, targets)
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(total.detach()))
    assert sum(losses[-10:]) < 0.3 * sum(losses[:10]), losses
    head.eval()
    test_semantic, _ = synthetic_scene(8, 64, seed=3)
    with torch.no_grad():
        out = head(encode(test_semantic, projections), ["semantic"])["semantic"]
    pred = to_semantic(out.class_logits, out.mask_logits, (64, 64))
    assert miou(pred, test_semantic) > 0.8  # one class everywhere scores below 0.25
