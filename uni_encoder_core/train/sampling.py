"""Resumable data order: an endless stream of batches whose position is part of a run's checkpoint.

Each epoch is a permutation drawn by ``torch.utils.data.DistributedSampler`` from ``(seed, epoch)``, split
between the processes (each rank reads every ``world_size``-th index); batches of ``batch_size`` are taken in
that order (``drop_last``), and the stream moves to the next epoch when one is used up. :meth:`state` is
``(epoch, batches taken this epoch)``; a stream rebuilt with that state continues with exactly the batch that
the saved run would have read next. The DataLoader draws its worker seeds from its own generator, so reading
data never touches the global random state that dropout uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class _FromPosition(Sampler[int]):
    """The indices of ``sampler`` for its current epoch, from ``start`` on."""

    def __init__(self, sampler: DistributedSampler, start: int):
        self.sampler, self.start = sampler, start

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.sampler)[self.start:])

    def __len__(self) -> int:
        return max(len(self.sampler) - self.start, 0)


class BatchStream:
    """Endless batches of one data set for one rank; ``next(stream)`` gives the next collated batch.

    Raises ``ValueError`` when the rank's share of the data set holds less than one batch.
    """

    def __init__(self, dataset: Dataset, batch_size: int, collate_fn: Callable[[list], Any], seed: int,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0, state: tuple[int, int] = (0, 0)):
        self.dataset, self.batch_size, self.collate_fn = dataset, batch_size, collate_fn
        self.seed, self.num_workers = seed, num_workers
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                          drop_last=True)
        if len(self.sampler) < batch_size:
            raise ValueError(f"a data set of {len(dataset)} samples gives {len(self.sampler)} per process, "
                             f"fewer than one batch of {batch_size}")
        self.epoch, self.position = state
        self._batches: Iterator | None = None

    def state(self) -> tuple[int, int]:
        """``(epoch, batches already taken in it)``: what a checkpoint stores."""
        return self.epoch, self.position

    def _open(self) -> None:
        self.sampler.set_epoch(self.epoch)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        loader = DataLoader(self.dataset, batch_size=self.batch_size, drop_last=True, collate_fn=self.collate_fn,
                            sampler=_FromPosition(self.sampler, self.position * self.batch_size),
                            num_workers=self.num_workers, generator=generator)
        self._batches = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        for _ in range(2):
            if self._batches is None:
                self._open()
            try:
                batch = next(self._batches)
            except StopIteration:
                self.epoch, self.position, self._batches = self.epoch + 1, 0, None
                continue
            self.position += 1
            return batch
        raise RuntimeError("a fresh epoch gave no batch")  # unreachable: the constructor checked the size
