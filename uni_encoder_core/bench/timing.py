"""Measurement primitives: device-synchronised stage clocks, statistics, encoder call counters, memory, machine."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import metadata

import numpy as np
import torch
from torch import nn


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU), so wall-clock times cover the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Wall-clock stage times (ms) of one step: ``lap(name)`` synchronises the device and adds the time since the
    previous lap to stage ``name`` (a name may recur: its laps add up)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def start(self) -> None:
        """Forget the previous step's laps and start timing now."""
        synchronize(self.device)
        self.laps = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Close the current lap and add it to stage ``name``."""
        synchronize(self.device)
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + 1e3 * (now - self._last)
        self._last = now

    @property
    def total(self) -> float:
        """Sum of this step's laps (ms): the wall time from ``start`` to the last lap."""
        return sum(self.laps.values())


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, 90th percentile, mean, min and count of a list of times (same unit as the samples)."""
    a = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "mean": float(a.mean()),
            "min": float(a.min()), "n": int(a.size)}


class CallCounter:
    """Counts forward calls of named modules, attributed to the measurement named in ``current``.

    ``counts[(current, module_name)]`` grows by one per forward call of that module.
    """

    def __init__(self, modules: dict[str, nn.Module]):
        self.counts: Counter[tuple[str, str]] = Counter()
        self.current = ""
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name: str) -> Callable:
        def hook(*_) -> None:
            self.counts[(self.current, name)] += 1
        return hook

    def per_frame(self, owner: str, frames: int) -> dict[str, float]:
        """Calls per frame of every module that ``owner`` called."""
        return {m: n / frames for (o, m), n in sorted(self.counts.items()) if o == owner}

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Peak memory over a block (MiB): CUDA allocator peak on a GPU; on the CPU the resident set size sampled
    every ``interval`` s by a thread (``None`` where ``/proc`` is missing). ``increase`` = peak - value at start."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.start = self.peak = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        elif (rss := _rss_bytes()) is not None:
            self.start = self.peak = rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes() or 0)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes() or 0)

    def result(self) -> dict[str, float | None]:
        """``{"peak_mib", "increase_mib", "kind"}``."""
        if self.peak is None:
            return {"peak_mib": None, "increase_mib": None, "kind": "unavailable"}
        kind = "cuda max_memory_allocated" if self.device.type == "cuda" else "process RSS (sampled)"
        return {"peak_mib": self.peak / 2**20, "increase_mib": (self.peak - self.start) / 2**20, "kind": kind}


class TimeLimitExceeded(RuntimeError):
    """Raised inside a :func:`time_limit` block that ran too long."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (SIGALRM; unlimited off the main thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(*_) -> None:
        raise TimeLimitExceeded(f"did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags(wanted: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")) -> list[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return []
    return [f for f in wanted if f in flags]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(device: torch.device) -> dict:
    """What the numbers were measured on: CPU, threads, load, library versions, GPU."""
    info = {
        "cpu_model": _cpu_model(), "cpu_flags": _cpu_flags(), "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "python": platform.python_version(), "device": str(device),
        "versions": {"torch": torch.__version__, **{p: _version(p) for p in ("timm", "transformers", "onnxruntime",
                                                                             "numpy")}},
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info
