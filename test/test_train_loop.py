"""The training loop on the tiny model: every stage learns a fixed batch and leaves its frozen parts alone, a
resumed run ends bit-identical to an uninterrupted one, a NaN batch is skipped without touching anything, and
three in a row stop the run."""

import copy
import hashlib
import shutil

import pytest
import torch
from torch.utils.data import Dataset
from train_helpers import small_stage

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data import registry
from uni_encoder_core.models.checkpoint import read_checkpoint, save_checkpoint
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.train import checkpoints as ckpt
from uni_encoder_core.train.guard import TrainingDiverged
from uni_encoder_core.train.loop import Trainer

torch.set_num_threads(1)
STAGES = ("teacher", "student_stage1", "student_stage2", "student_stage3", "student_stage4")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    cfg = load_config(small_stage("teacher", tmp_path_factory.mktemp("t")).model, ModelConfig)
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("teacher") / "final.pt"
    save_checkpoint(Teacher(cfg), path)
    return path


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_lowers_its_loss_on_a_fixed_batch_and_keeps_frozen_parts(name, tmp_path, teacher_file):
    stage = small_stage(name, tmp_path, lr=1e-3, teacher=str(teacher_file) if name == "student_stage4" else None)
    trainer = Trainer(stage, progress=False)
    model = trainer.model
    frozen = [p for p in model.parts if p not in stage.trainable]
    before = {p: snapshot(getattr(model, p)) for p in model.parts}
    teacher_before = snapshot(trainer.objective.module.teacher) if name == "student_stage4" else None
    batch = trainer.next_batch()
    losses = [trainer.train_step(batch)[0]["total"] for _ in range(6)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0], losses
    for part in model.parts:
        after = snapshot(getattr(model, part))
        same = all(torch.equal(before[part][k], after[k]) for k in after)
        assert same == (part in frozen), f"{name}: part {part} {'changed' if not same else 'did not learn'}"
    if teacher_before is not None:
        assert all(torch.equal(v, trainer.objective.module.teacher.state_dict()[k]) for k, v in teacher_before.items())


def test_stage_four_reads_the_teacher_file_without_writing_it(tmp_path, teacher_file):
    digest = hashlib.sha256(teacher_file.read_bytes()).hexdigest()
    stage = small_stage("student_stage4", tmp_path, teacher=str(teacher_file), steps=1)
    result = Trainer(stage, progress=False).run()
    assert result.finished and hashlib.sha256(teacher_file.read_bytes()).hexdigest() == digest
    assert read_checkpoint(tmp_path / "final.pt")["kind"] == "UniEncoder"


def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    periods = dict(steps=6, checkpoint_every=3, keep_last=5, log_every=2, validate_every=3, image_every=3)
    full = Trainer(small_stage("student_stage1", tmp_path / "full", **periods), progress=False)
    done = full.run()
    assert done.finished and [s for s, _ in ckpt.step_checkpoints(tmp_path / "full")] == [3, 6]
    assert (tmp_path / "full" / "best.pt").is_file() and (tmp_path / "full" / "final.pt").is_file()
    # a crash after step 3: only the step-3 checkpoint survives in the run directory
    (tmp_path / "cut" / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt.step_path(tmp_path / "full", 3), ckpt.step_path(tmp_path / "cut", 3))
    resumed = Trainer(small_stage("student_stage1", tmp_path / "cut", **periods), resume=True, progress=False)
    assert resumed.step == 3
    again = resumed.run()
    assert again.losses == done.losses[3:]
    end_full, end_cut = read_checkpoint(ckpt.step_path(tmp_path / "full", 6)), read_checkpoint(
        ckpt.step_path(tmp_path / "cut", 6))
    assert all(torch.equal(v, end_cut["state_dict"][k]) for k, v in end_full["state_dict"].items())
    for key in ("optimizer", "objective", "scheduler", "data", "best_loss"):
        assert repr(end_full[key]) == repr(end_cut[key]), key
    assert torch.equal(end_full["rng"][0]["torch"], end_cut["rng"][0]["torch"])


def test_a_nan_batch_is_skipped_without_touching_weights_or_optimizer(tmp_path):
    trainer = Trainer(small_stage("student_stage1", tmp_path, steps=5), progress=False)
    trainer.train_step(trainer.next_batch())  # the optimizer has state now
    weights, optim = snapshot(trainer.model), copy.deepcopy(trainer.optimizer.state_dict())
    batch = trainer.next_batch()
    batch.triplets.images[0, 1, :, :4, :4] = float("nan")
    terms, norm, reason = trainer.train_step(batch)
    assert reason is not None and "non-finite" in reason
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in weights.items())
    assert repr(trainer.optimizer.state_dict()) == repr(optim)
    assert all(p.grad is None for p in trainer.model.parameters())
    terms, norm, reason = trainer.train_step(trainer.next_batch())
    assert reason is None and trainer.guard.streak == 0  # a finite step ends the streak


class NaNImages(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        sample = self.data[i]
        sample.images[:] = float("nan")
        return sample


def test_three_non_finite_steps_in_a_row_stop_the_run(tmp_path):
    if "test_nan_triplets" not in registry.known_kinds():
        registry.register("test_nan_triplets", ("triplets", "labelled"))(
            lambda cfg, role, split: NaNImages(registry.synthetic_dataset(cfg, role, split)))
    stage = small_stage("student_stage2", tmp_path, steps=10)
    stage.data.kind = "test_nan_triplets"
    trainer = Trainer(stage, progress=False)
    weights = snapshot(trainer.model)
    with pytest.raises(TrainingDiverged, match="step 3: 3 non-finite steps in a row .*non-finite loss nan"):
        trainer.run()
    assert [s for s, _ in trainer.guard.skipped] == [1, 2, 3]
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in weights.items())
