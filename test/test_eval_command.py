"""``uni-encoder eval``: the paper's tables for a tiny random checkpoint, checked against the metric functions applied
here, independently, to the same frames; real-data fixtures in their official layouts; named errors."""

import json

import numpy as np
import pytest
import torch
from cityscapes_fixture import make_cityscapes
from kitti_fixture import DATE, DRIVE, make_kitti
from lane_keeping_fixture import write_recording

from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.data.cityscapes import CityscapesDepthEvalDataset
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.eval.depth import DEPTH_METRICS, cityscapes_depth_errors, compute_depth_errors, resize_depth
from uni_encoder_core.eval.pose import sequence_ate
from uni_encoder_core.eval.segmentation import (
    MaskAPMetric,
    MeanIoUMetric,
    PanopticQualityMetric,
    instances_from_panoptic,
)
from uni_encoder_core.eval.tables import DEPTH_HEADERS
from uni_encoder_core.models.checkpoint import load_checkpoint, save_checkpoint
from uni_encoder_core.models.segmentation import to_instance, to_panoptic, to_semantic
from uni_encoder_core.models.unified import UniEncoder

FRAMES, SEED = 36, 3  # two 18-frame chunks: three 16-frame steering windows each


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_thread):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(UniEncoder(load_config("config/model/tiny.yaml", ModelConfig)), path)
    return path


def run_eval(capsys, *args):
    code = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@torch.no_grad()
def independent_synthetic_numbers(checkpoint):
    """Every table's numbers computed here from the model, the world and the metric functions."""
    model = load_checkpoint(checkpoint)
    world = SyntheticWorld(WorldConfig(seed=SEED, height=64, width=128, num_frames=FRAMES))
    pq, ap, miou = PanopticQualityMetric(), MaskAPMetric(), MeanIoUMetric()
    depth_errors, coarsest, curvature, features, relative, tp_fp_fn = [], [], [], [], [], np.zeros(3)
    for i in range(FRAMES):
        f = world.frame(i)
        feats = model.encode(torch.from_numpy(f.rgb).permute(2, 0, 1)[None].float() / 255)
        depth = model.predict_depth(feats)[1][0, 0].numpy()
        depth_errors.append(compute_depth_errors(f.depth, resize_depth(depth, 64, 128)))
        seg = model.predict_segmentation(feats, ["panoptic", "instance", "semantic"])
        thresholds = (model.cfg.segmentation.object_threshold, model.cfg.segmentation.overlap_threshold)
        pq.update(to_panoptic(seg["panoptic"].class_logits, seg["panoptic"].mask_logits, (64, 128), *thresholds)[0],
                  f.panoptic)
        miou.update(to_semantic(seg["semantic"].class_logits, seg["semantic"].mask_logits, (64, 128))[0], f.semantic)
        inst = to_instance(seg["instance"].class_logits, seg["instance"].mask_logits, (64, 128), *thresholds)
        masks = inst.id_map[0].numpy()[None] == np.arange(1, len(inst.classes[0]) + 1)[:, None, None]
        ap.update(masks, inst.classes[0], inst.scores[0], *instances_from_panoptic(f.panoptic))
        coarsest.append(feats[-1])
        curvature.append(f.curvature)
        if features:
            T, axis_angle, translation = model.predict_pose(features[-1], feats)
            moving = model.predict_motion(features[-1], feats, axis_angle, translation)[1][0, 0].numpy() > 0.5
            relative.append(T[0].double().numpy())
            truth = f.motion_mask
            tp_fp_fn += [np.sum(moving & truth), np.sum(moving & ~truth), np.sum(~moving & truth)]
        features.append(feats)
    trajectory = [np.eye(4)]
    for step in relative:
        trajectory.append(trajectory[-1] @ step)
    gt_positions = np.stack([world.pose(i)[:3, 3] for i in range(FRAMES)])
    tp, fp, fn = tp_fp_fn
    fold_mse = []
    for chunk in (range(0, 18), range(18, 36)):  # windows end at the 16th..18th frame of each chunk
        pred = [float(model.predict_steering(torch.stack(coarsest[t - 15:t + 1], dim=1))[0]) for t in chunk[15:]]
        fold_mse.append(np.mean((100 * np.array(pred) - 100 * np.array(curvature)[list(chunk[15:])]) ** 2))
    return {"depth": {k: np.mean([e[k] for e in depth_errors]) for k in DEPTH_METRICS},
            "pq": pq.compute().pq, "ap": ap.compute()["AP"], "miou": miou.compute().miou, "fold_mse": fold_mse,
            "motion_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "ate": sequence_ate(gt_positions, np.stack(trajectory)[:, :3, 3]),
            "ate_zero_motion": float(np.sqrt(np.mean(np.sum((gt_positions - gt_positions.mean(0)) ** 2, axis=1))))}


def test_synthetic_eval_prints_all_three_tables_with_numbers_of_the_metric_functions(checkpoint, tmp_path, capsys):
    code, out, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "synthetic", "--frames", FRAMES,
                              "--seed", SEED, "--folds", 2, "--out", tmp_path / "eval")
    assert code == 0, err
    for title in ("TABLE II", "TABLE III", "TABLE IV"):
        assert title in out
    for column in ("PQ (↑)", "AP (↑)", "IoU (↑)", "Method", "#f", *DEPTH_HEADERS, "Training error", "Test error"):
        assert column in out
    assert "eval synthetic" in err and "36/36" in err  # the progress bar
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    expected = independent_synthetic_numbers(checkpoint)
    assert result["depth"]["images"] == FRAMES and result["depth"]["protocol"] == "full_frame"
    for k in DEPTH_METRICS:
        assert result["depth"][k] == pytest.approx(expected["depth"][k], rel=1e-6)
    seg = result["segmentation"]
    assert (seg["pq"], seg["ap"], seg["miou"]) == pytest.approx((expected["pq"], expected["ap"], expected["miou"]))
    motion = result["motion"]
    assert motion["frames"] == FRAMES
    assert (motion["motion_f1"], motion["ate"], motion["ate_zero_motion"]) == pytest.approx(
        (expected["motion_f1"], expected["ate"], expected["ate_zero_motion"]), rel=1e-6)
    assert "Motion mask (F1 of moving pixels, %) and odometry" in out
    assert f"{100 * motion['motion_f1']:.1f}" in out and f"{motion['ate']:.3f}" in out
    steering = result["steering"]
    assert [f["windows"] for f in steering["folds"]] == [3, 3]
    assert [f["mse"] for f in steering["folds"]] == pytest.approx(expected["fold_mse"], rel=1e-6)
    assert steering["mse"]["mean"] == pytest.approx(np.mean(expected["fold_mse"]), rel=1e-6)
    assert steering["mse"]["std"] == pytest.approx(np.std(expected["fold_mse"]), rel=1e-6)
    assert f"{steering['mse']['mean']:.2f} ± {steering['mse']['std']:.2f}" in out
    for name in ("tables.txt", "tables.md", "depth.png", "segmentation.png", "steering.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "| Model | PQ (↑) | AP (↑) | IoU (↑) |" in (tmp_path / "eval" / "tables.md").read_text()


def test_synthetic_eval_of_a_synth_folder_equals_rendering_on_the_fly(checkpoint, tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "synth"), "--frames", str(FRAMES), "--seed", str(SEED),
                 "--height", "64", "--width", "128"]) == 0
    args = ["--checkpoint", checkpoint, "--dataset", "synthetic", "--folds", 2]
    assert run_eval(capsys, *args, "--root", tmp_path / "synth", "--out", tmp_path / "stored")[0] == 0
    assert run_eval(capsys, *args, "--frames", FRAMES, "--seed", SEED, "--out", tmp_path / "rendered")[0] == 0
    stored, rendered = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("stored", "rendered"))
    for table in ("depth", "segmentation", "steering"):
        assert stored[table] == rendered[table]
    # a finished report is never mixed with a new one: refused before any work, replaced whole with --overwrite
    code, _, err = run_eval(capsys, *args, "--root", tmp_path / "synth", "--out", tmp_path / "stored")
    assert code == 2 and "not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "stored" / "old.txt").write_text("old")
    assert run_eval(capsys, *args, "--root", tmp_path / "synth", "--out", tmp_path / "stored", "--overwrite")[0] == 0
    assert not (tmp_path / "stored" / "old.txt").exists() and (tmp_path / "stored" / "results.json").exists()


def test_cityscapes_eval_gives_tables_two_and_three_under_the_manydepth_protocol(checkpoint, tmp_path, capsys):
    root = make_cityscapes(tmp_path / "cityscapes")
    code, out, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "cityscapes", "--root", root,
                              "--split", "train", "--out", tmp_path / "eval")
    assert code == 0, err
    assert "OneFormer [16]" in out and "ManyDepth [33]" in out and "Monodepth2 [19]" not in out
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert result["split"] == "train" and result["depth"]["protocol"] == "cityscapes"
    assert result["depth"]["images"] == 3 and result["segmentation"]["images"] == 3
    model = load_checkpoint(checkpoint)
    data = CityscapesDepthEvalDataset(root, "train", (64, 128))
    with torch.no_grad():
        errors = [cityscapes_depth_errors(s.gt_depth, model.predict_depth(model.encode(s.images[1:]))[1])
                  for s in (data[i] for i in range(3))]
    assert result["depth"]["abs_rel"] == pytest.approx(np.mean([e["abs_rel"] for e in errors]), rel=1e-6)


def test_kitti_eval_gives_table_three_on_the_eigen_split(checkpoint, tmp_path, capsys):
    root = make_kitti(tmp_path / "kitti")
    split = tmp_path / "test_files.txt"
    split.write_text(f"{DATE}/{DRIVE} 1 l\n{DATE}/{DRIVE} 2 r\n")
    code, out, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "kitti", "--root", root,
                              "--split-file", split, "--out", tmp_path / "eval")
    assert code == 0, err
    assert "Monodepth2 [19]" in out and "ManyDepth [33]" not in out and "TABLE II:" not in out
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert result["depth"]["protocol"] == "eigen" and result["depth"]["images"] == 2
    # one lidar point per image survives the Garg crop: a single pixel, so every ratio is exact after median scaling
    assert result["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-9) and result["depth"]["a1"] == 1.0


def test_lane_keeping_eval_gives_table_four_per_held_out_chunk(checkpoint, tmp_path, capsys):
    write_recording(tmp_path / "drive.h5", n=40)
    code, out, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "lane_keeping", "--root", tmp_path,
                              "--folds", 2, "--out", tmp_path / "eval")
    assert code == 0, err
    assert "CNN-LSTM 64 units [4]" in out and "TABLE III" not in out
    ours = [line for line in out.splitlines() if line.startswith("tiny.pt")]
    assert len(ours) == 2 and all(line.split()[1] == "—" for line in ours)  # MSE, weighted MSE: no training error
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert [f["windows"] for f in result["steering"]["folds"]] == [5, 5]  # 20-frame chunks, 16-frame windows
    assert result["depth"] is None and result["segmentation"] is None
    assert (tmp_path / "eval" / "steering.png").is_file()


def test_bad_input_fails_with_one_line_naming_the_problem(checkpoint, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, _, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "cityscapes", "--root", missing)
    assert code == 2 and f"root {missing} does not exist" in err
    code, _, err = run_eval(capsys, "--checkpoint", tmp_path / "none.pt", "--dataset", "synthetic")
    assert code == 2 and "checkpoint file not found" in err
    code, _, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "kitti", "--root", tmp_path)
    assert code == 2 and "needs --split-file" in err
    code, _, err = run_eval(capsys, "--checkpoint", checkpoint, "--dataset", "synthetic", "--frames", 20)
    assert code == 2 and "fewer than one 16-frame steering window" in err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--checkpoint", str(checkpoint), "--dataset", "nuscenes"])
    assert exc.value.code == 2 and "invalid choice: 'nuscenes'" in capsys.readouterr().err
