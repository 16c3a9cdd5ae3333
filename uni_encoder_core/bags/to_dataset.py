"""A rosbag2 recording turned into a lane-keeping HDF5 file (layout in ``docs/data_formats.md``).

Each camera message (``sensor_msgs/Image`` in any camera encoding the node accepts, any row padding, or a jpeg/png
``CompressedImage``) becomes one RGB frame, in stamp order, labelled with the recorded steering at its stamp
(``uni_encoder_core.bags.steering``: the nearest sample within ``tolerance``, linearly interpolated between its
neighbours). Curvature comes from ``std_msgs/Float32``/``Float64`` (1/m) or from
``ackermann_msgs/AckermannDriveStamped`` with the vehicle's wheelbase (``tan(angle) / wheelbase``; the angle and
speed are stored as well). Nothing is fatal per message; the report lists what was left out:

- *unreadable*: undecodable or truncated messages, unknown encodings, unusable steering values;
- *dropped*: stamps that do not increase, images whose size differs from the first image's;
- *unmatched*: images without a steering sample within ``tolerance``.

The file is written beside its final name and renamed into place when complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.bags.reader import IMAGE_TYPES, BagError, BagReader, Rejected
from uni_encoder_core.bags.steering import read_steering
from uni_encoder_core.data.lane_keeping import FORMAT, UNITS, VERSION
from uni_encoder_core.errors import UsageError
from uni_encoder_core.messages.images import ImageError, image_to_rgb8


@dataclass
class FromBagConfig:
    """``image_topic``; ``curvature_topic`` or ``steering_topic`` (Ackermann, with ``wheelbase`` in m);
    ``tolerance`` (s): the farthest a steering sample may be from an image's stamp. Inconsistent settings raise
    ``UsageError``."""

    image_topic: str
    curvature_topic: str | None = None
    steering_topic: str | None = None
    wheelbase: float | None = None
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if (self.curvature_topic is None) == (self.steering_topic is None):
            raise UsageError("give exactly one of a curvature topic and an Ackermann steering topic")
        if self.steering_topic is not None and not (self.wheelbase and self.wheelbase > 0):
            raise UsageError(f"an Ackermann steering topic needs a positive wheelbase (m, --wheelbase), "
                             f"got {self.wheelbase}")
        if self.tolerance < 0:
            raise UsageError(f"tolerance must be >= 0 s, got {self.tolerance}")


@dataclass
class ConversionReport:
    """What a conversion wrote and left out: ``images`` recorded on the image topic, ``written`` frames, the
    ``unreadable`` and ``dropped`` messages of every topic read, and the ``unmatched`` images."""

    bag: str
    out: str
    images: int = 0
    written: int = 0
    unreadable: list[Rejected] = field(default_factory=list)
    dropped: list[Rejected] = field(default_factory=list)
    unmatched: list[Rejected] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line: counts of written, unreadable, dropped and unmatched messages."""
        return (f"{self.bag}: {self.written} of {self.images} images written to {self.out}; "
                f"{len(self.unreadable)} unreadable, {len(self.dropped)} dropped, {len(self.unmatched)} unmatched")


def _labels(fh: h5py.File, name: str, values: list[float]) -> None:
    fh.create_dataset(name, data=np.asarray(values, np.float64))
    fh[name].attrs["unit"] = UNITS[name]


def bag_to_dataset(bag: str | Path, cfg: FromBagConfig, out: str | Path) -> ConversionReport:
    """Convert the recording ``bag`` into the lane-keeping HDF5 file ``out`` (replaced atomically).

    Raises :class:`~uni_encoder_core.bags.reader.BagError` naming the bag when it is unreadable, lacks a topic or
    yields no image with a steering label (no file is written then).
    """
    out = Path(out)
    report = ConversionReport(str(bag), str(out))
    with BagReader(bag) as reader:
        reader.require(cfg.image_topic, IMAGE_TYPES)
        series = read_steering(reader, cfg.curvature_topic or cfg.steering_topic, cfg.wheelbase)
        report.images = reader.count(cfg.image_topic)
        stamps: list[float] = []
        columns: dict[str, list[float]] = {"curvature": [], "steering_angle": [], "speed": []}
        with atomic_writer(out, "wb") as handle, h5py.File(handle, "w") as fh:
            images = None
            for message in tqdm(reader.messages(cfg.image_topic), total=report.images, desc=Path(bag).name,
                                unit="image"):
                try:
                    rgb = image_to_rgb8(message.msg)
                except ImageError as exc:
                    reader.rejected.append(Rejected(cfg.image_topic, message.index, message.stamp, str(exc)))
                    continue
                label = series.at(np.array([message.stamp_ns]), cfg.tolerance)
                if not label.matched[0]:
                    report.unmatched.append(Rejected(cfg.image_topic, message.index, message.stamp,
                                                     f"no steering sample within {cfg.tolerance} s", "unmatched"))
                    continue
                if images is None:
                    images = fh.create_dataset("images", (0, *rgb.shape), np.uint8, maxshape=(None, *rgb.shape),
                                               chunks=(1, *rgb.shape))
                elif rgb.shape != images.shape[1:]:
                    reader.rejected.append(Rejected(cfg.image_topic, message.index, message.stamp,
                                                    f"image size {rgb.shape[1]}x{rgb.shape[0]} differs from the "
                                                    f"first image's {images.shape[2]}x{images.shape[1]}", "dropped"))
                    continue
                images.resize(len(stamps) + 1, axis=0)
                images[len(stamps)] = rgb
                stamps.append(message.stamp)
                columns["curvature"].append(float(label.curvature[0]))
                if label.steering_angle is not None:
                    columns["steering_angle"].append(float(label.steering_angle[0]))
                    columns["speed"].append(float(label.speed[0]))
            if not stamps:
                raise BagError(f"{bag}: no image on '{cfg.image_topic}' could be paired with a steering label "
                               f"(tolerance {cfg.tolerance} s); nothing written; check the topics or raise --tolerance")
            _labels(fh, "timestamps", stamps)
            for name, values in columns.items():
                if values:
                    _labels(fh, name, values)
            fh.attrs.update({"format": FORMAT, "version": VERSION, "source": (
                f"rosbag2 {bag}: images '{cfg.image_topic}', steering "
                f"'{cfg.curvature_topic or cfg.steering_topic}' interpolated within {cfg.tolerance} s")})
            if cfg.wheelbase is not None:
                fh.attrs["wheelbase"] = cfg.wheelbase
        report.written = len(stamps)
        report.unreadable = [r for r in reader.rejected if r.kind == "unreadable"]
        report.dropped = [r for r in reader.rejected if r.kind == "dropped"]
    return report
