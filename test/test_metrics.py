"""Known-answer tests of the evaluation metrics (depth, segmentation, motion, pose, steering) and paper tables."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from uni_encoder_core.eval.depth import (
    DepthErrorAccumulator,
    cityscapes_depth_errors,
    cityscapes_eval_window,
    cityscapes_gt_depth,
    compute_depth_errors,
    eigen_depth_errors,
    garg_crop_mask,
    resize_depth,
)
from uni_encoder_core.eval.motion import MotionMaskMetric
from uni_encoder_core.eval.pose import (
    sequence_ate,
    snippet_ate,
    snippet_ates,
    trajectory_from_relative_poses,
    umeyama_alignment,
    zero_motion_ate,
)
from uni_encoder_core.eval.segmentation import (
    MaskAPMetric,
    MeanIoUMetric,
    PanopticQualityMetric,
    instances_from_panoptic,
)
from uni_encoder_core.eval.steering import MeanStd, mse, summarize_folds, tenfold_splits, weighted_mse
from uni_encoder_core.eval.tables import (
    DepthRow,
    SegmentationRow,
    SteeringRow,
    format_depth_table,
    format_segmentation_table,
    format_steering_table,
)


def rot_y(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def pose(rotation, translation):
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, translation
    return T


# ----------------------------------------------------------------------------------------------------- depth


def test_depth_errors_by_hand_without_scaling():
    gt = np.array([[1.0, 2.0], [4.0, 5.0]])
    pred = np.array([[1.0, 2.5], [3.0, 5.0]])
    e = compute_depth_errors(gt, pred, median_scaling=False)
    assert e["abs_rel"] == pytest.approx((0 + 0.25 + 0.25 + 0) / 4)
    assert e["sq_rel"] == pytest.approx((0 + 0.25 / 2 + 1 / 4 + 0) / 4)
    assert e["rmse"] == pytest.approx(math.sqrt(1.25 / 4))
    assert e["rmse_log"] == pytest.approx(math.sqrt((math.log(2 / 2.5) ** 2 + math.log(4 / 3) ** 2) / 4))
    # ratios 1, 1.25, 4/3, 1: the threshold is strict, so 1.25 itself fails delta < 1.25
    assert (e["a1"], e["a2"], e["a3"]) == (0.5, 1.0, 1.0)
    assert all(isinstance(v, float) for v in e.values())


def test_median_scaling_uses_gt_over_pred_medians():
    e = compute_depth_errors(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]))  # ratio 2 -> [2, 2, 2]
    assert e["abs_rel"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert e["rmse"] == pytest.approx(math.sqrt(2 / 3))
    scaled = compute_depth_errors(np.array([3.0, 7.0, 20.0]), np.array([0.3, 0.7, 2.0]))
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-12) and scaled["a1"] == 1.0


def test_prediction_is_clamped_after_median_scaling():
    # ratio 20 / 2 = 10 -> [10, 20, 1000]; 1000 clamps to 80
    e = compute_depth_errors(np.array([10.0, 20.0, 79.0]), np.array([1.0, 2.0, 100.0]))
    assert e["abs_rel"] == pytest.approx((1 / 79) / 3)
    assert e["rmse"] == pytest.approx(math.sqrt(1 / 3))
    # a zero prediction stays 0 after scaling (ratio 2) and is clamped up to min_depth 1e-3
    e = compute_depth_errors(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 1.0]))
    assert e["abs_rel"] == pytest.approx(((1 - 1e-3) / 1 + 0 + 1 / 3) / 3)
    assert e["a3"] == pytest.approx(2 / 3)


def test_invalid_ground_truth_is_ignored_whatever_the_prediction_there():
    gt = np.array([1.0, 2.0, 4.0, np.nan, np.inf, -np.inf, 0.0, 1e-3, 80.0, 100.0])
    pred = np.array([1.5, 2.0, 3.0, np.nan, np.inf, 5.0, 7.0, 9.0, 11.0, 13.0])
    expected = compute_depth_errors(gt[:3], pred[:3])
    assert compute_depth_errors(gt, pred) == expected
    assert compute_depth_errors(gt, pred, mask=np.arange(10) != 0) == compute_depth_errors(gt[1:3], pred[1:3])


def test_depth_errors_refuse_undefined_cases():
    with pytest.raises(ValueError, match="no valid ground-truth pixel"):
        compute_depth_errors(np.array([np.nan, 0.0, 90.0]), np.ones(3))
    with pytest.raises(ValueError, match="no valid ground-truth pixel"):
        compute_depth_errors(np.ones(3), np.ones(3), mask=np.zeros(3, bool))
    with pytest.raises(ValueError, match="not finite at 1 of 3"):
        compute_depth_errors(np.ones(3), np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="positive median"):
        compute_depth_errors(np.ones(3), np.array([0.0, 0.0, 1.0]))
    assert compute_depth_errors(np.ones(3), np.array([0.0, 0.0, 1.0]), median_scaling=False)["a1"] == pytest.approx(
        1 / 3)
    with pytest.raises(ValueError, match="same shape"):
        compute_depth_errors(np.ones((2, 2)), np.ones(4))


def test_torch_and_numpy_inputs_give_identical_numbers():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 90.0, (1, 1, 24, 32)).astype(np.float32)
    pred = rng.uniform(0.1, 50.0, (1, 1, 24, 32)).astype(np.float32)
    assert compute_depth_errors(torch.from_numpy(gt), torch.from_numpy(pred)) == compute_depth_errors(gt, pred)


def test_garg_crop_fractions():
    mask = garg_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    # int(0.40810811*375)=153, int(0.99189189*375)=371, int(0.03594771*1242)=44, int(0.96405229*1242)=1197
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_resize_interpolates_disparity_not_depth():
    # disparity [1, 2] -> bilinear (half-pixel centres) to 4 columns: [1, 1.25, 1.75, 2]
    out = resize_depth(np.array([[1.0, 0.5]]), 1, 4)
    np.testing.assert_allclose(out, [[1.0, 1 / 1.25, 1 / 1.75, 0.5]], rtol=1e-6)


def test_eigen_errors_use_the_garg_crop():
    gt = np.full((375, 1242), 50.0)
    gt[garg_crop_mask(375, 1242)] = 10.0  # outside the crop a different (valid) depth that must not count
    e = eigen_depth_errors(gt, np.full((192, 640), 3.0))
    assert e["abs_rel"] == pytest.approx(0.0, abs=1e-12) and e["a1"] == 1.0


def test_cityscapes_gt_depth_from_disparity_png():
    png = np.array([[0, 1, 257, 513]], dtype=np.uint16)  # disparity (p - 1) / 256: invalid, 0, 1, 2
    np.testing.assert_allclose(cityscapes_gt_depth(png, baseline=0.2, fx=2000.0), [[0.0, 0.0, 400.0, 200.0]])
    with pytest.raises(ValueError, match="integer HxW"):
        cityscapes_gt_depth(png.astype(np.float32), 0.2, 2000.0)


def test_cityscapes_manydepth_window():
    assert cityscapes_eval_window(768, 2048) == (slice(256, 768), slice(192, 1856))
    gt = np.full((1024, 2048), 40.0)  # bottom quarter, top rows and side columns: valid but outside the window
    gt[256:768, 192:1856] = 10.0
    gt[256, 192:1856] = 20.0  # first row and last column of the window count
    gt[256:768, 1855] = 20.0
    e = cityscapes_depth_errors(gt, np.full((192, 512), 2.0))  # median 10 -> prediction 10 everywhere
    inside_20 = 1664 + 512 - 1
    assert e["abs_rel"] == pytest.approx(0.5 * inside_20 / (512 * 1664))
    assert e["a1"] == pytest.approx(1 - inside_20 / (512 * 1664))


def test_accumulator_averages_images_not_pixels():
    acc = DepthErrorAccumulator()
    acc.add(compute_depth_errors(np.array([2.0]), np.array([1.0]), median_scaling=False))  # abs_rel 0.5
    acc.add(compute_depth_errors(np.full(99, 3.0), np.full(99, 3.0), median_scaling=False))  # abs_rel 0
    assert acc.count == 2 and acc.compute()["abs_rel"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="no image"):
        DepthErrorAccumulator().compute()


# ----------------------------------------------------------------------------------------------- segmentation


def test_panoptic_quality_on_constructed_label_maps():
    road, person, car = 0, 11, 13
    gt = np.full((10, 10), road * 1000)
    gt[0:4, 0:4] = car * 1000 + 1  # 16 px
    gt[8:10, 8:10] = person * 1000 + 1  # 4 px, missed by the prediction
    gt[9, 0:5] = 255 * 1000  # void, 5 px
    pred = np.full((10, 10), road * 1000)
    pred[0:4, 0:5] = car * 1000 + 1  # 20 px, IoU 16/20 with the car
    pred[5:7, 5:7] = car * 1000 + 2  # a car that is not there: FP
    metric = PanopticQualityMetric()
    metric.update(pred, torch.from_numpy(gt))
    s = metric.compute()
    # road: pred 76 px (5 on void, 4 on the person), gt 75 px, intersection 67, union 76 - 5 + 75 - 67 = 79
    road_pq, car_pq = 67 / 79, 0.8 * (1 / (1 + 0.5))
    assert set(s.per_class) == {road, person, car}
    assert s.per_class[car] == pytest.approx((car_pq, 0.8, 2 / 3))
    assert s.per_class[person] == (0.0, 0.0, 0.0)
    assert s.per_class[road] == pytest.approx((road_pq, road_pq, 1.0))
    assert s.pq == pytest.approx((road_pq + car_pq + 0) / 3)
    assert s.sq == pytest.approx((road_pq + 0.8 + 0) / 3)
    assert s.rq == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert (s.pq_th, s.pq_st) == (pytest.approx(car_pq / 2), pytest.approx(road_pq))


def test_panoptic_crowd_ground_truth_is_void():
    gt = np.zeros((6, 6), dtype=np.int64)
    gt[0:2, 0:2] = 13000  # a car region without instance id (crowd)
    pred = gt.copy()
    pred[0:2, 0:2] = 13001  # a predicted car on the crowd region is neither TP nor FP
    metric = PanopticQualityMetric()
    metric.update(pred, gt)
    s = metric.compute()
    assert set(s.per_class) == {0} and s.pq == pytest.approx(1.0) and math.isnan(s.pq_th)


def test_panoptic_ground_truth_left_void_by_the_prediction_is_a_false_negative():
    gt = np.zeros((6, 6), dtype=np.int64)  # road
    gt[0:3, 0:3] = 13001  # a car the prediction leaves void
    pred = np.zeros((6, 6), dtype=np.int64)
    pred[0:3, 0:3] = 255000
    metric = PanopticQualityMetric()
    metric.update(pred, gt)
    s = metric.compute()
    assert set(s.per_class) == {0, 13} and s.per_class[13] == (0.0, 0.0, 0.0)  # the car: one false negative
    assert s.per_class[0] == pytest.approx((1.0, 1.0, 1.0)) and s.pq == pytest.approx(0.5)
    nothing = PanopticQualityMetric()
    nothing.update(np.full((6, 6), 255000), gt)  # an all-void prediction scores 0, not "undefined"
    assert nothing.compute().pq == 0.0


def test_panoptic_refuses_unknown_categories_and_empty_state():
    with pytest.raises(ValueError, match=r"categories \[30\]"):
        PanopticQualityMetric().update(np.full((2, 2), 30000), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="undefined"):
        PanopticQualityMetric().compute()


def test_miou_by_hand_and_against_torchmetrics():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 255]])
    metric = MeanIoUMetric()
    metric.update(pred, gt)
    s = metric.compute()
    assert s.per_class == pytest.approx({0: 1 / 3, 1: 2 / 3, 2: 1 / 2})
    assert s.miou == pytest.approx(0.5)
    reference = MulticlassJaccardIndex(num_classes=19, ignore_index=255)(torch.tensor(pred), torch.tensor(gt))
    assert s.miou == pytest.approx(float(reference))


def test_miou_counts_a_void_prediction_as_a_miss():
    metric = MeanIoUMetric()
    metric.update(torch.tensor([[3, 255]]), torch.tensor([[3, 3]]))
    assert metric.compute().per_class == {3: 0.5}
    with pytest.raises(ValueError, match=r"labels \[40\]"):
        metric.update(np.zeros((1, 2)), np.array([[40, 0]]))


def square(size, rows, cols):
    mask = np.zeros((size, size), dtype=bool)
    mask[rows, cols] = True
    return mask


def test_mask_ap_known_values():
    gt = square(20, slice(0, 10), slice(0, 10))[None]
    partial = square(20, slice(0, 8), slice(0, 9))[None]  # 72 px inside the 100 px car: IoU 0.72
    metric = MaskAPMetric()
    metric.update(partial, [13], [0.9], gt, [13])
    # matched at IoU thresholds 0.50, 0.55, 0.60, 0.65, 0.70: 5 of 10
    assert metric.compute() == pytest.approx({"AP": 0.5, "AP50": 1.0, "AP75": 0.0})


def test_mask_ap_ranks_by_score():
    gt = square(20, slice(0, 10), slice(0, 10))[None]
    preds = np.stack([square(20, slice(12, 20), slice(12, 20)), gt[0]])  # a wrong mask and a perfect one
    for scores, expected in (([0.9, 0.1], 0.5), ([0.1, 0.9], 1.0)):
        metric = MaskAPMetric()
        metric.update(preds, torch.tensor([13, 13]), torch.tensor(scores), gt, [13])
        assert metric.compute()["AP"] == pytest.approx(expected)


def test_mask_ap_edge_cases():
    gt = square(8, slice(0, 4), slice(0, 4))[None]
    metric = MaskAPMetric()
    metric.update(np.zeros((0, 8, 8), bool), [], [], gt, [11])
    assert metric.compute() == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with pytest.raises(ValueError, match="no ground-truth instance"):
        MaskAPMetric().compute()
    with pytest.raises(ValueError, match="thing classes"):
        MaskAPMetric().update(gt, [0], [1.0], gt, [11])


def test_instances_from_panoptic():
    panoptic = np.array([[13001, 13002, 13000], [11001, 0, 255000]])
    masks, labels = instances_from_panoptic(panoptic)
    assert labels.tolist() == [11, 13, 13]
    assert [np.argwhere(m).tolist() for m in masks] == [[[1, 0]], [[0, 0]], [[0, 1]]]


# ------------------------------------------------------------------------------------------ motion, pose, steering


def test_motion_mask_precision_recall_f1():
    metric = MotionMaskMetric()
    metric.update(np.array([[0.9, 0.2], [0.6, 0.4]]), np.array([[1, 0], [0, 1]]))  # tp 1, fp 1, fn 1
    assert metric.compute() == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    metric.update(torch.tensor([[True, True]]), torch.tensor([[True, True]]), valid=np.array([[True, False]]))
    assert (metric.tp, metric.fp, metric.fn) == (2, 1, 1)
    assert metric.compute()["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    empty = MotionMaskMetric()
    empty.update(np.zeros((3, 3)), np.zeros((3, 3), bool))
    assert empty.compute() == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        empty.update(np.array([np.nan]), np.array([True]))


def test_trajectory_from_relative_poses():
    steps = np.stack([pose(rot_y(math.pi / 2), [0, 0, 1]), pose(np.eye(3), [0, 0, 1])])
    traj = trajectory_from_relative_poses(torch.from_numpy(steps))
    np.testing.assert_allclose(traj[:, :3, 3], [[0, 0, 0], [0, 0, 1], [1, 0, 1]], atol=1e-12)


def test_snippet_ate_by_hand():
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    pred = np.array([[0.0, 0, 0], [1, 1, 0], [2, 1, 0]])
    # scale 5/7; residuals (-2/7, 5/7, 0), (-4/7, 5/7, 0) -> sum of squares 70/49
    assert snippet_ate(gt, pred) == pytest.approx(math.sqrt(70 / 49) / 3)
    assert snippet_ate(gt, pred + [3.0, -1.0, 2.0]) == pytest.approx(math.sqrt(70 / 49) / 3)
    assert snippet_ate(gt, 2.5 * gt) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="does not move"):
        snippet_ate(gt, np.zeros((3, 3)))


def test_snippet_ates_are_zero_for_a_scaled_trajectory():
    angles = np.linspace(0, 0.6, 8)
    translations = np.stack([np.sin(angles) * 4, np.zeros(8), np.arange(8.0)], axis=1)
    gt = np.stack([pose(rot_y(a), t) for a, t in zip(angles, translations)])
    pred = np.stack([pose(rot_y(a), 2.5 * t) for a, t in zip(angles, translations)])
    ates = snippet_ates(gt, pred)
    assert ates.shape == (4,) and np.all(ates < 1e-12)
    noisy = pred.copy()
    noisy[5, 1, 3] += 1.0
    assert (snippet_ates(gt, noisy) > 1e-3).tolist() == [False, True, True, True]  # frame 5: windows 1..3


def test_sequence_ate_after_similarity_alignment():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(12, 3))
    rotation = rot_y(0.7) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    pred = 2.5 * gt @ rotation.T + [4.0, -2.0, 1.0]
    scale, r, t = umeyama_alignment(gt, pred)
    assert scale == pytest.approx(2.5) and np.allclose(r, rotation) and np.allclose(t, [4, -2, 1])
    assert sequence_ate(gt, pred) == pytest.approx(0.0, abs=1e-9)
    # square in the x-z plane, points pushed +-1 along y: optimal alignment keeps R = I, t = 0, scale 2/3
    square_xz = np.array([[1.0, 0, 1], [-1, 0, 1], [-1, 0, -1], [1, 0, -1]])
    bumped = square_xz + np.array([[0, 1.0, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0]])
    assert sequence_ate(square_xz, bumped) == pytest.approx(math.sqrt(2 / 3))
    assert sequence_ate(square_xz, bumped, with_scale=False) == pytest.approx(1.0)


def test_zero_motion_ate_is_the_spread_about_the_centroid_and_the_limit_of_a_shrinking_prediction():
    gt = np.array([[0.0, 0, 0], [2, 0, 0], [4, 0, 0], [6, 0, 0]])  # centroid (3, 0, 0): distances 3, 1, 1, 3
    assert zero_motion_ate(gt) == pytest.approx(math.sqrt(5.0))
    bent = np.array([[0.0, 0, 0], [1e-9, 0, 0], [2e-9, 1e-9, 0], [3e-9, 0, 0]])  # a wrong, nearly static guess
    assert sequence_ate(gt, bent) <= zero_motion_ate(gt) + 1e-9


def test_motion_evaluation_chains_relative_poses_and_counts_moving_pixels():
    from uni_encoder_core.eval.accumulate import MotionEvaluation
    from uni_encoder_core.eval.predict import PairPrediction

    poses = [np.eye(4) for _ in range(5)]
    for i, p in enumerate(poses):  # drive 2 m per frame along z while turning about y
        p[:3, :3], p[:3, 3] = rot_y(0.1 * i), [0.3 * i * i, 0.0, 2.0 * i]
    evaluation = MotionEvaluation()
    evaluation.start(poses[0])
    gt_mask = np.zeros((4, 6), bool)
    gt_mask[1:3, 2:4] = True
    for i in range(1, 5):
        half_scale = np.linalg.inv(poses[i - 1]) @ poses[i]
        half_scale[:3, 3] *= 0.5  # a monocular network's translation, half the metric one
        predicted = np.zeros((4, 6))  # the mask's left column (2 of its 4 pixels) and one static pixel
        predicted[1:3, 2] = predicted[0, 0] = 0.9
        evaluation.add(PairPrediction(half_scale, predicted), gt_mask, poses[i])
    got = evaluation.compute()
    assert got["frames"] == 5 and got["ate"] == pytest.approx(0.0, abs=1e-9)
    assert got["ate_zero_motion"] == pytest.approx(zero_motion_ate(np.stack(poses)))
    assert (got["motion_precision"], got["motion_recall"], got["motion_f1"]) == pytest.approx((2 / 3, 0.5, 4 / 7))
    with pytest.raises(ValueError, match="start"):
        MotionEvaluation().add(PairPrediction(np.eye(4), np.zeros((4, 6))), gt_mask, np.eye(4))


def test_steering_mse_and_weighted_mse():
    assert mse([1.0, 2.0, 3.0], torch.tensor([1.0, 1.0, 1.0])) == pytest.approx(5 / 3)
    lam = math.log(3) / 2  # weights exp(lam * |y|): 1 for y = 0, 3 for |y| = 2
    assert weighted_mse([1.0, 0.0], [0.0, -2.0], lam) == pytest.approx((1 * 1 + 3 * 4) / 4)
    assert weighted_mse([1.0, 0.0], [0.0, 2.0], 0.0) == mse([1.0, 0.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="equally many"):
        mse([1.0], [1.0, 2.0])


def test_tenfold_splits_are_contiguous_and_cover_everything():
    folds = list(tenfold_splits(23))
    assert len(folds) == 10
    assert [len(test) for _, test in folds] == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert folds[0][1].tolist() == [0, 1, 2] and folds[-1][1].tolist() == [21, 22]
    assert np.concatenate([test for _, test in folds]).tolist() == list(range(23))
    for train, test in folds:
        assert np.all(np.diff(test) == 1)
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(23))
    with pytest.raises(ValueError, match="one sample per fold"):
        next(tenfold_splits(9))


def test_fold_summary_uses_population_std():
    summary = summarize_folds([1.0, 2.0, 3.0, 4.0])
    assert summary == MeanStd(2.5, pytest.approx(math.sqrt(1.25)))
    assert summarize_folds([1.0, 2.0, 3.0, 4.0], ddof=1).std == pytest.approx(math.sqrt(5 / 3))
    assert str(summary) == "2.50 ± 1.12"


# ------------------------------------------------------------------------------------------------------ tables


def test_segmentation_table_text():
    text = format_segmentation_table([SegmentationRow("OneFormer [16]", 0.558, 0.284, 0.743),
                                      SegmentationRow("Ours", 0.56, 0.2861, 0.742)])
    assert text == (
        "Model           PQ (↑)  AP (↑)  IoU (↑)\n"
        "--------------  ------  ------  -------\n"
        "OneFormer [16]    55.8    28.4     74.3\n"
        "Ours              56.0    28.6     74.2\n"
    )


def test_depth_table_text_and_markdown():
    row = DepthRow("Ours", 1, "CS", dict(abs_rel=0.1064, sq_rel=1.033, rmse=5.9131, rmse_log=0.158, a1=0.888,
                                         a2=0.974, a3=0.98249))
    assert format_depth_table([row]).splitlines() == [
        "Method  #f  D   Abs Rel (↓)  Sq Rel (↓)  RMSE (↓)  RMSE log (↓)  δ<1.25 (↑)  δ<1.25² (↑)  δ<1.25³ (↑)",
        "------  --  --  -----------  ----------  --------  ------------  ----------  -----------  -----------",
        "Ours    1   CS        0.106       1.033     5.913         0.158       0.888        0.974        0.982",
    ]
    assert format_depth_table([row], markdown=True) == (
        "| Method | #f | D | Abs Rel (↓) | Sq Rel (↓) | RMSE (↓) | RMSE log (↓) "
        "| δ<1.25 (↑) | δ<1.25² (↑) | δ<1.25³ (↑) |\n"
        "| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: |\n"
        "| Ours | 1 | CS | 0.106 | 1.033 | 5.913 | 0.158 | 0.888 | 0.974 | 0.982 |\n"
    )


def test_steering_table_text():
    text = format_steering_table([SteeringRow("(3) Swin-AttnPool", MeanStd(1.64, 1.63), MeanStd(5.41, 6.06)),
                                  SteeringRow("CNN-LSTM", summarize_folds([0.19, 0.19]), MeanStd(13.174, 3.85))])
    assert text == (
        "Model              Training error    Test error\n"
        "-----------------  --------------  ------------\n"
        "(3) Swin-AttnPool     1.64 ± 1.63   5.41 ± 6.06\n"
        "CNN-LSTM              0.19 ± 0.00  13.17 ± 3.85\n"
    )


def test_missing_table_values_print_as_a_dash():
    assert format_steering_table([SteeringRow("head", None, MeanStd(2.5, 0.5))]).splitlines()[-1] == (
        "head                —  2.50 ± 0.50")
    assert format_segmentation_table([SegmentationRow("m", 0.5, None, 0.25)]).splitlines()[-1] == (
        "m        50.0       —     25.0")
