import os
import sys
import threading

import numpy as np
import pytest

from kerasdance.config import DataConfig
from kerasdance.data import pipeline
from kerasdance.data import preprocess as pp
from kerasdance.skeleton import mirror_joints

CFG = DataConfig(frames=8, crop_size=32)


def test_hide_labels_removes_labels_and_keypoints(prepared):
    labelled = np.zeros(len(prepared), bool)
    labelled[:3] = True
    hidden = pipeline.hide_labels(prepared, labelled)
    assert np.all(hidden.labels[3:] == -1) and np.all(hidden.labels[:3] == prepared.labels[:3])
    for i in range(3, len(prepared)):
        s = hidden.frames_of(i)
        assert hidden.joint_mask[s].sum() == 0 and np.all(hidden.joints_norm[s] == 0)
        assert np.all(np.isnan(hidden.joints_m[s]))
    assert prepared.labels.min() >= 0  # the original is untouched
    keep_kp = pipeline.hide_labels(prepared, labelled, keypoints_for_all=True)
    assert keep_kp.joint_mask.sum() == prepared.joint_mask.sum() and np.all(keep_kp.labels[3:] == -1)


def test_training_batches_never_carry_hidden_labels_or_keypoints(prepared):
    labelled = np.arange(len(prepared)) < 4
    hidden = pipeline.hide_labels(prepared, labelled)
    sampler = pipeline.WindowSampler(hidden, CFG, seed=0)
    seen = 0
    for b in sampler.epoch(0, 5, strong=pipeline.Augment.strong()):
        unl = ~labelled[b["index"]]
        assert np.all(b["label"][unl] == -1) and np.all(b["labelled"][unl] == 0)
        assert np.all(b["mask"][unl] == 0) and np.all(b["joints"][unl] == 0)
        seen += len(b["index"])
    assert seen == len(prepared)


def test_sampler_is_a_pure_function_of_seed_and_epoch(prepared):
    a = list(pipeline.WindowSampler(prepared, CFG, seed=3).epoch(2, 4))
    b = list(pipeline.WindowSampler(prepared, CFG, seed=3).epoch(2, 4))
    c = list(pipeline.WindowSampler(prepared, CFG, seed=3).epoch(3, 4))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["x"], y["x"])
    assert not all(np.array_equal(x["x"], z["x"]) for x, z in zip(a, c, strict=True))


def test_affine_joints_is_the_inverse_map_of_affine_crops():
    S = 64
    crop = np.full((1, S, S), pp.BACKGROUND, np.float32)
    r, c = 20, 40  # a single marked pixel
    crop[0, r, c] = 0.0
    a = (c + 0.5) / S * 2 - 1
    b = (r + 0.5) / S * 2 - 1
    rot, scale, shift = 0.2, 1.1, np.array([0.05, -0.03])
    out = pipeline.affine_crops(crop, rot, scale, shift)
    ja, jb, _ = pipeline.affine_joints(np.array([[a, b, 0.0]]), rot, scale, shift)[0]
    rr, cc = np.argwhere(out[0] == 0.0).mean(axis=0)
    assert abs(((cc + 0.5) / S * 2 - 1) - ja) < 2.5 / S and abs(((rr + 0.5) / S * 2 - 1) - jb) < 2.5 / S


def test_eval_windows_match_preprocess_resampling(prepared):
    sampler = pipeline.WindowSampler(prepared, CFG, augment=None)
    w = sampler.eval_windows()
    assert w["x"].shape == (len(prepared), 8, 32, 32, 2)
    s = prepared.frames_of(1)
    idx = s.start + pp.resample_indices(s.stop - s.start, 8)
    np.testing.assert_array_equal(w["x"][1, ..., 0], prepared.crops[idx].astype(np.float32))


def test_subset_keeps_frames_aligned(prepared):
    sub = prepared.subset([4, 1])
    assert sub.names == ["s4", "s1"]
    np.testing.assert_array_equal(sub.crops[sub.frames_of(1)], prepared.crops[prepared.frames_of(1)])


def test_mixed_batches_carry_the_labelled_share(prepared):
    labelled = np.arange(len(prepared)) < 2  # 2 labelled, 10 unlabelled
    hidden = pipeline.hide_labels(prepared, labelled)
    sampler = pipeline.WindowSampler(hidden, CFG, seed=0, labelled_share=0.5)
    batches = list(sampler.epoch(0, 4))
    assert len(batches) == sampler.num_batches(4) == 5  # one pass over the 10 unlabelled, 2 per batch
    for b in batches:
        assert b["labelled"].sum() == 2
    unl = np.concatenate([b["index"][b["labelled"] == 0] for b in batches])
    assert sorted(unl.tolist()) == list(range(2, 12))


def test_supervised_batches_skip_sequences_without_targets(prepared):
    labelled = np.arange(len(prepared)) < 3  # 3 labelled, 9 that carry nothing once hidden
    hidden = pipeline.hide_labels(prepared, labelled)
    sampler = pipeline.WindowSampler(hidden, CFG, seed=0, targets_only=True)
    np.testing.assert_array_equal(sampler.with_targets(), [0, 1, 2])
    batches = list(sampler.epoch(0, 4))
    assert len(batches) == sampler.num_batches(4) == 3  # the epoch keeps its length...
    idx = np.concatenate([b["index"] for b in batches])
    assert set(idx.tolist()) == {0, 1, 2} and np.bincount(idx).tolist() == [4, 4, 4]  # ...cycling the 3
    assert all(b["labelled"].all() for b in batches)
    # key-points kept for all (--keypoints-for-all): every sequence carries a target, nothing is skipped
    keep = pipeline.WindowSampler(pipeline.hide_labels(prepared, labelled, keypoints_for_all=True), CFG, seed=0,
                                  targets_only=True)
    assert sorted(np.concatenate([b["index"] for b in keep.epoch(0, 4)]).tolist()) == list(range(len(prepared)))
    # all labelled: the same order as a plain sampler (full-label runs are unchanged)
    plain = [b["index"] for b in pipeline.WindowSampler(prepared, CFG, seed=0).epoch(1, 4)]
    only = [b["index"] for b in pipeline.WindowSampler(prepared, CFG, seed=0, targets_only=True).epoch(1, 4)]
    for a, b in zip(plain, only, strict=True):
        np.testing.assert_array_equal(a, b)


def test_prefetch_keeps_order_and_raises_the_producers_error():
    assert list(pipeline.prefetch(iter(range(5)))) == [0, 1, 2, 3, 4]
    assert list(pipeline.prefetch([])) == []

    def failing():
        yield 1
        raise ValueError("bad batch")

    it = pipeline.prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad batch"):
        next(it)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_prefetch_can_lower_its_threads_priority_only():
    def niceness():
        while True:
            yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if mine >= 19:
        pytest.skip("already at the lowest priority")
    probe = []
    t = threading.Thread(target=lambda: probe.append(_may_lower_priority()))
    t.start()
    t.join()
    if not probe[0]:
        pytest.skip("this sandbox does not let a thread lower its own priority")
    it = pipeline.prefetch(niceness(), niceness=5)
    assert next(it) == min(19, mine + 5)
    it.close()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the consumer's is unchanged
    assert next(pipeline.prefetch(niceness())) == mine


def _may_lower_priority() -> bool:
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + 1)
        return True
    except OSError:
        return False


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    import threading

    made = []

    def endless():
        while True:
            made.append(len(made))
            yield made[-1]

    it = pipeline.prefetch(endless())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # as when a training step raises: the thread must not keep producing
    n = len(made)
    assert n <= 4  # at most one item ahead
    assert not any(t.name.startswith("kerasdance-prefetch") for t in threading.enumerate())
    assert len(made) == n


def _still(**kw) -> pipeline.Augment:
    """An augmentation with no random geometry, noise or temporal crop: only what ``kw`` turns on."""
    return pipeline.Augment(rotation_rad=0, scale=0, shift=0, depth_noise=0, temporal_crop=1.0, **kw)


def _plain_and(prepared, **kw):
    """Window 1 of ``prepared`` without augmentation, and with only ``kw``'s (same random stream)."""
    sampler = pipeline.WindowSampler(prepared, CFG)
    return (sampler.window(1, np.random.default_rng(0), _still()),
            sampler.window(1, np.random.default_rng(0), _still(**kw)))


def test_mirror_flips_the_crops_and_swaps_left_and_right_joints(prepared):
    from kerasdance.skeleton import MIRROR, Joint

    (x, j, m, _), (xm, jm, mm, _) = _plain_and(prepared, mirror=1.0)
    np.testing.assert_array_equal(xm[..., 0], x[:, :, ::-1, 0])  # columns flipped: the depth is the same
    L, R = Joint.HAND_LEFT, Joint.HAND_RIGHT
    np.testing.assert_allclose(jm[:, L], j[:, R] * [-1, 1, 1])  # the right hand, on the other side, is now left
    np.testing.assert_allclose(jm[:, R], j[:, L] * [-1, 1, 1])
    np.testing.assert_array_equal(mm, m[:, list(MIRROR)])
    np.testing.assert_allclose(mirror_joints(mirror_joints(j)), j)  # an involution
    # The mirrored joint lands on the mirrored pixel: column c of a crop of S is at a = (c + 0.5) / S * 2 - 1.
    S = CFG.crop_size
    crop = np.full((1, S, S), pp.BACKGROUND, np.float32)
    crop[0, 5, 9] = 0.0
    flipped = crop[:, :, ::-1]
    col = np.argwhere(flipped[0] == 0.0)[0, 1]
    a = (9 + 0.5) / S * 2 - 1
    joint = np.zeros((1, 20, 3))
    joint[0, Joint.HAND_RIGHT, 0] = a
    assert mirror_joints(joint)[0, Joint.HAND_LEFT, 0] == (col + 0.5) / S * 2 - 1


def test_mirror_window_is_the_mirrored_scenes_window_and_the_flip_test_undoes_it(prepared):
    from kerasdance.skeleton import flip_average, mirror_window

    (x, j, _, _), (xm, jm, _, _) = _plain_and(prepared, mirror=1.0)
    np.testing.assert_array_equal(mirror_window(x), xm)  # both channels: depth and its frame difference
    np.testing.assert_array_equal(mirror_window(mirror_window(x)), x)
    np.testing.assert_array_equal(mirror_window(x[None])[0], xm)  # a batch axis in front
    # A model that sees the mirrored scene exactly mirrored: the flip test gives its own answer back.
    np.testing.assert_allclose(flip_average(j, jm), j, atol=1e-6)
    # Errors e on the window and d on its mirror (mirrored back) average to (e + d) / 2.
    e, d = np.full_like(j, 0.02), np.full_like(j, -0.06)
    np.testing.assert_allclose(flip_average(j + e, mirror_joints(j + d)), j - 0.02, atol=1e-6)


def test_predict_windows_flip_test_averages_the_keypoints_only(prepared):
    from kerasdance.inference import predict_windows
    from kerasdance.skeleton import flip_average, mirror_window

    seen = []

    def model(x, training=False):  # key-points from the left half of the image: not mirror-symmetric
        seen.append(np.asarray(x))
        left = np.asarray(x)[:, :, :, : x.shape[3] // 2].mean(axis=(2, 3, 4))  # (n, T)
        kp = np.broadcast_to(left[:, :, None, None], left.shape + (20, 3)) * np.arange(1, 61).reshape(20, 3)
        return {"logits": np.asarray(x).mean(axis=(1, 2, 3))[:, :1] * np.ones((1, 3)), "keypoints": kp}

    sampler = pipeline.WindowSampler(prepared, CFG, augment=None)
    plain = predict_windows(model, sampler, batch_size=4)
    seen.clear()
    flip = predict_windows(model, sampler, batch_size=4, flip_test=True)
    np.testing.assert_array_equal(seen[1], mirror_window(seen[0]))  # the second look is at the mirrored window
    mirrored = np.concatenate([model(mirror_window(b), False)["keypoints"] for b in seen[0::2]])
    np.testing.assert_allclose(flip["keypoints"], flip_average(plain["keypoints"], mirrored), rtol=1e-6)
    assert not np.allclose(flip["keypoints"], plain["keypoints"])
    np.testing.assert_array_equal(flip["logits"], plain["logits"])  # the class from the window as it is


def test_mirror_off_draws_nothing_from_the_random_stream(prepared):
    sampler = pipeline.WindowSampler(prepared, CFG, augment=pipeline.Augment(mirror=0.0))
    a = list(sampler.epoch(0, 4))
    b = list(pipeline.WindowSampler(prepared, CFG, augment=pipeline.Augment()).epoch(0, 4))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["x"], y["x"])
    on = list(pipeline.WindowSampler(prepared, CFG, augment=pipeline.Augment(mirror=0.5)).epoch(0, 4))
    assert not all(np.array_equal(x["x"], y["x"]) for x, y in zip(a, on, strict=True))


def test_edge_cut_blanks_one_side_of_a_line_near_an_edge_in_every_frame():
    S = 32
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        x = np.zeros((3, S, S), np.float32)  # a body filling the crop
        pipeline.cut_at_edge(x, rng)
        bg = x == pp.BACKGROUND
        assert np.array_equal(bg[0], bg[1]) and np.array_equal(bg[0], bg[2])  # one line for the window
        rows, cols = np.flatnonzero(bg[0].all(axis=1)), np.flatnonzero(bg[0].all(axis=0))
        assert (rows.size == 0) != (cols.size == 0)  # full rows or full columns, not both
        assert bg[0].sum() == S * max(rows.size, cols.size)  # and nothing else
        lines = rows if rows.size else cols
        assert lines[-1] - lines[0] + 1 == lines.size  # one contiguous band...
        edge = ("top" if lines[0] == 0 else "bottom") if rows.size else ("left" if lines[0] == 0 else "right")
        assert (lines[0] == 0) != (lines[-1] == S - 1)  # ...from one edge, never the whole crop
        (lo, hi), = [r for e, _, r in pipeline.EDGE_CUTS if e == edge]
        # The line, in normalised crop units, is within the edge's range (to a cell).
        line = (lines[-1] + 1 if lines[0] == 0 else lines[0]) / S * 2 - 1
        assert lo - 2 / S <= line <= hi + 2 / S
        seen.add(edge)
    assert seen == {"bottom", "top", "left", "right"}


def test_edge_cut_keeps_the_joint_targets_and_is_off_by_default(prepared):
    (x, j, m, _), (xc, jc, mc, _) = _plain_and(prepared, edge_cut=1.0)
    np.testing.assert_array_equal(jc, j)  # the joints beyond the frame's edge are still the targets
    np.testing.assert_array_equal(mc, m)
    depth = xc[..., 0]
    assert np.any(depth != x[..., 0]) and np.all((depth == x[..., 0]) | (depth == pp.BACKGROUND))
    assert pipeline.Augment().edge_cut == 0
    a = list(pipeline.WindowSampler(prepared, CFG, augment=pipeline.Augment()).epoch(0, 4))
    on = list(pipeline.WindowSampler(prepared, CFG, augment=pipeline.Augment(edge_cut=0.5)).epoch(0, 4))
    assert not all(np.array_equal(p["x"], q["x"]) for p, q in zip(a, on, strict=True))


def test_mirror_in_skeleton_mode_mirrors_the_joints_the_features_are_made_of(prepared):
    import dataclasses

    rng = np.random.default_rng(1)  # the fixture's skeletons are all alike: give them distinct joints
    prepared = dataclasses.replace(prepared, joints_m=rng.normal(0, 0.3, prepared.joints_m.shape).astype(np.float32))
    sampler = pipeline.WindowSampler(prepared, CFG, input_mode="skeleton")
    feats = sampler.window(2, np.random.default_rng(0), _still(mirror=1.0))[0]
    s = prepared.frames_of(2)
    idx = s.start + pp.resample_indices(s.stop - s.start, CFG.frames)
    expected = pp.skeleton_features(mirror_joints(prepared.joints_m[idx]), CFG)
    np.testing.assert_allclose(feats, expected, atol=1e-6)  # (the zero rotation still re-centres: rounding)
    assert not np.allclose(feats, pp.skeleton_features(prepared.joints_m[idx], CFG))


def test_live_windows_are_what_the_tracker_sees(tmp_path):
    """``live=True``: a training window ending at frame e is the tracker's window at e (the T frames up to e, the
    crop of those frames alone): joint targets exactly, crops up to the re-crop's nearest-pixel resampling."""
    from edge_fixtures import person_depth

    from kerasdance.camera import KINECT_V1
    from kerasdance.data.dataset import Dataset, write_generic
    from kerasdance.data.types import Sequence

    depth = person_depth(20)
    shift = np.zeros_like(depth)  # the dancer walks 40 px to the right and 0.6 m away over the recording
    for k in range(20):
        body = (depth[k] > 0) & (depth[k] < 4000)  # the dancer, not the wall
        depth[k][body] += np.uint16(30 * k)
        shift[k] = np.roll(depth[k], 2 * k, axis=1)
    joints = np.zeros((20, 20, 3), np.float32)
    joints[..., 0] = np.linspace(-0.3, 0.3, 20)[None]
    joints[..., 1] = np.linspace(-0.8, 0.8, 20)[None]
    joints[..., 2] = 2.5 + 0.03 * np.arange(20)[:, None]
    write_generic(tmp_path, [Sequence("walk", shift, joints, label=0)], ["a"], KINECT_V1)
    ds = Dataset.open(tmp_path)
    prep = pipeline.prepare(ds, ds.refs, CFG)
    sampler = pipeline.WindowSampler(prep, CFG, augment=_still(), live=True)
    for end in (3, 15):
        idx, recrop = sampler.live_window(0, end)
        assert recrop is not None and abs(recrop[1]) > 0.02 and abs(recrop[3]) > 0.05  # not the recording's crop
        first = max(0, end - CFG.frames + 1)
        np.testing.assert_array_equal(idx, first + pp.window_indices(end - first + 1, CFG))
        crop = pp.crop_from_stats(np.array([pp.frame_stats(f, CFG) for f in shift[first : end + 1]]), KINECT_V1, CFG)
        want_x = pp.make_window(shift, idx, CFG, crop=crop)  # what the tracker assembles from the camera's frames
        want_j, _ = pp.joint_targets(joints[idx], crop, KINECT_V1, CFG, CFG.frames)
        rng = _FixedEnd(end)
        x, j, mask, _ = sampler.window(0, rng, _still())
        np.testing.assert_allclose(j, want_j, atol=1e-5)
        assert np.mean(np.abs(x[..., 0] - want_x[..., 0]) > 0.05) < 0.06  # the re-crop's resampling only
        body = (want_x[..., 0] < pp.BACKGROUND) & (x[..., 0] < pp.BACKGROUND)
        assert abs(float(np.median(x[..., 0][body] - want_x[..., 0][body]))) < 0.01  # depth re-referenced
    # without live windows the same draw is the whole recording's temporal crop, as before
    assert not np.array_equal(pipeline.WindowSampler(prep, CFG, augment=_still()).window(0, _FixedEnd(3), _still())[0],
                              sampler.window(0, _FixedEnd(3), _still())[0])


class _FixedEnd:
    """A random stream whose integers are ``end`` (the live window's last frame); nothing else is drawn here."""

    def __init__(self, end):
        self.end = end

    def integers(self, lo, hi=None, size=None):
        return self.end

    def random(self):
        return 1.0

    def uniform(self, lo, hi, size=None):
        return np.full(size, lo) if size else lo
