"""Frames onto the device and outputs off it: resizing on the device, and one device->host copy for all outputs."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def preprocess_on_device(rgb: Tensor, crop: int, model_hw: tuple[int, int]) -> Tensor:
    """HxWx3 uint8 image (on any device) -> 1x3xhxw float in [0, 1] at ``model_hw``, the bottom ``crop`` rows removed.

    Shrinking averages the covered pixels (``area``, OpenCV's ``INTER_AREA`` for integer factors), enlarging
    interpolates bilinearly (``INTER_LINEAR``); unlike the 8-bit OpenCV path the result is not rounded to 1/255.
    """
    kept = rgb[: rgb.shape[0] - crop].permute(2, 0, 1)[None].float().div_(255.0)
    if tuple(kept.shape[-2:]) == tuple(model_hw):
        return kept
    mode = "area" if kept.shape[-2] > model_hw[0] else "bilinear"
    return F.interpolate(kept, size=tuple(model_hw), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def to_host(tensors: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Copy every tensor to host memory in one transfer: their bytes are packed into one device buffer (widest dtype
    first, so every piece stays aligned), copied once, and viewed back as arrays of the same shapes and dtypes."""
    order = sorted(tensors, key=lambda k: -tensors[k].element_size())
    flat = [tensors[k].contiguous().view(-1).view(torch.uint8) for k in order]
    host = torch.cat(flat).cpu().numpy() if flat else np.zeros(0, np.uint8)
    out, offset = {}, 0
    for key, piece in zip(order, flat):
        t = tensors[key]
        dtype = torch.empty(0, dtype=t.dtype).numpy().dtype
        out[key] = host[offset : offset + piece.numel()].view(dtype).reshape(tuple(t.shape))
        offset += piece.numel()
    return out
