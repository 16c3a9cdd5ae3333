"""Device placement, data parallelism and precision through Lightning Fabric.

One process: the chosen device. Under ``torchrun`` (``WORLD_SIZE`` > 1): one process per device,
DistributedDataParallel over gloo (CPU) or NCCL (GPU), ranks and nodes read from torchrun's environment.
Mixed precision (autocast, and a gradient scaler for fp16) only on a GPU; a CPU run is fp32.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.strategies import DDPStrategy

PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
"""Recipe precision -> Fabric's precision setting on a GPU."""


class DeviceError(RuntimeError):
    """The requested device or process layout cannot be used on this machine."""


def launch(device: str, precision: str) -> Fabric:
    """A launched Fabric for ``device`` (``cpu`` or ``cuda``) and recipe ``precision``; under torchrun every
    process calls this and joins the process group. Raises :class:`DeviceError`."""
    if device not in ("cpu", "cuda"):
        raise DeviceError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if world % local:
        raise DeviceError(f"WORLD_SIZE {world} is not a multiple of LOCAL_WORLD_SIZE {local}")
    if device == "cuda" and local > torch.cuda.device_count():
        raise DeviceError(f"{local} processes per node but only {torch.cuda.device_count()} CUDA devices")
    strategy: Any = "auto"
    if world > 1:
        strategy = DDPStrategy(process_group_backend="nccl" if device == "cuda" else "gloo",
                               find_unused_parameters=True)
    fabric = Fabric(accelerator=device, devices=local, num_nodes=world // local, strategy=strategy,
                    precision=PRECISION[precision] if device == "cuda" else "32-true")
    fabric.launch()
    return fabric


def gather(fabric: Fabric, obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (picklable objects; a collective: every rank must call it)."""
    if fabric.world_size == 1:
        return [obj]
    out: list[Any] = [None] * fabric.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def any_rank(fabric: Fabric, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (a collective)."""
    if fabric.world_size == 1:
        return flag
    return bool(fabric.all_reduce(torch.tensor(float(flag), device=fabric.device), reduce_op="sum") > 0)
