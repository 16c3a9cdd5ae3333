"""The training step (``TrainingObjective``): values of the named terms and ``L_total`` (eqs. 1-4), loss switches
remove their terms and their gradients, distillation against an independent eq. 3, determinism, batch errors."""

import dataclasses
import random
from pathlib import Path

import pytest
import torch

from uni_encoder_core.config import LossConfig, ModelConfig, StageConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data.synthetic import SyntheticSegmentationDataset, WorldConfig
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.batch import TrainBatch, synthetic_batch
from uni_encoder_core.train.objective import TrainingObjective, stage_warp

TINY = Path(__file__).resolve().parents[1] / "config" / "model" / "tiny.yaml"
PARTS = ("encoder", "depth", "pose", "scene_flow", "motion_mask", "segmentation", "steering")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return load_config(TINY, ModelConfig)


@pytest.fixture(scope="module")
def batch(cfg) -> TrainBatch:
    """Two triplets and two labelled frames of the synthetic world at 64x128."""
    return synthetic_batch(cfg, 2, seed=0)


def triplets_only(batch: TrainBatch) -> TrainBatch:
    return dataclasses.replace(batch, labelled=None, tasks=None, targets=None)


def labelled_only(batch: TrainBatch) -> TrainBatch:
    return dataclasses.replace(batch, triplets=None)


def model(cfg: ModelConfig, seed: int = 0) -> UniEncoder:
    torch.manual_seed(seed)
    return UniEncoder(cfg).train()


def trained_parts(net: UniEncoder) -> set[str]:
    """Parts with a non-zero gradient on some parameter."""
    return {name for name in PARTS if any(p.grad is not None and p.grad.abs().sum() > 0
                                          for p in getattr(net, name).parameters())}


def test_sup_only_total_is_the_weighted_sum_of_its_terms_and_trains_encoder_and_segmentation(cfg, batch):
    net = model(cfg)
    objective = TrainingObjective(net, LossConfig(), losses=("sup",))
    terms = objective(labelled_only(batch))
    assert set(terms) == {"total", "sup", "sup/cls", "sup/bce", "sup/dice", "sup/contrast"}
    assert all(terms[k] > 0 for k in ("sup/cls", "sup/bce", "sup/dice", "sup/contrast"))
    expected = 2 * terms["sup/cls"] + 5 * terms["sup/bce"] + 5 * terms["sup/dice"] + 0.5 * terms["sup/contrast"]
    torch.testing.assert_close(terms["total"].detach(), expected)
    torch.testing.assert_close(terms["sup"], expected)
    assert terms["total"].requires_grad and not terms["sup/cls"].requires_grad
    terms["total"].backward()
    assert trained_parts(net) == {"encoder", "segmentation"}
    # the contrastive logit scale is a parameter of the objective, seen by an optimiser over its parameters
    scale = objective.sup_loss.criterion.logit_scale
    assert scale.grad is not None and any(p is scale for p in objective.parameters())


def test_part_weights_of_eq4_and_switching_a_loss_off_removes_its_terms_and_gradient(cfg, batch):
    net = model(cfg)
    both = TrainingObjective(net, LossConfig(sup_weight=2.0, ssup_weight=3.0), losses=("sup", "ssup"), warp="rigid")
    terms = both(batch)
    assert {"sup", "ssup", "ssup/recon", "ssup/smooth_disp", "sup/dice"} <= set(terms)
    assert not any(k.startswith("distil") for k in terms)
    torch.testing.assert_close(terms["total"].detach(), 2.0 * terms["sup"] + 3.0 * terms["ssup"])
    terms["total"].backward()
    # rigid warp: no flow or mask predicted into a loss
    assert trained_parts(net) == {"encoder", "depth", "pose", "segmentation"}

    net = model(cfg)
    ssup = TrainingObjective(net, LossConfig(), losses=("ssup",), warp="final")
    terms = ssup(triplets_only(batch))
    assert not any(k.startswith("sup") for k in terms) and ssup.sup_loss is None
    assert {"ssup/consistency", "ssup/sparsity", "ssup/ground", "ssup/smooth_flow", "ssup/smooth_mask"} <= set(terms)
    torch.testing.assert_close(terms["total"].detach(), terms["ssup"])
    terms["total"].backward()
    assert trained_parts(net) == {"encoder", "depth", "pose", "scene_flow", "motion_mask"}

    net = model(cfg)
    complete = TrainingObjective(net, LossConfig(), losses=("ssup",), warp="complete")
    terms = complete(triplets_only(batch))
    assert "ssup/smooth_flow" in terms and "ssup/smooth_mask" not in terms and "ssup/consistency" not in terms
    terms["total"].backward()
    assert trained_parts(net) == {"encoder", "depth", "scene_flow"}  # F_C alone warps: the pose is not used


def test_distillation_term_is_eq3_against_the_frozen_teacher(cfg, batch):
    net = model(cfg)
    torch.manual_seed(1)
    teacher = Teacher(cfg)
    objective = TrainingObjective(net, LossConfig(), losses=("distil",), teacher=teacher).train()
    assert objective.model.training and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    data = triplets_only(batch)
    torch.manual_seed(2)  # the same stochastic-depth draws in the encoder (train mode) for both student passes
    terms = objective(data)
    assert set(terms) == {"total", "distil", "distil/flow", "distil/mask"}
    with torch.no_grad():
        frames = {-1: data.triplets.images[:, 0], 0: data.triplets.images[:, 1], 1: data.triplets.images[:, 2]}
        torch.manual_seed(2)
        student, target = net.forward_train(frames), teacher.forward_train(frames)
    flow = sum((target.complete_flow[o] - student.complete_flow[o]).abs().mean() for o in (-1, 1)) / 2
    mask = sum((target.motion_mask[o] - student.motion_mask[o]).abs().mean() for o in (-1, 1)) / 2
    assert flow > 0 and mask > 0.01
    torch.testing.assert_close(terms["distil/flow"], flow)
    torch.testing.assert_close(terms["distil/mask"], mask)
    torch.testing.assert_close(terms["total"].detach(), 0.1 * flow + 1e-3 * mask)
    terms["total"].backward()
    assert trained_parts(net) == {"encoder", "scene_flow", "motion_mask"}
    assert all(p.grad is None for p in teacher.parameters())


def test_equal_seeds_give_equal_terms_and_the_batch_builder_is_seeded(cfg, batch):
    runs = []
    for _ in range(2):
        objective = TrainingObjective(model(cfg), LossConfig(), losses=("sup", "ssup"))
        runs.append({k: float(v.detach()) for k, v in objective(batch).items()})
    assert runs[0] == runs[1]
    labelled = SyntheticSegmentationDataset(WorldConfig(seed=0, height=cfg.height, width=cfg.width, num_frames=4))
    samples = [labelled[i] for i in range(4)]
    a, b = (TrainBatch.from_samples(None, samples, cfg.segmentation, random.Random(7)) for _ in range(2))
    assert a.tasks == b.tasks and a.seed == b.seed and a.triplets is None
    assert all(torch.equal(x.masks, y.masks) and torch.equal(x.text_ids, y.text_ids)
               for x, y in zip(a.targets, b.targets))
    assert len({tuple(TrainBatch.from_samples(None, samples, cfg.segmentation, random.Random(s)).tasks)
                for s in range(8)}) > 1  # the tasks are drawn, not fixed


def test_stage_switches_give_the_paper_stages_warp():
    assert stage_warp(StageConfig(trainable=["encoder", "depth", "pose", "segmentation"])) == "rigid"
    assert stage_warp(StageConfig(trainable=["scene_flow"], losses=["ssup"])) == "complete"
    assert stage_warp(StageConfig(trainable=["pose", "scene_flow", "motion_mask"], losses=["ssup"])) == "final"
    assert stage_warp(StageConfig(trainable=list(PARTS[:-1]), losses=["sup", "ssup", "distil"])) == "final"


def test_inconsistent_objectives_and_batches_are_named(cfg, batch):
    net = UniEncoder(cfg)
    with pytest.raises(ValueError, match="non-empty subset"):
        TrainingObjective(net, LossConfig(), losses=("sup", "steering"))
    with pytest.raises(ValueError, match="'distil' needs a teacher"):
        TrainingObjective(net, LossConfig())
    with pytest.raises(ValueError, match="teacher given but 'distil' is off"):
        TrainingObjective(net, LossConfig(), losses=("ssup",), teacher=Teacher(cfg))
    with pytest.raises(ValueError, match="warp 'rigid' predicts none"):
        TrainingObjective(net, LossConfig(), losses=("distil",), teacher=Teacher(cfg), warp="rigid")
    with pytest.raises(ValueError, match="warp must be one of"):
        TrainingObjective(net, LossConfig(), losses=("ssup",), warp="optical")
    sup_ssup = TrainingObjective(net, LossConfig(), losses=("sup", "ssup"))
    with pytest.raises(ValueError, match="'sup' switched on but the batch has no labelled images"):
        sup_ssup(triplets_only(batch))
    with pytest.raises(ValueError, match=r"\['ssup'\] switched on but the batch has no frame triplets"):
        sup_ssup(labelled_only(batch))
    with pytest.raises(ValueError, match="need one task and one target each, got 1 and 2"):
        sup_ssup(dataclasses.replace(batch, tasks=batch.tasks[:1]))
    with pytest.raises(ValueError, match="labelled images but 'sup' is switched off"):
        TrainingObjective(net, LossConfig(), losses=("ssup",))(batch)
    with pytest.raises(ValueError, match="neither 'ssup' nor 'distil'"):
        TrainingObjective(net, LossConfig(), losses=("sup",))(batch)
