"""Synthetic world rendering speed on one CPU core: ``python scripts/bench_synthetic.py [--frames N]``.

Pins the process to one core and every math library to one thread before numpy loads, renders N
consecutive frames (RGB + all ground truth) at each requested size and prints frames/s as JSON, by
wall clock and by the process's CPU time (the latter is robust to other load on a shared machine).
"""

import argparse
import json
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = "1"


def main() -> int:
    """Measure and print the rendering throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--sizes", default="192x512,192x640,96x256", help="comma-separated HxW")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import platform

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig

    results = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        world = SyntheticWorld(WorldConfig(seed=args.seed, height=h, width=w, num_frames=args.frames))
        world.frame(0)
        wall, cpu = [], []
        for i in range(args.frames):
            t0, c0 = time.perf_counter(), time.process_time()
            world.frame(i)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        results.append({"size": f"{h}x{w}", "frames_per_s_wall": round(len(wall) / sum(wall), 1),
                        "frames_per_s_cpu": round(len(cpu) / sum(cpu), 1),
                        "median_ms_wall": round(1e3 * float(np.median(wall)), 2),
                        "median_ms_cpu": round(1e3 * float(np.median(cpu)), 2)})
    print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                      "threads": 1, "frames": args.frames, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
