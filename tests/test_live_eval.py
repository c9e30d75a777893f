"""Live evaluation: a scripted model over a hand-made stream, hand-computed figures; the CLI on a real model."""

import json
import types

import numpy as np
import pytest
from click.testing import CliRunner
from edge_fixtures import CLASS_NAMES, person_depth, tiny_model  # noqa: F401

from kerasdance.camera import KINECT_V1
from kerasdance.config import DataConfig
from kerasdance.data.dataset import Dataset, write_generic
from kerasdance.data.splits import split
from kerasdance.data.types import Sequence
from kerasdance_edge.cli import main
from kerasdance_edge.live_eval import evaluate_live, replay_order

CFG = DataConfig(frames=8, crop_size=32)
LEN = 12  # frames per recording
DELAY = 3  # the scripted model names the move of 3 frames ago


@pytest.fixture(scope="module")
def stream_data(tmp_path_factory):
    """Six test-subject recordings (subjects 2 and 4 are cross-subject test subjects), labels chosen so that
    consecutive recordings of the replay order mostly differ, plus one training recording that is never replayed."""
    root = tmp_path_factory.mktemp("live")
    depth = person_depth(LEN)
    labels = [0, 1, 2, 1, 0, 2]
    seqs = [Sequence(f"take{k}", depth, None, label=lab, subject=2 + 2 * (k % 2), episode=k + 1)
            for k, lab in enumerate(labels)]
    seqs.append(Sequence("train0", depth, None, label=0, subject=1, episode=1))
    write_generic(root, seqs, CLASS_NAMES, KINECT_V1)
    return root


def _replay_order(root, seed=0):
    ds = Dataset.open(root)
    refs = [r for r in split(ds.refs, "cross-subject", ds.class_names).test if "depth" in r.modalities]
    order = replay_order(refs, seed)
    subjects = [r.subject for r in order]
    assert sorted(order, key=lambda r: r.name) == sorted(refs, key=lambda r: r.name)
    assert sum(a != b for a, b in zip(subjects, subjects[1:])) == len(set(subjects)) - 1  # one performer at a time
    return order


def _scripted_model(truth: np.ndarray, resets_every: int | None = None):
    """A stand-in for ``EdgeModel``: at its n-th call (one per frame with a person) it names the move of frame
    n - DELAY (clipped to the recording's start when the tracker is reset per recording)."""
    calls = []

    def predict(x):
        n = len(calls)
        calls.append(x.shape)
        start = (n // resets_every) * resets_every if resets_every else 0
        probs = np.full(len(CLASS_NAMES), 0.1, np.float32)
        probs[truth[max(n - DELAY, start)]] = 0.8
        return np.zeros((CFG.frames, 20, 3), np.float32), probs

    return types.SimpleNamespace(predict=predict, data_config=CFG, intrinsics=KINECT_V1, class_names=CLASS_NAMES,
                                 input_mode="depth", path="scripted", calls=calls)


def test_continuous_stream_lag_and_accuracy_line_up_with_the_move_changes(stream_data):
    order = _replay_order(stream_data)
    truth = np.repeat([r.label for r in order], LEN)
    model = _scripted_model(truth)
    rep = evaluate_live(model, stream_data, modes=("continuous",))
    m = rep["modes"]["continuous"]
    assert rep["recordings"] == 6 and m["frames"] == 6 * LEN == len(model.calls)
    changes = int((np.diff([r.label for r in order]) != 0).sum())
    assert m["move_changes"] == changes > 0 and m["move_changes_missed"] == 0
    assert m["lag_frames_median"] == m["lag_frames_p90"] == DELAY and m["lag_s_median"] == pytest.approx(DELAY / 15)
    # the move shows from the 8th frame (a full window); then wrong for DELAY frames after each change
    assert m["move_frames_share"] == pytest.approx((6 * LEN - 7) / (6 * LEN))
    assert m["move_accuracy_frames"] == pytest.approx((6 * LEN - 7 - DELAY * changes) / (6 * LEN))
    assert m["move_accuracy_shown"] == pytest.approx((6 * LEN - 7 - DELAY * changes) / (6 * LEN - 7))
    assert m["keypoint_frames_share"] == 1.0 and m["first_keypoints_frames_median"] == 0
    assert m["n_joints"] == 0  # no skeleton files: no key-point truth


def test_alone_mode_resets_before_each_recording(stream_data):
    order = _replay_order(stream_data)
    truth = np.repeat([r.label for r in order], LEN)
    m = evaluate_live(_scripted_model(truth, resets_every=LEN), stream_data, modes=("alone",))["modes"]["alone"]
    assert m["move_frames_share"] == pytest.approx((LEN - 7) / LEN)  # every recording warms up afresh
    assert m["move_accuracy_frames"] == pytest.approx((LEN - 7) / LEN) and m["move_accuracy_shown"] == 1.0
    assert m["move_accuracy_at_end"] == 1.0
    assert m["first_keypoints_frames_median"] == 0 and m["first_keypoints_frames_max"] == 0


def test_wrong_classes_and_modes_are_refused(stream_data):
    model = _scripted_model(np.zeros(100, int))
    with pytest.raises(ValueError, match="modes"):
        evaluate_live(model, stream_data, modes=("live",))
    model.class_names = ("a", "b", "c")
    with pytest.raises(ValueError, match="classes"):
        evaluate_live(model, stream_data)


def test_eval_command_on_a_real_model(tiny_model, stream_data, tmp_path):  # noqa: F811
    out = tmp_path / "live.json"
    res = CliRunner().invoke(main, ["eval", "--model", str(tiny_model.path), "--data", str(stream_data), "--json",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert "move, all labelled frames" in res.output and "lag after a move change" in res.output
    rep = json.loads(out.read_text())
    assert set(rep["modes"]) == {"alone", "continuous"}
    for m in rep["modes"].values():
        assert m["frames"] == 6 * LEN and m["keypoint_frames_share"] == 1.0
        assert 0.0 <= m["move_accuracy_frames"] <= 1.0 and m["latency_ms_p50"] > 0


def test_per_frame_labels_score_frame_by_frame(tmp_path):
    """A continuous recording (per-frame labels, -1 between moves): the lag is measured inside the recording."""
    labels = np.array([0] * 10 + [-1] * 2 + [1] * 12 + [2] * 12)
    seqs = [Sequence("perf", person_depth(len(labels)), None, subject=2, frame_labels=labels),
            Sequence("train0", person_depth(12), None, label=0, subject=1)]
    write_generic(tmp_path, seqs, CLASS_NAMES, KINECT_V1)
    model = _scripted_model(np.maximum(labels, 0))
    m = evaluate_live(model, tmp_path, modes=("continuous",))["modes"]["continuous"]
    assert m["frames"] == len(labels) and m["labelled_frames"] == len(labels) - 2
    # 0 -> 1 after a pause: the model names frame n - 3, which is the pause (class 0 here) for the first 3 frames
    assert m["move_changes"] == 2 and m["move_changes_missed"] == 0
    assert m["lag_frames_median"] == DELAY and m["move_accuracy_at_end"] == 1.0
