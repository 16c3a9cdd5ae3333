"""The Cityscapes label set every part of the product speaks: train ids, names, colours, things/stuff, void.

Semantic maps hold train ids ``0..18`` and :data:`VOID` (255); panoptic ids are ``category * 1000 + instance``
(stuff: instance 0; void: ``VOID * 1000``).
"""

from __future__ import annotations

import numpy as np

CLASSES = (
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)), ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)), ("pole", (153, 153, 153)), ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)), ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)), ("person", (220, 20, 60)), ("rider", (255, 0, 0)), ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
)
"""(name, RGB colour of the official palette) by train id."""

CLASS_NAMES = tuple(name for name, _ in CLASSES)
NUM_CLASSES = len(CLASSES)
STUFF_CLASSES = tuple(range(11))
"""Train ids of the amorphous "stuff" classes (road .. sky)."""
THING_CLASSES = tuple(range(11, 19))
"""Train ids of the countable "thing" classes (person .. bicycle)."""
VOID = 255
"""Semantic void label; the panoptic void id is ``VOID * 1000``."""
LABEL_DIVISOR = 1000
"""Panoptic id = category * LABEL_DIVISOR + instance."""

PALETTE = np.zeros((256, 3), np.uint8)
"""Train id -> RGB colour lookup table (index with a uint8 map); void and unused ids are black."""
PALETTE[:NUM_CLASSES] = [colour for _, colour in CLASSES]
PALETTE.setflags(write=False)


def split_panoptic(panoptic):
    """Panoptic ids (numpy array or torch tensor) -> (category train ids, instance numbers), same shape and kind."""
    return panoptic // LABEL_DIVISOR, panoptic % LABEL_DIVISOR
