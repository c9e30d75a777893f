"""From a dataset folder to training batches: preprocessing cache, label hiding, augmentation.

* ``prepare`` turns every sequence into person crops at its native frame rate (``preprocess.CROP_DTYPE``),
  normalised joint targets and masks, cached in a versioned ``.npz`` so a second run does
  not recompute.
* ``hide_labels`` removes labels *and* key-points of the unlabelled sequences before
  anything reaches the training loop (the strict semi-supervised setting; in skeleton mode the
  joints are the input and stay).
* ``WindowSampler`` draws seeded, augmented windows of ``frames`` frames as dicts with the depth
  window, joints, joint mask, label and labelled flag (the training loop's input); ``prefetch``
  makes the next batch in a thread while a step runs (one device), ``make_tf_dataset`` wraps the
  sampler as a ``tf.data.Dataset`` (for ``tf.distribute`` strategies, which shard it).

Everything but ``make_tf_dataset`` is pure numpy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.config import DataConfig
from kerasdance.data import preprocess as pp
from kerasdance.data.dataset import DEFAULT_FPS, EMPTY_ROOM_NPZ
from kerasdance.data.tracker_noise import apply_tracker_noise
from kerasdance.skeleton import MIRROR, NUM_JOINTS, mirror_joints

log = logging.getLogger("kerasdance.data")

#: Bumped when ``prepare``'s output for the same files changes (2: skeleton-only sequences whose every joint row
#: is invalid are skipped; 3: per-frame person statistics; 4: continuous recordings cut into moves with context).
CACHE_VERSION = 4


def window_span(cfg: DataConfig, fps: float) -> int:
    """Frames that the live tracker's window spans at ``fps``: ``T`` frames at the training rate
    (``DEFAULT_FPS``), i.e. ``T / DEFAULT_FPS`` seconds (at least 2 frames)."""
    return max(2, int(round(cfg.frames / DEFAULT_FPS * fps)))


@dataclasses.dataclass
class Prepared:
    """Preprocessed sequences, ragged along time (``offsets`` index into the frame arrays).

    Attributes:
        names, labels (-1 = unlabelled), subjects: per sequence.
        offsets: ``(n + 1,)`` frame offsets; sequence i owns frames ``offsets[i]:offsets[i+1]``.
        crops: ``(total_frames, S, S)`` normalised depth in ``preprocess.CROP_DTYPE`` (empty in skeleton mode).
        joints_norm: ``(total_frames, 20, 3)`` float32 targets in crop coordinates.
        joint_mask: ``(total_frames, 20)`` float32.
        joints_m: ``(total_frames, 20, 3)`` float32 camera metres (NaN = missing).
        crop_params: ``(n, 5)`` the ``Crop`` of each sequence (over all its frames).
        intrinsics: ``(n, 6)`` fx, fy, cx, cy, width, height of each sequence.
        frame_stats: ``(total_frames, 3)`` float32 where the person is in each frame (``preprocess.FrameStats``:
            u, v pixels and depth in mm; NaN where nobody was found, and in skeleton mode): what the live
            tracker's per-window crop is made of.
        anchors: ``(n,)`` int64 frames of context before the labelled move inside each sequence's frames: 0 for a
            clip; for a move cut from a continuous recording (``move_pieces``), the frames the live tracker had
            seen before the move began (the previous move, the transition). ``clip_of(i)`` is the move itself.
        fps: ``(n,)`` float64 frames per second of each sequence's recording.
    """

    names: list[str]
    labels: np.ndarray
    subjects: np.ndarray
    offsets: np.ndarray
    crops: np.ndarray
    joints_norm: np.ndarray
    joint_mask: np.ndarray
    joints_m: np.ndarray
    crop_params: np.ndarray
    intrinsics: np.ndarray
    frame_stats: np.ndarray
    anchors: np.ndarray | None = None
    fps: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.names)
        self.anchors = np.zeros(n, np.int64) if self.anchors is None else np.asarray(self.anchors, np.int64)
        self.fps = np.full(n, DEFAULT_FPS) if self.fps is None else np.asarray(self.fps, np.float64)

    def __len__(self) -> int:
        return len(self.names)

    def frames_of(self, i: int) -> slice:
        """Sequence ``i``'s frames, context before its move included."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def clip_of(self, i: int) -> slice:
        """Sequence ``i``'s labelled move: its frames from its anchor on (all of them for a clip)."""
        return slice(int(self.offsets[i] + self.anchors[i]), int(self.offsets[i + 1]))

    def live_span(self, i: int, cfg: DataConfig) -> int:
        """Frames of sequence ``i`` that the live tracker's window spans (``window_span`` at its frame rate)."""
        return window_span(cfg, float(self.fps[i]))

    def camera(self, i: int) -> Intrinsics:
        """Sequence ``i``'s camera (its ``intrinsics`` row)."""
        fx, fy, cx, cy, w, h = self.intrinsics[i]
        return Intrinsics(fx, fy, cx, cy, int(w), int(h))

    def subset(self, idx) -> Prepared:
        """The sequences ``idx`` (in that order), frames copied."""
        idx = np.asarray(idx, dtype=np.int64)
        spans = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]
        frames = np.concatenate(spans) if spans else np.zeros(0, np.int64)
        lengths = np.array([len(s) for s in spans], np.int64)
        return Prepared(
            names=[self.names[i] for i in idx],
            labels=self.labels[idx].copy(),
            subjects=self.subjects[idx].copy(),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            crops=self.crops[frames] if self.crops.size else self.crops,
            joints_norm=self.joints_norm[frames],
            joint_mask=self.joint_mask[frames],
            joints_m=self.joints_m[frames],
            crop_params=self.crop_params[idx],
            intrinsics=self.intrinsics[idx],
            frame_stats=self.frame_stats[frames],
            anchors=self.anchors[idx],
            fps=self.fps[idx],
        )


def _cache_key(dataset, refs, cfg: DataConfig, with_depth: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "cfg": cfg.to_dict(), "depth": with_depth}, sort_keys=True).encode())
    for ref in refs:
        h.update(ref.name.encode())
        for p in sorted(str(p) for p in ref.paths.values()):
            st = os.stat(p)
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    room = _empty_room_path(dataset)
    if with_depth and room is not None:  # its frames are masked against the room
        st = os.stat(room)
        h.update(f"{room}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _empty_room_path(dataset) -> Path | None:
    root = getattr(dataset, "root", None)
    path = None if root is None else Path(root) / EMPTY_ROOM_NPZ
    return path if path is not None and path.is_file() else None


def prepare(dataset, refs, cfg: DataConfig, cache_dir: str | Path | None = None, with_depth: bool = True,
            progress=None) -> Prepared:
    """Preprocess ``refs`` of ``dataset`` (a ``kerasdance.data.dataset.Dataset``), with a cache.

    Sequences without a usable person (every depth frame empty; without depth, every joint row
    invalid) are skipped with a warning naming them.

    A dataset with an ``empty_room.npz`` (frames of the room without anybody, e.g. from ``kerasdance-edge
    calibrate`` or ``kerasdance synth --scene studio``) was filmed in a room: each depth frame is first masked to
    its dancer (``kerasdance.scene.mask_sequence``: floor and background removed, the person blob nearest the
    recording's skeleton kept), the segmentation the device runs, so recordings made in a room train without
    hand masking.

    Args:
        dataset: the opened dataset.
        refs: the ``SequenceRef`` objects to prepare.
        cfg: preprocessing configuration.
        cache_dir: folder for the versioned cache file; no caching when None.
        with_depth: False for skeleton-only work (no crops are computed).
        progress: optional callable ``(done, total)``.
    """
    refs = list(refs)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"prepared-{_cache_key(dataset, refs, cfg, with_depth)}.npz"
        if cache.exists():
            with np.load(cache, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            log.info("loaded preprocessed cache %s", cache)
            return Prepared(names=[str(n) for n in d.pop("names")], **d)
    room = None
    if with_depth and _empty_room_path(dataset) is not None:
        from kerasdance.scene import Room, mask_sequence

        room = Room.from_frames(dataset.empty_room(), dataset.intrinsics)
        log.info("%s: each frame masked to its dancer against the empty room (%s)", dataset.root, EMPTY_ROOM_NPZ)
    S = cfg.crop_size
    names, labels, subjects, lengths, anchors, rates = [], [], [], [], [], []
    crops, jn, jmask, jm, cparams, intr, fstats = [], [], [], [], [], [], []

    def add(seq, name: str, label, subject, frames: np.ndarray, anchor_frame: int) -> None:
        """Prepare frames ``frames`` of ``seq`` as one sequence (its move starts at frame ``anchor_frame``)."""
        if with_depth:
            if seq.depth_mm is None:
                raise ValueError("it has no depth file")
            keep = frames[seq.depth_valid[frames]]
            if keep.size == 0:
                raise ValueError("every depth frame is empty")
            stats = pp.sequence_stats(seq.depth_mm[keep], cfg)
            crop = pp.crop_from_stats(stats, seq.intrinsics, cfg)
            crops.append(pp.crop_frames(seq.depth_mm[keep], crop, cfg).astype(pp.CROP_DTYPE))
        else:
            if seq.joints_m is None:
                raise ValueError("it has no skeleton file")
            if not np.isfinite(seq.joints_m[np.minimum(frames, len(seq.joints_m) - 1)]).any():
                raise ValueError("every joint row of its skeleton file is invalid")
            keep = frames
            crop = pp.Crop(seq.intrinsics.cx, seq.intrinsics.cy, 1.0, 0.0, 1.0)
            stats = np.full((keep.size, 3), np.nan)
        if seq.joints_m is not None:
            joints = np.asarray(seq.joints_m, np.float32)[np.minimum(keep, len(seq.joints_m) - 1)]
        else:
            joints = np.full((keep.size, NUM_JOINTS, 3), np.nan, np.float32)
        norm, mask = pp.joint_targets(joints, crop, seq.intrinsics, cfg, keep.size)
        if not with_depth:
            mask[:] = 0.0
        names.append(name)
        labels.append(-1 if label is None else int(label))
        subjects.append(-1 if subject is None else int(subject))
        lengths.append(keep.size)
        anchors.append(min(int(np.searchsorted(keep, anchor_frame)), keep.size - 1))
        rates.append(float(seq.fps))
        jn.append(norm)
        jmask.append(mask)
        jm.append(joints)
        cparams.append(crop.to_array())
        fstats.append(stats.astype(np.float32))
        it = seq.intrinsics
        intr.append([it.fx, it.fy, it.cx, it.cy, it.width, it.height])

    for i, ref in enumerate(refs):
        if progress:
            progress(i, len(refs))
        seq = dataset.load(ref)
        if room is not None and seq.depth_mm is not None:
            seq.depth_mm = mask_sequence(seq.depth_mm, seq.intrinsics, room, seq.joints_m)
        n = seq.num_frames
        per_frame = getattr(seq, "frame_labels", None)
        if per_frame is None:
            pieces = [(ref.name, ref.label, 0, 0, n)]
        else:
            context = window_span(cfg, float(seq.fps)) - 1
            pieces = [(f"{ref.name}@{m}", lab, a, m, e) for a, m, e, lab in move_pieces(per_frame, context)]
            if not pieces:
                log.warning("skipping %s: no frame carries a move label", ref.name)
        for name, label, a, m, e in pieces:
            try:
                add(seq, name, label, ref.subject, np.arange(a, e), m)
            except ValueError as err:
                log.warning("skipping %s: %s", name, err)
    if not names:
        raise ValueError("no usable sequence: every one was skipped (see the warnings above)")
    out = Prepared(
        names=names,
        labels=np.asarray(labels, np.int64),
        subjects=np.asarray(subjects, np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        crops=np.concatenate(crops) if crops else np.zeros((0, S, S), pp.CROP_DTYPE),
        joints_norm=np.concatenate(jn),
        joint_mask=np.concatenate(jmask),
        joints_m=np.concatenate(jm),
        crop_params=np.asarray(cparams, np.float64),
        intrinsics=np.asarray(intr, np.float64),
        frame_stats=np.concatenate(fstats),
        anchors=np.asarray(anchors, np.int64),
        fps=np.asarray(rates, np.float64),
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: v for k, v in dataclasses.asdict(out).items()})
        os.replace(tmp, cache)
    return out


def move_pieces(frame_labels, context: int) -> list[tuple[int, int, int, int]]:
    """The labelled moves of a continuous recording, each with the frames before it that a live window ending in
    the move reaches back to.

    Args:
        frame_labels: ``(frames,)`` class per frame, -1 = no move (pause, transition).
        context: frames of context before each move (the live window's span minus one).

    Returns:
        ``(start, move_start, stop, label)`` per maximal run of one class: frames ``start:stop`` with
        ``start = max(0, move_start - context)``; the move is ``move_start:stop``.
    """
    fl = np.asarray(frame_labels, np.int64)
    if fl.size == 0:
        return []
    change = np.flatnonzero(np.diff(fl)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [fl.size]])
    return [(max(0, int(m) - int(context)), int(m), int(e), int(fl[m])) for m, e in zip(starts, stops) if fl[m] >= 0]


def hide_labels(data: Prepared, labelled: np.ndarray, keypoints_for_all: bool = False,
                input_mode: str = "depth") -> Prepared:
    """Copy of ``data`` where unlabelled sequences have label -1 and no key-point targets.

    With ``keypoints_for_all`` the key-point targets stay (a depth camera's own tracker gives
    them for free); action labels are hidden either way. With ``input_mode="skeleton"`` the joints
    are the model's *input* (the camera's skeleton stream), not a target, so every sequence keeps
    them (its key-point mask is already 0: ``prepare`` sets no key-point target without depth);
    only the labels go.
    """
    labelled = np.asarray(labelled, bool)
    out = dataclasses.replace(data, labels=np.where(labelled, data.labels, -1), joint_mask=data.joint_mask.copy(),
                              joints_norm=data.joints_norm.copy(), joints_m=data.joints_m.copy())
    if not keypoints_for_all:
        for i in np.flatnonzero(~labelled):
            s = data.frames_of(i)
            out.joint_mask[s] = 0.0
            out.joints_norm[s] = 0.0
            if input_mode == "depth":
                out.joints_m[s] = np.nan
    return out


@dataclasses.dataclass(frozen=True)
class Augment:
    """Augmentation strengths (normalised crop units and radians)."""

    rotation_rad: float = 0.12
    scale: float = 0.10
    shift: float = 0.08
    depth_noise: float = 0.01
    temporal_crop: float = 0.85  # keep at least this share of the sequence
    cutout: int = 0  # number of erased boxes per window
    # Probability of a left-right mirror of the window (the crops' columns flipped, the joints' left and right
    # swapped): a move done on the other side or by a left-handed performer. Only for classes that do not depend
    # on the side (off by default; ``TrainConfig.mirror_augment`` turns it on for training).
    mirror: float = 0.0
    # Probability of a frame-edge cut: everything beyond a random line near one edge of the crop becomes background,
    # as when part of the performer leaves the camera's field of view (near the camera: feet below the frame, raised
    # hands above it; at the side: an arm). The joints keep their targets, so the model learns to place joints it
    # cannot see. Off by default (``TrainConfig.edge_cut_share`` sets it for training).
    edge_cut: float = 0.0
    # Skeleton mode: the tracker-noise level (``tracker_noise.LEVELS``) that a share ``tracker_noise_share`` of the
    # windows' joints go through (lost joints and frames, freezes, left/right swaps, foot errors, wrong persons), so
    # that a model does not learn clean joints only. "clean": off (``TrainConfig.skeleton_noise`` sets it).
    tracker_noise: str = "clean"
    tracker_noise_share: float = 0.8

    @classmethod
    def weak(cls) -> Augment:
        return cls(rotation_rad=0.05, scale=0.05, shift=0.03, depth_noise=0.005, temporal_crop=0.95)

    @classmethod
    def strong(cls) -> Augment:
        return cls(rotation_rad=0.2, scale=0.15, shift=0.12, depth_noise=0.02, temporal_crop=0.8, cutout=2)


def affine_crops(crops: np.ndarray, rot: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Resample ``(frames, S, S)`` crops: output pixel (a, b) reads input ``scale * R(rot) (a, b) + shift``."""
    S = crops.shape[-1]
    t = pp.cell_centres(S)
    a, b = np.meshgrid(t, t)
    c, s = np.cos(rot), np.sin(rot)
    sa = scale * (c * a - s * b) + shift[0]
    sb = scale * (s * a + c * b) + shift[1]
    ui = np.floor((sa + 1.0) / 2.0 * S).astype(np.int64)
    vi = np.floor((sb + 1.0) / 2.0 * S).astype(np.int64)
    inside = (ui >= 0) & (ui < S) & (vi >= 0) & (vi < S)
    flat = (np.clip(vi, 0, S - 1) * S + np.clip(ui, 0, S - 1)).ravel()
    out = np.take(crops.reshape(len(crops), -1), flat, axis=1).reshape(crops.shape)  # ~2x faster than [:, flat]
    out[:, ~inside] = pp.BACKGROUND
    return out


def _recrop(crops: np.ndarray, recrop, cfg: DataConfig) -> np.ndarray:
    """Cached crops (cut with the sequence's crop) as cut with another crop (``WindowSampler.live_window``): the
    pixels resampled (``affine_crops``) and the body's depth re-referenced to the other crop's body depth."""
    scale, sa, sb, dz_m = recrop
    x = affine_crops(np.asarray(crops, np.float32), 0.0, scale, np.array([sa, sb]))
    body = x < pp.BACKGROUND
    x[body] += np.float32(dz_m * 1000.0 / cfg.depth_scale_mm)
    return x


def _recrop_joints(joints: np.ndarray, recrop, cfg: DataConfig) -> np.ndarray:
    """Joint targets in the sequence's crop -> in the other crop of ``_recrop`` (exact: the crops differ by a
    scale and a shift in the image plane and by their body depth)."""
    scale, sa, sb, dz_m = recrop
    out = affine_joints(joints, 0.0, scale, np.array([sa, sb]))
    out[..., 2] = joints[..., 2] + dz_m / (cfg.box_m / 2.0)
    return out


def affine_joints(joints: np.ndarray, rot: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Where input joints land in the output of ``affine_crops`` (its exact inverse map)."""
    c, s = np.cos(rot), np.sin(rot)
    da, db = joints[..., 0] - shift[0], joints[..., 1] - shift[1]
    a = (c * da + s * db) / scale
    b = (-s * da + c * db) / scale
    return np.stack([a, b, joints[..., 2]], axis=-1)


class WindowSampler:
    """Seeded source of (augmented) training windows from ``Prepared`` sequences.

    The sampler is a pure function of ``(seed, epoch)``: resuming a run at an epoch boundary
    draws exactly the same windows as the uninterrupted run.
    """

    def __init__(self, data: Prepared, cfg: DataConfig, input_mode: str = "depth", seed: int = 0,
                 augment: Augment | None = Augment(), labelled_share: float = 0.0, targets_only: bool = False,
                 live: bool = False):
        """``labelled_share`` > 0: self-training batches (see ``_mixed_order``). ``targets_only``: supervised
        training, whose batches skip the sequences that carry neither a label nor key-points (they would add
        nothing to the loss); the few that do are cycled so that an epoch keeps ``num_batches`` full batches.
        ``live``: augmented windows are the live tracker's (``live_window``) instead of temporal crops of the
        whole recording; windows without augmentation (evaluation) stay whole recordings."""
        self.data, self.cfg, self.input_mode, self.seed, self.augment = data, cfg, input_mode, seed, augment
        self.labelled_share, self.targets_only, self.live = labelled_share, targets_only, live

    def window(self, i: int, rng: np.random.Generator | None, aug: Augment | None, x_out: np.ndarray | None = None):
        """One window of sequence ``i``: (x, joints, mask, affine) with ``affine = (rot, scale, sa, sb)``.

        ``x_out``: depth mode, the batch's slot that ``x`` is written into (returned as ``x``)."""
        cfg, d = self.cfg, self.data
        span = d.clip_of(i)
        n = span.stop - span.start
        start, stop = 0.0, 1.0
        recrop = None
        if self.live and aug is not None and rng is not None:
            anchor = int(d.anchors[i])
            idx, recrop = self.live_window(i, anchor + int(rng.integers(0, n)))
        else:
            if aug is not None and rng is not None and aug.temporal_crop < 1.0:
                keep = rng.uniform(aug.temporal_crop, 1.0)
                start = rng.uniform(0.0, 1.0 - keep)
                stop = start + keep
            idx = span.start + pp.window_indices(n, cfg, start, stop)
        joints, mask = d.joints_norm[idx], d.joint_mask[idx]
        if recrop is not None and self.input_mode == "depth":
            joints = np.where(mask[..., None] > 0, _recrop_joints(joints, recrop, cfg), 0.0).astype(np.float32)
        affine = np.array([0.0, 1.0, 0.0, 0.0], np.float32)
        # Drawn only when mirroring is on: with it off, the random stream (and every batch) is as before.
        mirror = aug is not None and rng is not None and aug.mirror > 0 and rng.random() < aug.mirror
        if mirror:
            joints, mask = mirror_joints(joints), mask[:, MIRROR]
        if self.input_mode == "skeleton":
            jm = _tracker_joints(d, i, idx, aug, rng) if aug is not None and rng is not None else d.joints_m[idx]
            jm = mirror_joints(jm) if mirror else jm
            if aug is not None and rng is not None:
                jm = _rotate_y(jm, rng.uniform(-2 * aug.rotation_rad, 2 * aug.rotation_rad)) * rng.uniform(
                    1 - aug.scale, 1 + aug.scale)
            return pp.skeleton_features(jm, cfg), joints, mask, affine
        augmenting = aug is not None and rng is not None

        def transform(x):  # the cached crops (CROP_DTYPE: the augmentation's gather moves half the bytes)
            nonlocal affine
            if recrop is not None:
                x = _recrop(x, recrop, cfg)
            if mirror:
                x = x[:, :, ::-1]  # columns: the crop's grid is symmetric about its centre, so a -> -a exactly
            if augmenting:
                x, affine = _augment_crops(x, rng, aug)
            return x

        x = pp.make_window(d.crops, idx, cfg, transform=transform if augmenting else None, out=x_out)
        if augmenting:
            joints = np.where(mask[..., None] > 0, affine_joints(joints, *affine[:2], affine[2:]), 0.0)
            joints = joints.astype(np.float32)
        return x, joints, mask, affine

    def live_window(self, i: int, end: int) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
        """The window the live tracker sees at frame ``end`` of sequence ``i`` (``end`` counts from the first frame
        of ``frames_of(i)``, context included): its ``live_span`` frames up to ``end`` (``T / DEFAULT_FPS``
        seconds; at a recording's start the frames there are), ``T`` of them picked evenly as the tracker picks them
        by time (repeated to T in the warm-up), and the re-crop from the sequence's crop to the crop of those
        frames alone (``(scale, shift_a, shift_b, dz_m)``; None where nobody is found in them).

        Returns:
            ``(frame indices into the frame arrays, re-crop or None)``.
        """
        d, cfg = self.data, self.cfg
        span = d.frames_of(i)
        first = max(0, end - d.live_span(i, cfg) + 1)
        idx = span.start + first + pp.window_indices(end - first + 1, cfg)
        if self.input_mode != "depth":
            return idx, None
        try:
            w = pp.crop_from_stats(d.frame_stats[span.start + first : span.start + end + 1], d.camera(i), cfg)
        except ValueError:
            return idx, None
        c = pp.Crop.from_array(d.crop_params[i])
        half = c.side_px / 2.0
        return idx, (w.side_px / c.side_px, (w.u_c - c.u_c) / half, (w.v_c - c.v_c) / half, c.z_body_m - w.z_body_m)

    def epoch(self, epoch: int, batch_size: int, shuffle: bool = True, strong: Augment | None = None
              ) -> Iterator[dict[str, np.ndarray]]:
        """Batches of one epoch. With ``strong``, each example also carries a strongly
        augmented view (``x_strong``, ``affine_strong``) for self-training."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        n = len(self.data)
        order = rng.permutation(n) if shuffle else np.arange(n)
        labelled = np.flatnonzero(self.data.labels >= 0)
        if shuffle and self.labelled_share > 0 and 0 < labelled.size < n:
            order = self._mixed_order(rng, labelled, batch_size)
        elif shuffle and self.targets_only:
            useful = self.with_targets()
            if 0 < useful.size < n:  # cycled, reshuffled at each pass, to the epoch's length
                reps = int(np.ceil(n / useful.size))
                order = np.concatenate([rng.permutation(useful) for _ in range(reps)])[:n]
        for b0 in range(0, len(order), batch_size):
            idx = order[b0 : b0 + batch_size]
            yield self.batch(idx, rng if self.augment else None, strong)

    def with_targets(self) -> np.ndarray:
        """Indices of the sequences with a label or at least one valid key-point."""
        per_frame = self.data.joint_mask.reshape(len(self.data.joint_mask), -1).sum(axis=1)
        cum = np.concatenate([[0.0], np.cumsum(per_frame)])
        has_kp = cum[self.data.offsets[1:]] > cum[self.data.offsets[:-1]]
        return np.flatnonzero((self.data.labels >= 0) | has_kp)

    def num_batches(self, batch_size: int) -> int:
        """Batches per epoch (see ``epoch``)."""
        n = len(self.data)
        n_lab = int((self.data.labels >= 0).sum())
        if self.labelled_share > 0 and 0 < n_lab < n:
            per = batch_size - max(1, int(round(self.labelled_share * batch_size)))
            return int(np.ceil((n - n_lab) / per))
        return int(np.ceil(n / batch_size))

    def _mixed_order(self, rng, labelled: np.ndarray, batch_size: int) -> np.ndarray:
        """One pass over the unlabelled sequences, each batch topped up to ``labelled_share`` with labelled
        ones (cycled, reshuffled at each pass), so few labels still give every step a supervised signal."""
        unlabelled = rng.permutation(np.flatnonzero(self.data.labels < 0))
        k = max(1, int(round(self.labelled_share * batch_size)))
        per = batch_size - k
        n_batches = int(np.ceil(unlabelled.size / per))
        reps = int(np.ceil(n_batches * k / labelled.size))
        lab = np.concatenate([rng.permutation(labelled) for _ in range(reps)])
        batches = [np.concatenate([lab[i * k : (i + 1) * k], unlabelled[i * per : (i + 1) * per]])
                   for i in range(n_batches)]
        return np.concatenate(batches)

    def batch(self, idx, rng=None, strong: Augment | None = None) -> dict[str, np.ndarray]:
        out = {"label": self.data.labels[idx].astype(np.int32), "index": np.asarray(idx, np.int32)}
        out["labelled"] = (out["label"] >= 0).astype(np.float32)
        keys = ("x", "joints", "mask")
        n, depth = len(idx), self.input_mode == "depth"
        if depth:  # the windows' crops are written straight into the batch, not copied into it
            shape = (n, self.cfg.frames, self.cfg.crop_size, self.cfg.crop_size, self.cfg.channels)
            out["x"] = np.empty(shape, np.float32)
            if strong is not None and rng is not None:
                out["x_strong"] = np.empty(shape, np.float32)
        for j, i in enumerate(idx):
            view = self.window(i, rng, self.augment if rng is not None else None, out["x"][j] if depth else None)
            _put(out, keys, j, n, view)
            if strong is not None and rng is not None:
                # The strong view starts from the weak view's frames: same temporal crop.
                x_out = out["x_strong"][j] if depth else None
                _put(out, ("x_strong", "affine_strong"), j, n, self._strong(view, rng, strong, x_out))
        return out

    def _strong(self, view, rng, aug: Augment, x_out: np.ndarray | None = None):
        x = view[0][..., 0].copy() if self.input_mode == "depth" else view[0]
        if self.input_mode == "skeleton":
            return x + rng.normal(0, 0.01, x.shape).astype(np.float32), np.array([0, 1, 0, 0], np.float32)
        x, affine = _augment_crops(x, rng, aug)
        return pp.add_motion(x, self.cfg, out=x_out), affine

    def eval_windows(self) -> dict[str, np.ndarray]:
        """Every sequence resampled whole to ``frames`` (no augmentation): the evaluation inputs."""
        return self.batch(np.arange(len(self.data)), None, None)


def _put(out: dict, keys, j: int, n: int, values) -> None:
    """Write example ``j`` of a batch of ``n`` into ``out[key]`` (allocated on the first example):
    filling one array in place is several times faster than stacking per-example copies. A value that is
    already that slot (written there by ``add_motion(..., out=)``) is not copied onto itself."""
    for k, v in zip(keys, values):
        if k not in out:
            out[k] = np.empty((n,) + v.shape, v.dtype)
        if not np.may_share_memory(out[k][j], v):
            out[k][j] = v


#: Standard-normal samples that depth noise is cut from at a random offset: drawing 131k fresh
#: normals per window was the largest single cost of an epoch. Fixed seed: a pure function of nothing.
_NOISE_BANK = np.random.default_rng(20261124).standard_normal(1 << 22, dtype=np.float32)


def _noise(rng: np.random.Generator, shape) -> np.ndarray:
    size = int(np.prod(shape))
    if size > _NOISE_BANK.size:
        return rng.standard_normal(shape, dtype=np.float32)
    o = int(rng.integers(0, _NOISE_BANK.size - size + 1))
    return _NOISE_BANK[o : o + size].reshape(shape)


def _augment_crops(x: np.ndarray, rng: np.random.Generator, aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    """Random affine + depth noise on the body + cutout boxes + a frame-edge cut (``aug.edge_cut``) on
    ``(frames, S, S)`` crops.

    Returns the crops and ``affine = (rot, scale, shift_a, shift_b)`` (see ``affine_joints``).
    """
    rot = rng.uniform(-aug.rotation_rad, aug.rotation_rad)
    scale = rng.uniform(1 - aug.scale, 1 + aug.scale)
    shift = rng.uniform(-aug.shift, aug.shift, size=2)
    x = affine_crops(x, rot, scale, shift).astype(np.float32, copy=False)
    noise = np.float32(aug.depth_noise) * _noise(rng, x.shape)
    noise *= x < pp.BACKGROUND  # on the body only
    x += noise
    S = x.shape[-1]
    for _ in range(aug.cutout):
        h, w = rng.integers(S // 8, S // 3, size=2)
        r, c = rng.integers(0, S - h), rng.integers(0, S - w)
        x[:, r : r + h, c : c + w] = pp.BACKGROUND
    if aug.edge_cut > 0 and rng.random() < aug.edge_cut:  # drawn only when on: with it off, the stream is as before
        cut_at_edge(x, rng)
    return x, np.array([rot, scale, shift[0], shift[1]], np.float32)


def training_augment(t) -> Augment | None:
    """The augmentation of a run's training windows (a ``TrainConfig``): the default strengths with the run's
    mirror and frame-edge cuts; None without augmentation. The trainer and QAT fine-tuning both use it."""
    if not t.augment:
        return None
    return Augment(mirror=0.5 if t.mirror_augment else 0.0, edge_cut=t.edge_cut_share, tracker_noise=t.skeleton_noise)


def _tracker_joints(d: Prepared, i: int, idx: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Sequence ``i``'s joints at the frames ``idx``, in a share ``aug.tracker_noise_share`` of the windows through
    the tracker-noise model (applied to the whole recording, at 15 fps, then indexed). Nothing is drawn when
    ``aug.tracker_noise`` is "clean": the random stream is then as without it."""
    if aug.tracker_noise == "clean" or rng.random() >= aug.tracker_noise_share:
        return d.joints_m[idx]
    s = d.frames_of(i)
    return apply_tracker_noise(d.joints_m[s], aug.tracker_noise, rng)[np.asarray(idx) - s.start]


#: Share of training windows cut at a frame edge with ``kerasdance train --edge-cuts``.
EDGE_CUT_SHARE = 0.3

#: Frame-edge cuts: (edge, probability, range of the cut line in normalised crop units). Rows grow downwards and
#: columns rightwards (the crop's a, b axes); a standing body spans rows -0.8 (hands up) .. 0.95 (feet), with the
#: knees near 0.45 and the head near -0.45. The bottom is the likeliest (a performer near the camera).
EDGE_CUTS = (("bottom", 0.5, (0.3, 0.95)), ("top", 0.2, (-0.95, -0.4)),
             ("left", 0.15, (-0.95, -0.5)), ("right", 0.15, (0.5, 0.95)))


def cut_at_edge(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Set everything beyond a random line near one edge of ``(frames, S, S)`` crops to background, in place.

    The same line for every frame of the window, as a camera's frame edge is fixed (see ``EDGE_CUTS``)."""
    S = x.shape[-1]
    k = rng.choice(len(EDGE_CUTS), p=[p for _, p, _ in EDGE_CUTS])
    edge, _, (lo, hi) = EDGE_CUTS[k]
    i = int(round((rng.uniform(lo, hi) + 1.0) / 2.0 * S))  # the first pixel beyond the line (cells are 2/S wide)
    if edge == "bottom":
        x[:, i:, :] = pp.BACKGROUND
    elif edge == "top":
        x[:, :i, :] = pp.BACKGROUND
    elif edge == "left":
        x[:, :, :i] = pp.BACKGROUND
    else:
        x[:, :, i:] = pp.BACKGROUND
    return x


def _rotate_y(joints: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    root = np.nanmean(joints[:, 6:7], axis=0, keepdims=True)
    rel = joints - root
    x = c * rel[..., 0] + s * rel[..., 2]
    z = -s * rel[..., 0] + c * rel[..., 2]
    return np.stack([x, rel[..., 1], z], axis=-1) + root


_END = object()  # prefetch's end-of-items marker


def prefetch(items: Iterable, niceness: int = 0):
    """Iterate ``items`` one item ahead in a background thread (the next batch is made during this step).

    The one-device training feed: iterating ``tf.data.Dataset.from_generator`` over an msr20 epoch's batches
    took 1.65-1.89 s against 0.79-0.89 s for the batches alone; a training epoch takes 4.56 s with this feed
    against 5.28 s with tf.data (medians, ``python -m benchmarks.probe_epoch_stall``, idle machine).
    Exceptions are raised in the consumer; items are produced in order, by one thread.

    ``niceness`` > 0 (Linux only; elsewhere ignored): the thread runs at that much lower scheduling priority,
    so that it fills the step's idle moments instead of taking a core from TensorFlow's threads.
    """
    it = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="kerasdance-prefetch", initializer=_lower_thread_priority,
                            initargs=(niceness,)) as pool:
        nxt = pool.submit(next, it, _END)
        while (item := nxt.result()) is not _END:
            nxt = pool.submit(next, it, _END)
            yield item


def _lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value by ``niceness`` > 0 (Linux: a thread is a task with its own)."""
    if niceness <= 0 or not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS + thread id names a process
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:  # not allowed here (a sandbox): the feed works the same, only without the priority
        pass


def batch_keys(strong: bool) -> list[str]:
    """The keys of a training batch (``WindowSampler.batch``) that the training loop reads."""
    return ["x", "joints", "mask", "label", "labelled", "index"] + (["x_strong", "affine_strong"] if strong else [])


def make_tf_dataset(sampler: WindowSampler, epoch: int, batch_size: int, strong: Augment | None = None):
    """A ``tf.data.Dataset`` of one epoch of ``sampler``'s batches, as dicts of tensors.

    Keys: ``x`` (depth window), ``joints``, ``mask`` (joint mask), ``label``, ``labelled`` (flag) and
    ``index``; with ``strong`` also ``x_strong`` and ``affine_strong`` (see ``WindowSampler.epoch``).
    """
    from kerasdance.keras_backend import tf

    keys = batch_keys(strong is not None)
    probe = sampler.batch(np.arange(1), np.random.default_rng(0), strong)
    spec = {k: tf.TensorSpec((None,) + probe[k].shape[1:], tf.as_dtype(probe[k].dtype)) for k in keys}

    def gen():
        for b in sampler.epoch(epoch, batch_size, strong=strong):
            yield {k: b[k] for k in keys}

    return tf.data.Dataset.from_generator(gen, output_signature=spec).prefetch(2)
