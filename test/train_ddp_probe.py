"""Run under torchrun: ``train_ddp_probe.py RECIPE OUT`` trains the recipe like ``uni-encoder train`` and writes
this rank's final weights and its share of the first epoch's triplet indices to ``OUT/rank<r>.pt``."""

import sys
from pathlib import Path

import torch

from uni_encoder_core.train.loop import Trainer
from uni_encoder_core.train.recipe import load_stage

torch.set_num_threads(1)
trainer = Trainer(load_stage(sys.argv[1]), progress=False)
sampler = trainer.streams["triplets"].sampler
sampler.set_epoch(0)
batches = torch.tensor(list(sampler))
result = trainer.run()
assert result.finished, result
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
torch.save({**trainer.model.state_dict(), "batches": batches}, out / f"rank{trainer.fabric.global_rank}.pt")
