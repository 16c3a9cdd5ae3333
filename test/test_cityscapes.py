"""Cityscapes from its official folders, on a tiny tree the test writes in exactly that layout
(``cityscapes_fixture``: panoptic ground truth made by cityscapesscripts' own createPanopticImgs)."""

import json

import cv2
import numpy as np
import pytest
import torch
from cityscapes_fixture import SNIPPETS, H, W, make_cityscapes

from uni_encoder_core.config import DataConfig
from uni_encoder_core.data.cityscapes import (
    CityscapesDepthEvalDataset,
    CityscapesSegmentationDataset,
    CityscapesTripletDataset,
    build_cityscapes,
    decode_panoptic,
    discover_snippets,
)
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.samples import collate


def panoptic_expected():
    """Train-id panoptic map the loader must give at full resolution."""
    p = np.full((H, W), 0, np.int64)  # road: train id 0
    p[:4] = 10 * 1000  # sky
    p[4:8, :8] = 11 * 1000  # person crowd: no instance
    p[4:8, 8:16] = 13 * 1000 + 1
    p[4:8, 16:24] = 13 * 1000 + 2
    p[12:] = 255 * 1000  # ego vehicle: ignored in evaluation, so void
    return p

SIZE = (6, 16)  # 25% of 16 rows cut -> 12 kept rows, halved


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def frame_numbers(images):
    return [round(float(v)) for v in images[:, 0].mean(dim=(-1, -2)) * 255]


def test_snippets_are_found_and_back_to_back_snippets_are_split(root):
    snippets = discover_snippets(root, "train")
    assert [(s.city, s.seq, s.start, s.annotated) for s in snippets] == [
        ("aachen", 0, 0, 19), ("aachen", 0, 30, 49), ("bochum", 1, 100, 119)]


def test_triplets_never_cross_a_snippet_boundary(root):
    data = CityscapesTripletDataset(root, "train", SIZE)
    assert len(data) == 3 * 28
    targets = [frame_numbers(data[i].images) for i in range(len(data))]
    assert targets[0] == [0, 1, 2] and targets[27] == [27, 28, 29] and targets[28] == [30, 31, 32]
    snippet_of = {f: start for _, _, start in SNIPPETS for f in range(start, start + 30)}
    for prev, cur, nxt in targets:
        assert snippet_of[prev] == snippet_of[nxt] and cur - prev == 1 and nxt - cur == 1
    wide = CityscapesTripletDataset(root, "train", SIZE, offsets=(-2, 0, 3))
    assert len(wide) == 3 * 25 and frame_numbers(wide[0].images) == [0, 2, 5]


def test_crop_and_resize_intrinsics_match_hand_computed_values(root):
    sample = CityscapesTripletDataset(root, "train", (8, 16))[0]
    # 4 bottom rows cut (K unchanged), then 12x32 -> 8x16: sx = 1/2, sy = 2/3, u' = s (u + 0.5) - 0.5
    expected = [[10.0, 0.0, 0.5 * 16.0 - 0.5], [0.0, 22.0 * 2 / 3, (2 / 3) * 7.5 - 0.5], [0.0, 0.0, 1.0]]
    assert torch.allclose(sample.K, torch.tensor(expected), atol=1e-5)
    assert sample.images.shape == (3, 3, 8, 16) and sample.offsets == (-1, 0, 1)


def test_panoptic_png_from_cityscapesscripts_decodes_to_train_ids(root):
    info = json.loads((root / "gtFine" / "cityscapes_panoptic_train.json").read_text())["annotations"][0]
    rgb = cv2.imread(str(root / "gtFine" / "cityscapes_panoptic_train" / info["file_name"]))[..., ::-1]
    assert np.array_equal(decode_panoptic(rgb, info["segments_info"]), panoptic_expected())


def test_segmentation_samples_are_cropped_and_resized_with_their_labels(root):
    data = CityscapesSegmentationDataset(root, "train", SIZE)
    assert len(data) == 3
    sample = data[0]
    expected = torch.from_numpy(panoptic_expected()[:12][1::2, 1::2])  # 12 kept rows halved: centres 1, 3, ...
    assert torch.equal(sample.panoptic, expected)
    assert torch.equal(sample.semantic, expected // 1000) and torch.equal(sample.instance, expected % 1000)
    assert round(float(sample.image[0].mean()) * 255) == 19
    batch = collate([data[0], data[1]])
    assert batch.semantic.shape == (2, *SIZE)


def test_depth_evaluation_frames_follow_manydepth_with_official_disparity_conversion(root):
    data = CityscapesDepthEvalDataset(root, "train", SIZE)
    assert len(data) == 3
    sample = data[1]
    assert sample.offsets == (-2, 0) and frame_numbers(sample.images) == [47, 49]
    depth = sample.gt_depth[0]
    assert depth.shape == (H, W)
    assert torch.allclose(depth[:, :8], torch.tensor(0.5)) and torch.allclose(depth[:, 8:16], torch.tensor(1.6))
    assert (depth[:, 16:] == 0).all()  # p = 1 (zero disparity) and p = 0 are invalid


def test_builder_gives_each_role_and_augments_only_training(root):
    cfg = DataConfig(kind="cityscapes", root=str(root), height=SIZE[0], width=SIZE[1])
    assert isinstance(build_cityscapes(cfg, "triplets", "train"), CityscapesTripletDataset)
    assert build_cityscapes(cfg, "triplets", "train").augment is cfg.augment
    assert isinstance(build_cityscapes(cfg, "labelled", "train"), CityscapesSegmentationDataset)
    assert isinstance(build_cityscapes(cfg, "depth_eval", "train"), CityscapesDepthEvalDataset)
    with pytest.raises(DataError, match=r"leftImg8bit_sequence/val"):
        build_cityscapes(cfg, "triplets", "val")


def test_missing_folder_corrupt_png_and_incomplete_snippet_name_the_file(root, tmp_path):
    with pytest.raises(DataError, match=f"folder {tmp_path}/leftImg8bit_sequence/train does not exist"):
        CityscapesTripletDataset(tmp_path, "train", SIZE)
    broken = make_cityscapes(tmp_path / "broken")
    bad = broken / "leftImg8bit_sequence" / "train" / "aachen" / "aachen_000000_000001_leftImg8bit.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    data = CityscapesTripletDataset(broken, "train", SIZE)
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):
        data[0]
    (broken / "leftImg8bit_sequence" / "train" / "bochum" / "bochum_000001_000110_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match=r"bochum_000001_000100 \.\. bochum_000001_000109 are 10 consecutive"):
        discover_snippets(broken, "train")
