"""Live evaluation: test recordings replayed frame by frame through the device's own tracker and model.

What a user sees on stage is the tracker's output at every frame, not a whole clip resampled to ``T``
frames with a crop computed from the whole clip. ``evaluate_live`` replays the test (or validation) split of a
dataset, the split the model was trained with where its sidecar records one (``kerasdance export``), through
``Tracker.update`` (the code ``kerasdance-edge track`` runs) and an ``EdgeModel`` in two modes:

* ``alone``: the tracker is reset before each recording (a dancer walks in and does a move);
* ``continuous``: the recordings back to back, never reset (continuous dancing: the move changes at every
  recording boundary whose label differs). One performer after the other (``replay_order``): each subject's
  recordings in a seeded random order, so that the dancer does not jump between places and distances at every
  boundary as a shuffle across subjects would make them.

Per mode it reports (``LiveReport.to_dict``): per-frame move accuracy over every labelled frame (a frame
without a move counts as wrong) and over the frames that have one, the share of frames with a move and
with key-points, move accuracy at each recording's last frame, per-frame key-point error (MPJPE, camera
metres, as offline) and share of joints within 10 cm, frames (and seconds) from a person appearing to the
first key-points, the lag from a move change until the right move shows (median and p90, frames and
seconds, and how many changes the move never caught before the next one), and the per-frame latency.

Labels come per frame where the dataset has them (``Sequence.frame_labels``, -1 = no move), else the
recording's label on every frame. Numpy only: runs on the device as well as on a workstation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from kerasdance.config import TrainConfig
from kerasdance.data.dataset import Dataset
from kerasdance.data.splits import split, split_record
from kerasdance.data.types import Sequence
from kerasdance.metrics import keypoint_summary
from kerasdance_edge.sources import Frame
from kerasdance_edge.tracker import Tracker

log = logging.getLogger("kerasdance.edge")

MODES = ("alone", "continuous")


def replay_order(refs: list, seed: int = 0) -> list:
    """``refs`` one subject after the other (subjects and each subject's recordings in a seeded random order)."""
    rng = np.random.default_rng(seed)
    subjects = sorted({-1 if r.subject is None else r.subject for r in refs})
    out = []
    for s in rng.permutation(subjects):
        mine = [r for r in refs if (-1 if r.subject is None else r.subject) == s]
        out += [mine[i] for i in rng.permutation(len(mine))]
    return out


def frame_labels(seq: Sequence) -> np.ndarray:
    """``(frames,)`` int64 class per frame: the sequence's per-frame labels, else its label everywhere (-1: none)."""
    per_frame = getattr(seq, "frame_labels", None)
    if per_frame is not None:
        return np.asarray(per_frame, np.int64)
    return np.full(seq.num_frames, -1 if seq.label is None else int(seq.label), np.int64)


@dataclasses.dataclass
class _Stream:
    """What one replay collected, frame by frame (concatenated over its recordings)."""

    labels: list = dataclasses.field(default_factory=list)  # true class per frame (-1 none)
    moves: list = dataclasses.field(default_factory=list)  # predicted class per frame (-1: no move output)
    has_joints: list = dataclasses.field(default_factory=list)
    person: list = dataclasses.field(default_factory=list)  # the frame shows somebody (non-empty depth)
    pred_joints: list = dataclasses.field(default_factory=list)  # (20, 3) where has_joints and truth exist
    true_joints: list = dataclasses.field(default_factory=list)
    latency_ms: list = dataclasses.field(default_factory=list)
    starts: list = dataclasses.field(default_factory=list)  # frame index where each recording starts
    lengths: list = dataclasses.field(default_factory=list)


def _replay(tracker: Tracker, sequences: list[Sequence], class_index: dict[str, int], fps: float, reset_each: bool,
            progress: Callable[[int, int], None] | None = None) -> _Stream:
    out = _Stream()
    n = 0
    for k, seq in enumerate(sequences):
        if reset_each or k == 0:
            tracker.configure(fps, seq.intrinsics)
        labels = frame_labels(seq)
        out.starts.append(len(out.labels))
        out.lengths.append(seq.num_frames)
        for i in range(seq.num_frames):
            depth = seq.depth_mm[i]
            res = tracker.update(Frame(depth, int(round(n * 1e6 / fps)), n))
            n += 1
            out.labels.append(int(labels[i]))
            out.person.append(bool(depth.any()))
            if res is None:  # skipped (wrong size): nothing shown
                out.moves.append(-1)
                out.has_joints.append(False)
                continue
            out.moves.append(class_index.get(res.move, -1) if res.move_ready else -1)
            out.has_joints.append(res.joints_ready)
            out.latency_ms.append(res.latency_ms)
            truth = None if seq.joints_m is None else seq.joints_m[i]
            if res.joints_ready and truth is not None and np.isfinite(truth).any():
                out.pred_joints.append(res.joints_m)
                out.true_joints.append(truth)
        if progress:
            progress(k + 1, len(sequences))
    return out


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _summarise(s: _Stream, fps: float, mode: str) -> dict:
    labels, moves = np.asarray(s.labels), np.asarray(s.moves)
    has_j, person = np.asarray(s.has_joints), np.asarray(s.person)
    lab = labels >= 0
    out: dict = {"mode": mode, "recordings": len(s.starts), "frames": int(labels.size), "fps": fps,
                 "labelled_frames": int(lab.sum()),
                 "move_accuracy_frames": float((moves[lab] == labels[lab]).mean()) if lab.any() else float("nan"),
                 "move_frames_share": float((moves >= 0).mean()) if moves.size else float("nan"),
                 "keypoint_frames_share": float(has_j.mean()) if has_j.size else float("nan")}
    shown = lab & (moves >= 0)
    out["move_accuracy_shown"] = float((moves[shown] == labels[shown]).mean()) if shown.any() else float("nan")
    ends = np.asarray(s.starts) + np.asarray(s.lengths) - 1
    end_lab = labels[ends] >= 0
    out["move_accuracy_at_end"] = float((moves[ends][end_lab] == labels[ends][end_lab]).mean()) if end_lab.any() \
        else float("nan")
    if s.pred_joints:
        out.update(keypoint_summary(np.stack(s.pred_joints), np.stack(s.true_joints)))
    else:
        out.update(mpjpe_mm=float("nan"), mpjpe_rel_mm=float("nan"), map_10cm=float("nan"), n_joints=0)
    # Time to the first key-points after a person appears, per recording (alone) or at the stream's start.
    firsts = []
    for st, ln in zip(s.starts if mode == "alone" else s.starts[:1], s.lengths):
        seen = np.flatnonzero(person[st : st + ln])
        got = np.flatnonzero(has_j[st : st + ln])
        if seen.size and got.size:
            firsts.append(int(got[0] - seen[0]))
    out["first_keypoints_frames_median"] = _pct(firsts, 50)
    out["first_keypoints_frames_max"] = float(max(firsts)) if firsts else float("nan")
    out["first_keypoints_s_median"] = out["first_keypoints_frames_median"] / fps
    # Lag after a move change: from the first frame of a new labelled move (another class than the last
    # labelled one) to the first frame showing it, within that move's run of frames.
    lags, missed, last = [], 0, -1
    i = 0
    while i < labels.size:
        if labels[i] < 0:
            i += 1
            continue
        j = i
        while j < labels.size and labels[j] == labels[i]:
            j += 1
        if last >= 0 and labels[i] != last:
            hit = np.flatnonzero(moves[i:j] == labels[i])
            if hit.size:
                lags.append(int(hit[0]))
            else:
                missed += 1
        last, i = int(labels[i]), j
    out.update(move_changes=len(lags) + missed, move_changes_missed=missed,
               lag_frames_median=_pct(lags, 50), lag_frames_p90=_pct(lags, 90),
               lag_s_median=_pct(lags, 50) / fps, lag_s_p90=_pct(lags, 90) / fps,
               latency_ms_p50=_pct(s.latency_ms, 50), latency_ms_p90=_pct(s.latency_ms, 90))
    return out


def model_split(model, protocol: str | None = None) -> dict:
    """The split ``model`` was trained with, as its sidecar records it (``splits.split_record``: protocol,
    train/val/test members, seed), else the cross-subject protocol's; ``protocol`` (not None) replaces the
    recorded protocol."""
    meta = getattr(model, "meta", None)
    record = dict(getattr(meta, "extra", {}).get("split") or {}) if meta is not None else {}
    if not record:
        record = split_record(TrainConfig())
    if protocol is not None:
        record["protocol"] = protocol
    return record


def evaluate_live(model, data_dir, protocol: str | None = None, modes=MODES, seed: int = 0,
                  limit: int | None = None, tracker_factory: Callable[..., Tracker] | None = None,
                  progress: Callable[[int, int], None] | None = None, part: str = "test") -> dict:
    """Replay the test (or validation) split of ``data_dir`` through the device's tracker and ``model``.

    Args:
        model: a depth ``EdgeModel`` (or anything with its interface).
        data_dir: a dataset folder (MSR-Action3D or generic layout) with the run's classes.
        protocol: the protocol of the split (None: the one the model's sidecar records, else cross-subject);
            custom and validation subjects come from the sidecar (``model_split``).
        modes: any of ``MODES``.
        seed: the order of the recordings in ``continuous`` mode.
        limit: replay only the first ``limit`` test recordings (of that order): a quick look.
        tracker_factory: ``(model) -> Tracker`` (default ``Tracker(model)``, as ``kerasdance-edge track --no-smooth``).
        progress: optional ``(done, total)`` over recordings.
        part: ``"test"``, or ``"val"``: the validation subjects the model was trained without (compare settings
            there, and replay the test split once).

    Returns:
        ``{"model", "data", "protocol", "split", "modes": {mode: figures}}`` (see the module docstring).

    Raises:
        ValueError: unknown mode or part, no recording with depth, classes that differ from the model's, a model
            without a recorded validation split for ``part="val"``.
    """
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be among {MODES}. Received: modes={list(modes)!r}")
    if part not in ("test", "val"):
        raise ValueError(f"part must be test or val. Received: part={part!r}")
    record = model_split(model, protocol)
    protocol = record["protocol"]
    if part == "val" and not record.get("val"):
        raise ValueError("the model's sidecar records no validation subjects: export a run trained with "
                         "--val-subjects (random --val-fraction sequences are not replayed)")
    ds = Dataset.open(data_dir)
    sp = split(ds.refs, protocol, ds.class_names, train=tuple(record.get("train", ())),
               val=record.get("val") if isinstance(record.get("val"), str) else tuple(record.get("val", ())),
               test=tuple(record.get("test", ())), seed=int(record.get("seed", 0)), strict=False)
    if tuple(sp.class_names) != tuple(model.class_names):
        raise ValueError(f"{data_dir} ({protocol}) has classes {list(sp.class_names)!r} but the model was trained "
                         f"on {list(model.class_names)!r}")
    refs = [r for r in (sp.val if part == "val" else sp.test) if "depth" in r.modalities]
    if not refs:
        raise ValueError(f"{data_dir}: no {part} recording with depth under protocol {protocol!r}")
    refs = replay_order(refs, seed)[:limit]
    sequences = [ds.load(r) for r in refs]
    fps = float(getattr(ds, "fps", None) or 15.0)
    class_index = {c: i for i, c in enumerate(model.class_names)}
    report = {"model": str(getattr(model, "path", "")), "data": str(data_dir), "protocol": protocol,
              "split": part, "recordings": len(sequences), "modes": {}}
    for mode in modes:
        tracker = tracker_factory(model) if tracker_factory else Tracker(model)
        stream = _replay(tracker, sequences, class_index, fps, reset_each=mode == "alone", progress=progress)
        report["modes"][mode] = _summarise(stream, fps, mode)
    return report


def format_live_report(report: dict) -> str:
    """A readable table of ``evaluate_live``'s report, one column per mode."""
    modes = list(report["modes"])
    rows = [("recordings / frames", lambda m: f"{m['recordings']} / {m['frames']}"),
            ("move, all labelled frames", lambda m: f"{m['move_accuracy_frames'] * 100:.1f}%"),
            ("move, frames showing one", lambda m: f"{m['move_accuracy_shown'] * 100:.1f}%"),
            ("frames with a move", lambda m: f"{m['move_frames_share'] * 100:.1f}%"),
            ("move at each recording's end", lambda m: f"{m['move_accuracy_at_end'] * 100:.1f}%"),
            ("frames with key-points", lambda m: f"{m['keypoint_frames_share'] * 100:.1f}%"),
            ("MPJPE", lambda m: f"{m['mpjpe_mm']:.1f} mm"),
            ("joints within 10 cm", lambda m: f"{m['map_10cm'] * 100:.1f}%"),
            ("first key-points after a person (median)",
             lambda m: f"{m['first_keypoints_frames_median']:g} frames"),
            ("lag after a move change, median / p90",
             lambda m: f"{m['lag_s_median']:.2f} / {m['lag_s_p90']:.2f} s ({m['move_changes']} changes, "
                       f"{m['move_changes_missed']} missed)"),
            ("latency p50 / p90", lambda m: f"{m['latency_ms_p50']:.2f} / {m['latency_ms_p90']:.2f} ms")]
    w = max(len(r[0]) for r in rows)
    part = "validation" if report.get("split") == "val" else "test"
    lines = [f"live evaluation of {report['model']} on {report['data']} ({report['protocol']} {part} split)",
             f"{'':<{w}}  " + "  ".join(f"{m:<28}" for m in modes)]
    for name, fmt in rows:
        lines.append(f"{name:<{w}}  " + "  ".join(f"{fmt(report['modes'][m]):<28}" for m in modes))
    return "\n".join(lines)
