"""Synthetic world rendering throughput: frames per second of ``SyntheticWorld.frame`` in one thread."""

from __future__ import annotations

import time

from tqdm import tqdm

from uni_encoder_core.bench.timing import summarize
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig


def run_rendering(height: int, width: int, frames: int, seed: int = 0) -> dict:
    """Section 4: render ``frames`` consecutive frames (RGB + every ground-truth map) at ``height`` x ``width``."""
    t0 = time.perf_counter()
    world = SyntheticWorld(WorldConfig(seed=seed, height=height, width=width, num_frames=frames))
    build_s = time.perf_counter() - t0
    samples = []
    for i in tqdm(range(frames), desc="rendering", unit="frame", leave=False):
        t0 = time.perf_counter()
        world.frame(i)
        samples.append(1e3 * (time.perf_counter() - t0))
    ms = summarize(samples)
    return {"height": height, "width": width, "world_build_s": build_s, "ms": ms,
            "frames_per_s": 1e3 * ms["n"] / sum(samples)}
