"""Training on continuous recordings: moves cut with the context a live window reaches back to, windows timed in
seconds at the recording's own frame rate."""

import numpy as np
import pytest

from kerasdance.camera import KINECT_V1
from kerasdance.config import DataConfig
from kerasdance.data import pipeline
from kerasdance.data import preprocess as pp
from kerasdance.data import synthetic as S
from kerasdance.data.dataset import Dataset, write_generic

CFG = DataConfig(frames=8, crop_size=16)
SMALL = KINECT_V1.scaled(80, 60)


def test_move_pieces_cut_each_move_with_its_context():
    fl = np.array([-1, -1, 0, 0, 0, -1, 1, 1, 2, 2, -1])
    assert pipeline.move_pieces(fl, 2) == [(0, 2, 5, 0), (4, 6, 8, 1), (6, 8, 10, 2)]
    assert pipeline.move_pieces(fl, 0) == [(2, 2, 5, 0), (6, 6, 8, 1), (8, 8, 10, 2)]
    assert pipeline.move_pieces(np.full(5, -1), 3) == [] and pipeline.move_pieces(np.zeros(0), 3) == []
    assert pipeline.move_pieces(np.array([3, 3, 3]), 5) == [(0, 0, 3, 3)]


@pytest.fixture(scope="module")
def continuous(tmp_path_factory):
    """One 30-fps take of three moves, written in the generic layout; its sequence and the prepared moves."""
    seq = S.generate_performance("dance11", 2, 1, seed=1, fps=30.0, moves=3, intrinsics=SMALL)
    root = tmp_path_factory.mktemp("perf")
    write_generic(root, [seq], S.class_names("dance11"), SMALL, fps=30.0)
    ds = Dataset.open(root)
    return seq, pipeline.prepare(ds, ds.refs, CFG)


def test_a_continuous_recording_trains_as_its_moves_with_context(continuous):
    seq, prep = continuous
    context = round(CFG.frames / 15 * 30) - 1  # the live window's span at 30 fps, minus its last frame
    pieces = pipeline.move_pieces(seq.frame_labels, context)
    assert len(prep) == len(pieces) == 3
    assert list(prep.labels) == [lab for *_, lab in pieces] and all(prep.labels >= 0)
    assert np.allclose(prep.fps, 30.0) and list(prep.subjects) == [2, 2, 2]
    valid = seq.depth_valid
    for i, (a, m, e, _) in enumerate(pieces):
        assert prep.names[i] == f"{seq.name}@{m}"
        assert prep.offsets[i + 1] - prep.offsets[i] == valid[a:e].sum()
        assert prep.anchors[i] == valid[a:m].sum()  # context before the move: what the tracker saw
        clip = prep.clip_of(i)
        # the move's frames (the truth's joints) are exactly the labelled frames of the recording
        want = seq.joints_m[np.arange(m, e)[valid[m:e]]]
        np.testing.assert_array_equal(prep.joints_m[clip], want)
    assert prep.anchors[0] <= context and all(prep.anchors[1:] == context)
    sub = prep.subset([2, 0])
    assert list(sub.anchors) == [prep.anchors[2], prep.anchors[0]] and np.allclose(sub.fps, 30.0)


def test_live_windows_span_the_same_seconds_at_any_frame_rate(continuous):
    _, prep = continuous
    assert prep.live_span(0, CFG) == 16  # 8 frames at 15 fps = 0.53 s = 16 frames at 30 fps
    sampler = pipeline.WindowSampler(prep, CFG, live=True)
    i = 1
    n = prep.offsets[i + 1] - prep.offsets[i]
    start = prep.offsets[i]
    for end in (prep.anchors[i], n - 1):
        idx, _ = sampler.live_window(i, int(end))
        first = max(0, int(end) - 16 + 1)
        np.testing.assert_array_equal(idx, start + first + pp.window_indices(int(end) - first + 1, CFG))
        assert idx[-1] == start + end and idx[0] == start + first  # 16 frames back, 8 picked evenly
    # every augmented live window ends inside the move, never in the context before it
    rng = np.random.default_rng(0)
    ends = []
    orig = sampler.live_window
    sampler.live_window = lambda j, end: (ends.append(end), orig(j, end))[1]
    for _ in range(50):
        sampler.window(i, rng, pipeline.Augment())
    assert min(ends) >= prep.anchors[i] and max(ends) <= n - 1 and len(set(ends)) > 5


def test_offline_windows_cover_the_move_only(continuous):
    from kerasdance.config import RunConfig
    from kerasdance.evaluate import window_frames

    _, prep = continuous
    cfg = RunConfig(data=CFG)
    for i in range(len(prep)):
        clip = prep.clip_of(i)
        idx = window_frames(prep, i, cfg)
        assert idx.min() >= clip.start and idx.max() == clip.stop - 1
    x = pipeline.WindowSampler(prep, CFG, augment=None).eval_windows()["x"]
    assert x.shape == (len(prep), CFG.frames, CFG.crop_size, CFG.crop_size, CFG.channels)
