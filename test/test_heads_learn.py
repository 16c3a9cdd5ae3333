"""Every head learns: a short training run beats the untrained network on a drive training never saw.

Tiny model (config/model/tiny.yaml, 64x128), one thread. Training uses the synthetic world seed 0 (and, for the
steering head, seeds 0-7); every metric is the project's own evaluation, measured on the held-out world seed 1000
(another road, other cars, other colours; seed 1001 as well for steering), the trained network beside the same
initialisation untrained:

- stage-1-like run with the product's training step (:class:`TrainingObjective`; encoder, depth, pose and
  segmentation; ``L_sup`` + ``L_ssup`` with the rigid warp): mIoU and PQ (:class:`SegmentationEvaluation`, the
  evaluation command's frame pass), translation direction of both neighbours vs the world's ego-motion;
- the depth head with the world's ego-motion given (``L_ssup``, rigid warp): median-scaled abs_rel
  (:class:`DepthEvaluation`, full frame). The stage-1-like run's own depth is not asserted: with the translation
  learned alongside, its abs_rel was 0.303 / 0.807 / 0.327 (seeds 0, 1, 2; untrained 0.74), so one seed in three
  ends worse than a constant (docs/decisions.md, "Learning tests per head");
- the steering stage (:func:`fit_pooler` on a frozen encoder, eq. 5): MSE over held-out windows;
- motion mask (stage-3-like from the stage-1-like network: pose, scene flow and motion mask, ``L_ssup`` with the
  final flow): F1 vs the world's moving cars, expected to fail (see :func:`test_motion_mask_finds_the_moving_cars`).

Each margin was measured with seeds 0, 1, 2 (numbers beside the assertions). The whole file takes ~2 min.
"""

import copy
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uni_encoder_core.config import LossConfig, ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data.samples import SegmentationSample, TripletSample, collate
from uni_encoder_core.data.synthetic import (
    SyntheticSegmentationDataset,
    SyntheticSteeringDataset,
    SyntheticTripletDataset,
    WorldConfig,
)
from uni_encoder_core.eval.accumulate import DepthEvaluation, SegmentationEvaluation
from uni_encoder_core.eval.motion import MotionMaskMetric
from uni_encoder_core.eval.predict import predict_frame
from uni_encoder_core.eval.steering import mse
from uni_encoder_core.losses.self_supervised import SelfSupervisedInputs, self_supervised_loss
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.batch import TrainBatch
from uni_encoder_core.train.objective import TrainingObjective
from uni_encoder_core.train.steering_cv import SteeringTrainConfig, fit_pooler, predict_windows
from uni_encoder_core.train.steering_folds import window_ends, window_frames

TINY = Path(__file__).resolve().parents[1] / "config" / "model" / "tiny.yaml"
H, W = 64, 128
SEED = 0
TRAIN_WORLD = WorldConfig(seed=0, height=H, width=W, num_frames=130)
HELD_OUT_WORLD = WorldConfig(seed=1000, height=H, width=W, num_frames=40)
HELD_OUT = range(2, 38, 4)  # 9 target frames of the held-out drive
STEERING_TRAIN = [WorldConfig(seed=s, height=H, width=W, num_frames=112) for s in range(8)]
STEERING_HELD_OUT = [WorldConfig(seed=s, height=H, width=W, num_frames=112) for s in (1000, 1001)]
STAGE1_STEPS, STAGE1_LR = 300, 2e-3
DEPTH_LR_FACTOR = 0.1  # of STAGE1_LR for the depth decoder: at the full rate its sigmoid disparity saturates
STAGE3_STEPS, STAGE3_LR = 60, 2e-4

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread


@dataclass
class HeldOut:
    """The held-out frames: triplets (offsets -1, 0, 1) and the target frames' labels."""

    triplets: TripletSample
    labelled: list[SegmentationSample]


@dataclass
class Scores:
    """A network's metrics on the held-out frames; cosines of predicted vs true translation per neighbour."""

    abs_rel: float
    miou: float
    pq: float
    cos_previous: float
    cos_next: float
    motion_f1: float


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return load_config(TINY, ModelConfig)


@pytest.fixture(scope="module")
def training_data() -> tuple[list[TripletSample], list[SegmentationSample]]:
    """64 triplets of the training drive and the labels of their target frames."""
    triplets = SyntheticTripletDataset(TRAIN_WORLD)
    labelled = SyntheticSegmentationDataset(triplets.world)
    return [triplets[i] for i in range(0, 128, 2)], [labelled[i + 1] for i in range(0, 128, 2)]


@pytest.fixture(scope="module")
def held_out() -> HeldOut:
    triplets = SyntheticTripletDataset(HELD_OUT_WORLD)
    labelled = SyntheticSegmentationDataset(triplets.world)
    return HeldOut(collate([triplets[i - 1] for i in HELD_OUT]), [labelled[i] for i in HELD_OUT])


def evaluate(model: UniEncoder, data: HeldOut) -> Scores:
    """Eval-mode metrics of ``model`` on the held-out frames."""
    model.eval()
    depth, segmentation, motion = DepthEvaluation("full_frame"), SegmentationEvaluation(), MotionMaskMetric()
    trip = data.triplets
    for k, sample in enumerate(data.labelled):
        pred = predict_frame(model, sample.image[None], (H, W))
        depth.add(trip.depth[k, 0].numpy().astype(np.float64), pred.depth)
        segmentation.add(pred, sample.semantic.numpy(), sample.panoptic.numpy())
    frames = TrainBatch(triplets=trip).frames
    with torch.no_grad():
        out = model.forward_train(frames, motion=False)
        previous, current = model.encode(frames[-1]), model.encode(frames[0])
        _, axis_angle, translation = model.predict_pose(previous, current)
        _, mask = model.predict_motion(previous, current, axis_angle, translation)  # as the pipeline pairs frames
    motion.update(mask[:, 0], trip.motion_mask[:, 0] > 0.5)
    true = {o: trip.T_target_to_source[:, i, :3, 3] for i, o in enumerate(trip.offsets)}
    cos = {o: float(F.cosine_similarity(out.translations[o], true[o], dim=1).mean()) for o in (-1, 1)}
    seg = segmentation.compute()
    return Scores(depth.compute()["abs_rel"], seg["miou"], seg["pq"], cos[-1], cos[1], motion.compute()["f1"])


def train(model: UniEncoder, objective: TrainingObjective, steps: int, lr: float, draw, seed: int) -> None:
    """AdamW on ``objective`` (the depth decoder at ``DEPTH_LR_FACTOR`` x ``lr``); the rate holds for the first half
    and falls linearly to 0 over the second; ``draw(generator, rng)`` gives each step's batch; clip at 1."""
    params = [p for p in objective.parameters() if p.requires_grad]
    depth = {id(p) for p in model.depth.parameters()}
    optimizer = torch.optim.AdamW([{"params": [p for p in params if id(p) not in depth], "lr": lr},
                                   {"params": [p for p in params if id(p) in depth], "lr": lr * DEPTH_LR_FACTOR}])
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, 2.0 * (1.0 - k / steps)))
    generator, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    objective.train()
    for _ in range(steps):
        loss = objective(draw(generator, rng))["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
    model.eval()


@pytest.fixture(scope="module")
def untrained(cfg) -> UniEncoder:
    torch.manual_seed(SEED)
    return UniEncoder(cfg).eval()


@pytest.fixture(scope="module")
def untrained_scores(untrained, held_out) -> Scores:
    return evaluate(untrained, held_out)


@pytest.fixture(scope="module")
def stage1(untrained, training_data) -> UniEncoder:
    """The untrained network after ``STAGE1_STEPS`` stage-1-like steps of 2 triplets + 2 labelled frames (the
    synthetic stage-1 recipe's loss weights: ``sup_weight`` 0.03)."""
    triplets, labelled = training_data
    model = copy.deepcopy(untrained)
    model.set_trainable(["encoder", "depth", "pose", "segmentation"])
    objective = TrainingObjective(model, LossConfig(sup_weight=0.03), losses=("sup", "ssup"), warp="rigid")

    def draw(generator: torch.Generator, rng: random.Random) -> TrainBatch:
        t, s = torch.randint(len(triplets), (2, 2), generator=generator).tolist()
        return TrainBatch.from_samples([triplets[i] for i in t], [labelled[i] for i in s], model.cfg.segmentation, rng)

    train(model, objective, STAGE1_STEPS, STAGE1_LR, draw, SEED)
    return model


@pytest.fixture(scope="module")
def stage1_scores(stage1, held_out) -> Scores:
    return evaluate(stage1, held_out)


def test_semantic_segmentation_miou_rises(untrained_scores, stage1_scores):
    # measured (seeds 0, 1, 2): untrained 0.000 / 0.001 / 0.000, trained 0.306 / 0.472 / 0.424;
    # seeds 3, 4, 5: trained 0.463 / 0.241 / 0.168 (untrained 0.009 for seed 5)
    assert stage1_scores.miou > untrained_scores.miou + 0.1, (untrained_scores, stage1_scores)


def test_panoptic_quality_rises(untrained_scores, stage1_scores):
    """PQ (segments matched at IoU > 0.5, things and stuff) of the panoptic task."""
    # measured (seeds 0, 1, 2): untrained 0.000 each (no query confident enough to claim a segment),
    # trained 0.088 / 0.378 / 0.238; seeds 3, 4, 5: 0.303 / 0.190 / 0.094
    assert stage1_scores.pq > untrained_scores.pq + 0.05, (untrained_scores, stage1_scores)


def test_pose_translation_points_the_true_way_for_both_neighbours(untrained_scores, stage1_scores):
    # cosine of predicted vs true translation, previous / next frame; measured (seeds 0, 1, 2):
    # untrained 0.25 / 0.25, -0.30 / -0.29, 0.83 / 0.83; trained 0.999 / 0.998, 0.999 / 0.997, 0.996 / 0.997;
    # seeds 3, 4, 5: 0.933 / 0.942, 0.999 / 0.998, 0.977 / 0.979 (untrained 0.51 / 0.50 for seed 5)
    assert stage1_scores.cos_previous > 0.9 and stage1_scores.cos_next > 0.9, stage1_scores


def test_depth_abs_rel_falls_with_the_ego_motion_given(untrained, untrained_scores, training_data, held_out):
    """Encoder + depth decoder, ``L_ssup`` (rigid warp, auto-mask) with the world's ego-motion, Adam 1e-3, 100 steps
    of 4 random training triplets; the translation is scaled by 1/20 as in test_eval_parity.py's depth test (median
    scaling cannot tell it from the world's; it puts the scene inside the untrained disparity's range)."""
    triplets, _ = training_data
    model = copy.deepcopy(untrained)
    model.set_trainable(["encoder", "depth"])
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(100):
        batch = collate([triplets[i] for i in torch.randint(len(triplets), (4,), generator=generator).tolist()])
        frames = TrainBatch(triplets=batch).frames
        poses = [batch.T_target_to_source[:, batch.offsets.index(o)].clone() for o in (-1, 1)]
        for T in poses:
            T[:, :3, 3] /= 20.0
        disparities, _ = model.predict_depth(model.encode(frames[0]))
        inputs = SelfSupervisedInputs(frames[0], [frames[-1], frames[1]], batch.K, disparities, poses)
        loss, _ = self_supervised_loss(inputs, LossConfig(), model.cfg.depth.min_depth, model.cfg.depth.max_depth,
                                       generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    trained = evaluate(model, held_out).abs_rel
    # measured (seeds 0, 1, 2): untrained 0.742 / 0.740 / 0.741 (a constant depth), trained 0.210 / 0.275 / 0.273
    assert trained < 0.6 * untrained_scores.abs_rel, (untrained_scores.abs_rel, trained)


def drive_features(worlds: list[WorldConfig], model: UniEncoder) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Every frame of the drives: (coarsest encoder features ``N x C x h x w``, path curvature ``N`` in 1/m, the
    newest-frame index of every window that lies inside one drive)."""
    feats, curvature, ends, start = [], [], [], 0
    for world in worlds:
        drive = SyntheticSteeringDataset(world, window=world.num_frames)[0]
        with torch.no_grad():
            feats.append(model.encode(drive.images)[-1])
        curvature.append(drive.curvature)
        ends.append(window_ends(range(start, start + world.num_frames), model.cfg.steering.window))
        start += world.num_frames
    return torch.cat(feats), torch.cat(curvature), np.concatenate(ends)


def test_steering_mse_falls_on_held_out_drives(untrained):
    """The steering stage's pooler fit (:func:`fit_pooler`: eq. 5, AdamW 1e-3, cosine decay, 20 epochs) on the
    frozen untrained encoder, 776 windows of 8 drives; MSE (label = 100 x curvature in 1/m) over 194 windows of two
    held-out drives. With the stage-1-like encoder instead, the same fit did not generalise (held-out MSE 2.61 /
    3.01 / 3.00 against 2.87 for always-zero; training MSE 0.68 / 2.06 / 0.91)."""
    model = untrained
    recipe = SteeringTrainConfig(epochs=20, batch_size=32, lr=1e-3)
    window, scale = model.cfg.steering.window, recipe.label_scale
    train_x, train_y, train_ends = drive_features(STEERING_TRAIN, model)
    test_x, test_y, test_ends = drive_features(STEERING_HELD_OUT, model)
    head = copy.deepcopy(model.steering)  # the untrained network's own head
    target = test_y.numpy()[test_ends] * scale

    def held_out_mse() -> float:
        return mse(predict_windows(head, test_x, test_ends, 64, torch.device("cpu")), target)

    before = held_out_mse()
    fit_pooler(head, lambda ends: train_x[window_frames(ends, window)], train_y * scale, train_ends,
               [{"params": list(head.parameters()), "lr": recipe.lr}], recipe, SEED)
    after = held_out_mse()
    # measured (seeds 0, 1, 2): untrained head 2.88 / 2.90 / 2.91, trained 1.45 / 1.45 / 0.97; always-zero 2.87
    assert after < 0.7 * before, (before, after)
    assert after < 0.7 * mse(np.zeros_like(target), target)


@pytest.mark.xfail(strict=True, reason="a few dozen self-supervised stage-3 steps teach the mask that nothing moves")
def test_motion_mask_finds_the_moving_cars(stage1, untrained_scores, training_data, held_out):
    """Stage-3-like steps (pose, scene flow and motion mask trainable; ``L_ssup`` with the final flow, no
    auto-mask; AdamW 2e-4, 60 steps of 4 triplets) from the stage-1-like network.

    Expected to fail: the motion-sparsity term wins first and the mask falls to ~0 everywhere (F1 0.0 for seeds 0,
    1, 2; moving cars are 4.6 % of the held-out pixels), and where it is not quite 0 it is lower on the moving cars
    than on static scenery (mean 1.4e-9 vs 2.0e-7, seed 0; 3.5e-6 vs 5.6e-3, seed 2). The untrained mask is
    ~0.4-0.9 everywhere: F1 0.006 / 0.088 / 0.034 (0.088 = calling every pixel moving). Strict, so that a recipe
    that makes the mask learn shows up here.
    """
    triplets, _ = training_data
    model = copy.deepcopy(stage1)
    model.set_trainable(["pose", "scene_flow", "motion_mask"])
    objective = TrainingObjective(model, LossConfig(automask=False), losses=("ssup",), warp="final")

    def draw(generator: torch.Generator, rng: random.Random) -> TrainBatch:
        t = torch.randint(len(triplets), (4,), generator=generator).tolist()
        return TrainBatch.from_samples([triplets[i] for i in t], None, model.cfg.segmentation, rng)

    train(model, objective, STAGE3_STEPS, STAGE3_LR, draw, SEED + 1)
    trained = evaluate(model, held_out)
    assert trained.motion_f1 > untrained_scores.motion_f1 + 0.05, (untrained_scores, trained)
