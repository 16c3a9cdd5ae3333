"""The Cityscapes label set every part of the product speaks: train ids, names, colours, things/stuff, void.

Taken from the official ``cityscapesscripts`` label table (``cityscapesscripts.helpers.labels``), so ids,
names, colours and the thing/stuff split are the benchmark's own. Semantic maps hold train ids ``0..18`` and
:data:`VOID` (255); panoptic ids are ``category * LABEL_DIVISOR + instance`` (stuff: instance 0; void:
``VOID * LABEL_DIVISOR``).
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _OFFICIAL
from cityscapesscripts.helpers.labels import trainId2label

VOID = 255
"""Semantic void label (the official ``trainId`` of every ignored class); the panoptic void id is
``VOID * LABEL_DIVISOR``."""
LABEL_DIVISOR = 1000
"""Panoptic id = category * LABEL_DIVISOR + instance."""

TRAIN_LABELS = tuple(trainId2label[i] for i in sorted({lab.trainId for lab in _OFFICIAL} - {VOID, -1}))
"""The official label records of train ids 0, 1, ... in order (fields ``name``, ``id``, ``color``, ...)."""
NUM_CLASSES = len(TRAIN_LABELS)
CLASSES = tuple((lab.name, tuple(lab.color)) for lab in TRAIN_LABELS)
"""(name, RGB colour of the official palette) by train id."""
CLASS_NAMES = tuple(name for name, _ in CLASSES)
LABEL_IDS = tuple(lab.id for lab in TRAIN_LABELS)
"""Official label id (as in ``gtFine/*_labelIds.png`` and the panoptic JSON) by train id."""
STUFF_CLASSES = tuple(i for i, lab in enumerate(TRAIN_LABELS) if not lab.hasInstances)
"""Train ids of the amorphous "stuff" classes (road .. sky)."""
THING_CLASSES = tuple(i for i, lab in enumerate(TRAIN_LABELS) if lab.hasInstances)
"""Train ids of the countable "thing" classes (person .. bicycle)."""

PALETTE = np.zeros((256, 3), np.uint8)
"""Train id -> RGB colour lookup table (index with a uint8 map); void and unused ids are black."""
PALETTE[:NUM_CLASSES] = [colour for _, colour in CLASSES]
PALETTE.setflags(write=False)


def split_panoptic(panoptic):
    """Panoptic ids (numpy array or torch tensor) -> (category train ids, instance numbers), same shape and kind."""
    return panoptic // LABEL_DIVISOR, panoptic % LABEL_DIVISOR
