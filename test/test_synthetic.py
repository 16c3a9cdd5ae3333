"""The synthetic world obeys physics: known geometry in, exact numbers out."""

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from uni_encoder_core.data.samples import collate
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.data.synthetic.datasets import (
    SyntheticSegmentationDataset,
    SyntheticSteeringDataset,
    SyntheticTripletDataset,
)

CFG = WorldConfig(seed=7, height=96, width=256, num_frames=40)
ROAD, SIDEWALK, SKY, CAR = 0, 1, 10, 13


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(CFG)


@pytest.fixture(scope="module")
def frames(world):
    return [world.frame(i) for i in range(0, 12)]


def backproject(depth, K):
    v, u = np.mgrid[: depth.shape[0], : depth.shape[1]]
    return np.stack([(u - K[0, 2]) / K[0, 0] * depth, (v - K[1, 2]) / K[1, 1] * depth, depth], axis=-1)


def to_camera(points, T_world_src, T_world_dst):
    T = np.linalg.inv(T_world_dst) @ T_world_src
    return points @ T[:3, :3].T + T[:3, 3]


def project(points, K):
    z = points[..., 2]
    return K[0, 0] * points[..., 0] / z + K[0, 2], K[1, 1] * points[..., 1] / z + K[1, 2], z


def bilinear(image, u, v):
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    a, b = (u - u0)[..., None], (v - v0)[..., None]
    img = image.astype(np.float64)
    return ((1 - a) * (1 - b) * img[v0, u0] + a * (1 - b) * img[v0, u0 + 1]
            + (1 - a) * b * img[v0 + 1, u0] + a * b * img[v0 + 1, u0 + 1])


def test_road_depth_is_the_analytic_ground_plane_depth(frames):
    K, h = frames[0].K, CFG.camera_height
    checked = 0
    for f in frames[:4]:
        v, u = np.nonzero(np.isin(f.semantic, (ROAD, SIDEWALK)))
        assert (v > K[1, 2]).all()  # the ground is only seen below the horizon
        np.testing.assert_allclose(f.depth[v, u], h * K[1, 1] / (v - K[1, 2]), rtol=1e-5)
        checked += len(v)
    assert checked > 4 * 0.2 * CFG.height * CFG.width


def test_scene_layout_and_labels(frames):
    for f in frames:
        assert f.rgb.shape == (96, 256, 3) and f.rgb.dtype == np.uint8
        assert f.depth.dtype == np.float32 and f.scene_flow.shape == (96, 256, 3)
        assert set(np.unique(f.semantic)) <= {0, 1, 2, 5, 8, 9, 10, 13}
        np.testing.assert_array_equal(f.panoptic, f.semantic.astype(np.int32) * 1000 + f.instance)
        np.testing.assert_array_equal(f.instance > 0, f.semantic == CAR)
        np.testing.assert_array_equal(f.depth == 0, f.semantic == SKY)
        assert f.semantic[-1, 128] == ROAD  # straight ahead, just in front of the car
        np.testing.assert_allclose(f.T_world_cam[:3, :3] @ f.T_world_cam[:3, :3].T, np.eye(3), atol=1e-12)
        assert f.T_world_cam[2, 3] == pytest.approx(CFG.camera_height)
        assert f.T_world_cam[:3, 1] @ [0, 0, 1] == pytest.approx(-1.0)  # level camera: image y points down
    present = set(np.unique(np.stack([f.semantic for f in frames])))
    assert {ROAD, SIDEWALK, 2, SKY, CAR} <= present
    assert any((f.semantic[0] == SKY).any() for f in frames)
    assert len(set(np.unique(np.stack([f.instance for f in frames])))) > 3  # several cars


def reprojection(a, b, T_world_b):
    """Pixels of static points of frame a (within 60 m) projected into frame b seen from ``T_world_b``."""
    X = to_camera(backproject(a.depth, a.K), a.T_world_cam, T_world_b)
    u, v, z = project(X, a.K)
    ok = (a.depth > 0) & (a.depth < 60) & ~a.motion_mask & (z > 0.1) & (u >= 0) & (v >= 0) & (u < 255) & (v < 95)
    return np.where(ok, u, 0), np.where(ok, v, 0), z, ok


def test_reprojection_with_true_pose_and_depth_reproduces_static_pixels(frames):
    errors, medians, wrong_pose, baseline, shifted, depth_agree = [], [], [], [], [], []
    for a, b in zip(frames[:6], frames[1:7]):
        u, v, z, ok = reprojection(a, b, b.T_world_cam)
        zb = b.depth[np.round(v).astype(int), np.round(u).astype(int)]
        visible = ok & (np.abs(zb - z) < 0.03 * z)
        depth_agree.append(visible.sum() / ok.sum())
        error = np.abs(bilinear(b.rgb, u, v) - a.rgb)[visible]
        errors.append(error.mean())
        medians.append(np.median(error))
        T_off = b.T_world_cam.copy()
        T_off[:3, 3] += 0.3 * T_off[:3, 2]  # 30 cm along the optical axis
        u2, v2, _, ok2 = reprojection(a, b, T_off)
        wrong_pose.append(np.abs(bilinear(b.rgb, u2, v2) - a.rgb)[visible & ok2].mean())
        baseline.append(np.abs(b.rgb.astype(float) - a.rgb)[visible].mean())
        shifted.append(np.abs(np.roll(a.rgb, 2, axis=1).astype(float) - a.rgb)[visible].mean())
    assert min(depth_agree) > 0.9  # the warped depth agrees with the next frame's own depth
    assert np.mean(errors) < 0.25 * np.mean(baseline)  # the next frame, not warped
    assert np.mean(errors) < 0.4 * np.mean(shifted)  # the image shifted by two pixels
    assert np.mean(errors) < 0.6 * np.mean(wrong_pose)
    assert np.mean(errors) < 5.0 and np.mean(medians) < 1.0  # grey levels out of 255; edges cost the mean


def test_scene_flow_is_the_moving_cars_displacement(world, frames):
    moving_ids = set(world.traffic.shape.instance.tolist())
    seen = 0
    for i, (a, b) in enumerate(zip(frames[:8], frames[1:9])):
        np.testing.assert_array_equal(a.motion_mask, np.isin(a.instance, list(moving_ids)))
        assert not a.scene_flow[~a.motion_mask].any()
        if not a.motion_mask.any():
            continue
        assert (np.linalg.norm(a.scene_flow[a.motion_mask], axis=-1) > 0.05).all()
        # the car's own displacement, in camera frame i, bounds the flow of every point on it
        R_cw = a.T_world_cam[:3, :3].T
        for inst in np.unique(a.instance[a.motion_mask]):
            x0, y0, h0 = world.car_pose(np.array([inst]), i)
            x1, y1, h1 = world.car_pose(np.array([inst]), i + 1)
            centre = R_cw @ np.array([x1[0] - x0[0], y1[0] - y0[0], 0.0])
            flow = a.scene_flow[a.instance == inst]
            assert np.abs(flow - centre).max() <= abs(h1[0] - h0[0]) * 4.0 + 1e-4
        # moving the seen points by their flow and the camera lands them on the same car in frame i+1
        X = backproject(a.depth, a.K) + a.scene_flow
        u, v, z = project(to_camera(X, a.T_world_cam, b.T_world_cam), a.K)
        m = a.motion_mask & (u >= 0) & (v >= 0) & (u <= 255) & (v <= 95)
        ui, vi = np.round(u[m]).astype(int), np.round(v[m]).astype(int)
        same = (b.instance[vi, ui] == a.instance[m]) & (np.abs(b.depth[vi, ui] - z[m]) < 0.05 * z[m] + 0.05)
        assert same.mean() > 0.85
        seen += m.sum()
    assert seen > 100
    parked = np.stack([(f.semantic == CAR) & ~f.motion_mask for f in frames])
    assert parked.any()  # parked cars are cars but not moving


def test_curvature_sign_and_value_follow_the_trajectory():
    w = SyntheticWorld(WorldConfig(seed=3, num_frames=600, height=8, width=16))
    poses = np.stack([w.pose(i) for i in range(600)])
    k = np.array([w.curvature(i) for i in range(600)])
    yaw = np.unwrap(np.arctan2(poses[:, 1, 2], poses[:, 0, 2]))
    step = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    np.testing.assert_allclose(step, CFG.speed / CFG.fps, rtol=1e-3)  # constant speed along the lane
    rate = np.diff(yaw) / step
    mid = 0.5 * (k[1:] + k[:-1])
    turning = np.abs(mid) > 0.005
    assert (np.sign(rate[turning]) == np.sign(mid[turning])).all()
    np.testing.assert_allclose(rate, mid, atol=1e-3)
    assert (k > 0.01).any() and (k < -0.01).any() and np.abs(k).max() <= 0.05 / (1 - 0.05 * 1.75) + 1e-9
    angles = np.array([w.steering_angle(i) for i in range(0, 600, 50)])
    np.testing.assert_allclose(angles, np.arctan(2.7 * k[::50]))


def test_same_seed_identical_bytes_in_any_order():
    a, b = SyntheticWorld(CFG), SyntheticWorld(CFG)
    b.frame(9)
    fa, fb = a.frame(5), b.frame(5)
    for name in ("rgb", "depth", "semantic", "instance", "panoptic", "K", "T_world_cam", "scene_flow",
                 "motion_mask"):
        assert getattr(fa, name).tobytes() == getattr(fb, name).tobytes(), name
    assert (fa.curvature, fa.stamp) == (fb.curvature, fb.stamp)
    other = SyntheticWorld(WorldConfig(seed=8, height=96, width=256, num_frames=40)).frame(5)
    assert np.abs(other.rgb.astype(int) - fa.rgb).mean() > 10
    # and in a fresh process (no state shared through imports, hashing or thread counts)
    code = ("import hashlib, sys; from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig; "
            "f = SyntheticWorld(WorldConfig(seed=7, height=96, width=256, num_frames=40)).frame(5); "
            "data = f.rgb.tobytes() + f.depth.tobytes() + f.scene_flow.tobytes(); "
            "sys.stdout.write(hashlib.sha256(data).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out == hashlib.sha256(fa.rgb.tobytes() + fa.depth.tobytes() + fa.scene_flow.tobytes()).hexdigest()


def test_bad_configuration_and_index_are_named(tmp_path, capsys):
    from uni_encoder_core.cli import main

    def refused(argv: list[str], message: str) -> None:
        assert main(["synth", "--out", str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err

    refused(["--height", "0"], "height must be a positive integer")
    refused(["--frames", "0"], "num_frames must be a positive integer, got 0")
    refused(["--frames", "5000"], "num_frames 5000 needs more than 999 car instance ids")  # panoptic id overflow
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "metadata.yaml").write_text("a bag\n")
    refused(["--frames", "1", "--bag", str(tmp_path / "taken")], "taken: output directory is not empty")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="height"):
        WorldConfig(height=0)
    with pytest.raises(ValueError, match="max_curvature"):
        WorldConfig(max_curvature=0.5)
    with pytest.raises(IndexError, match="num_frames"):
        SyntheticWorld(WorldConfig(height=8, width=16, num_frames=5)).frame(5)


def test_datasets_give_typed_samples_with_exact_ground_truth(world, frames):
    triplets = SyntheticTripletDataset(world)
    assert len(triplets) == CFG.num_frames - 2
    s = triplets[3]  # target frame 4
    assert s.images.shape == (3, 3, 96, 256)
    torch.testing.assert_close(s.target, torch.from_numpy(frames[4].rgb).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(s.images[0], torch.from_numpy(frames[3].rgb).permute(2, 0, 1).float() / 255)
    T = np.linalg.inv(frames[5].T_world_cam) @ frames[4].T_world_cam
    torch.testing.assert_close(s.T_target_to_source[2], torch.from_numpy(T).float())
    torch.testing.assert_close(s.T_target_to_source[1], torch.eye(4))
    torch.testing.assert_close(s.scene_flow[2], torch.from_numpy(frames[4].scene_flow).permute(2, 0, 1))
    assert not s.scene_flow[1].any()
    assert s.T_target_to_source[2, 2, 3] == pytest.approx(-1.0, abs=0.02)  # 1 m forward per frame
    batch = collate([triplets[0], triplets[1]])
    assert batch.images.shape == (2, 3, 3, 96, 256) and batch.target.shape == (2, 3, 96, 256)
    assert batch.offsets == (-1, 0, 1)

    seg = SyntheticSegmentationDataset(world)[2]
    assert seg.semantic.dtype == torch.int64
    np.testing.assert_array_equal(seg.panoptic.numpy(), frames[2].panoptic)

    steer = SyntheticSteeringDataset(world, window=16)
    assert len(steer) == CFG.num_frames - 15
    win = steer[1]
    assert win.images.shape == (16, 3, 96, 256)
    assert win.target.item() == pytest.approx(world.curvature(16), abs=1e-7)
    np.testing.assert_allclose(np.diff(win.stamps.numpy()), 1 / CFG.fps)
    with pytest.raises(IndexError):
        steer[len(steer)]


def test_collate_rejects_mixed_ground_truth(world):
    s = SyntheticTripletDataset(world)[0]
    bare = type(s)(images=s.images, K=s.K)
    with pytest.raises(ValueError, match="depth"):
        collate([s, bare])
    assert math.isclose(float(collate([bare, bare]).K[1, 0, 0]), float(s.K[0, 0]))


def test_synth_command_writes_frames_meta_sheet_and_a_readable_bag(tmp_path):
    import json

    import cv2
    from rosbags.rosbag2 import Reader

    from uni_encoder_core.bags.writer import IMAGE_TOPICS, typestore
    from uni_encoder_core.cli import main

    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--frames", "3", "--seed", "4", "--height", "48", "--width", "128",
                 "--bag", str(tmp_path / "drive.mcap")]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["frames"] == [f"frame_{i:06d}.npz" for i in range(3)]
    assert meta["camera_height"] == 1.5 and meta["wheelbase"] == 2.7 and meta["fps"] == 10.0
    assert meta["classes"][13]["name"] == "car" and meta["classes"][13]["thing"]
    assert [c["train_id"] for c in meta["classes"] if c["thing"]] == list(range(11, 19))
    assert [c["train_id"] for c in meta["classes"] if c["present"]] == [0, 1, 2, 5, 8, 9, 10, 13]
    world = SyntheticWorld(WorldConfig(seed=4, height=48, width=128, num_frames=3))
    np.testing.assert_allclose(meta["K"], world.K)
    stored = [np.load(out / name) for name in meta["frames"]]
    assert set(stored[0].files) >= {"rgb", "depth", "semantic", "instance", "panoptic", "K", "T_world_cam",
                                    "scene_flow", "motion_mask", "curvature", "stamp"}
    f1 = world.frame(1)
    for key in ("rgb", "depth", "panoptic", "scene_flow", "T_world_cam"):
        assert stored[1][key].tobytes() == np.asarray(getattr(f1, key)).tobytes()
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (3 * 48, 4 * 128, 3)

    store = typestore()
    with Reader(tmp_path / "drive") as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics["/camera/image_raw"] == "sensor_msgs/msg/Image"
        assert topics["/ground_truth/steering"] == "ackermann_msgs/msg/AckermannDriveStamped"
        msgs = {}
        for conn, stamp, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((stamp, store.deserialize_cdr(raw, conn.msgtype)))
    assert all(len(v) == 3 for v in msgs.values())
    for i, (stamp, img) in enumerate(msgs["/camera/image_raw"]):
        header_ns = img.header.stamp.sec * 10**9 + img.header.stamp.nanosec
        assert stamp == round(float(stored[i]["stamp"]) * 1e9) == header_ns
        assert (img.encoding, img.height, img.width, img.step) == ("rgb8", 48, 128, 3 * 128)
        assert bytes(img.data) == stored[i]["rgb"].tobytes()
    np.testing.assert_allclose(msgs["/camera/camera_info"][0][1].k, world.K.ravel())
    curv = [m.data for _, m in msgs["/ground_truth/curvature"]]
    np.testing.assert_allclose(curv, [float(s["curvature"]) for s in stored])
    steer = msgs["/ground_truth/steering"][2][1].drive.steering_angle
    assert steer == pytest.approx(math.atan(2.7 * curv[2]), abs=1e-6)
    odom = msgs["/ground_truth/odom"][2][1]
    assert odom.pose.pose.position.x == pytest.approx(stored[2]["T_world_cam"][0, 3])
    assert odom.twist.twist.linear.x == pytest.approx(10.0)
    for topic, (field, encoding, dtype) in IMAGE_TOPICS.items():  # every ground-truth image, value for value
        img = msgs[topic][0][1]
        got = np.frombuffer(bytes(img.data), dtype).reshape(stored[0][field].shape)
        want = {"depth": stored[0]["depth"], "motion_mask": stored[0]["motion_mask"] * 255}.get(field, stored[0][field])
        assert img.encoding == encoding and img.header.frame_id == "camera_optical_frame", topic
        np.testing.assert_array_equal(np.nan_to_num(got, nan=0.0), want.astype(dtype), err_msg=topic)
