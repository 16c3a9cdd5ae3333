"""Lane-keeping HDF5 recordings in the layout of docs/data_formats.md, shared by the tests that read them."""

import h5py
import numpy as np

N, H, W = 200, 8, 16


def write_recording(path, n=N, **overrides):
    """The layout of docs/data_formats.md; red channel = frame index, curvature = index / 1000 1/m."""
    images = np.zeros((n, H, W, 3), np.uint8)
    images[..., 0] = np.arange(n)[:, None, None] % 256
    data = {"images": images, "curvature": np.arange(n) / 1000.0, "timestamps": 100.0 + 0.05 * np.arange(n),
            "speed": np.full(n, 8.0), "steering_angle": np.arctan(2.7 * np.arange(n) / 1000.0)}
    data.update(overrides)
    with h5py.File(path, "w") as fh:
        fh.attrs.update({"format": "uni-encoder lane-keeping", "version": 1, "source": "test drive"})
        for name, value in data.items():
            if value is not None:
                fh.create_dataset(name, data=value)
        for name, unit in {"curvature": "1/m", "timestamps": "s", "speed": "m/s", "steering_angle": "rad"}.items():
            if name in fh:
                fh[name].attrs["unit"] = unit
    return path
