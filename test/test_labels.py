"""The one Cityscapes label table: ids, names, colours and the things/stuff split."""

import numpy as np
import pytest

from uni_encoder_core.labels import CLASS_NAMES, LABEL_IDS, PALETTE, STUFF_CLASSES, THING_CLASSES, VOID


def test_train_ids_names_and_split():
    assert len(CLASS_NAMES) == 19
    assert (CLASS_NAMES[0], CLASS_NAMES[10], CLASS_NAMES[13], CLASS_NAMES[18]) == ("road", "sky", "car", "bicycle")
    assert set(STUFF_CLASSES).isdisjoint(THING_CLASSES)
    assert sorted(STUFF_CLASSES + THING_CLASSES) == list(range(19))
    assert STUFF_CLASSES == tuple(range(11))


def test_official_label_ids_by_train_id():
    # gtFine label ids: road 7, sky 23, car 26, train 31, bicycle 33
    assert (LABEL_IDS[0], LABEL_IDS[10], LABEL_IDS[13], LABEL_IDS[16], LABEL_IDS[18]) == (7, 23, 26, 31, 33)


def test_palette_colours_a_label_map_and_is_read_only():
    labels = np.array([[0, 13], [10, VOID]], np.uint8)
    np.testing.assert_array_equal(PALETTE[labels], [[[128, 64, 128], [0, 0, 142]], [[70, 130, 180], [0, 0, 0]]])
    with pytest.raises(ValueError):
        PALETTE[0] = 1
