"""Depth and skeleton preprocessing: pure numpy, shared by training and the edge runtime.

One piece of code for both sides, so that the device sees exactly what the model
was trained on. Nothing here imports TensorFlow.

``make_window`` is THE window assembly: which frames (``window_indices``), the person crop
(``crop_frames``, rounded to ``CROP_DTYPE`` as the training cache stores it), an optional
training-time transform, and the motion channel (``add_motion``). The training sampler,
evaluation, ``kerasdance predict`` and the edge tracker all call it.

The person crop is an affine map between *normalised crop coordinates*
``(a, b)`` in ``[-1, 1]^2`` (a to the right, b down) and depth-image pixels::

    [u, v] = [u_c, v_c] + (side_px / 2) * R(angle) @ [a, b]

``side_px = fx * box_m / z_body``: the crop always spans ``box_m`` metres at the
body's depth, so a dancer has the same size in the crop at any distance. Joint
depth is normalised as ``c = (z - z_body) / (box_m / 2)``. ``crop_to_camera`` is
the exact inverse of ``camera_to_crop``.
"""

from __future__ import annotations

import logging
import warnings
from typing import NamedTuple

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.config import DataConfig
from kerasdance.skeleton import BONES, NUM_JOINTS

log = logging.getLogger("kerasdance.data")

#: Value of background / hole pixels in a normalised crop.
BACKGROUND = 1.0
#: The dtype a crop is rounded to before it enters a window, everywhere: the training cache stores crops in it
#: (half the memory), so evaluation and the device round theirs the same way and the model sees the same values.
CROP_DTYPE = np.float16
_HIST_BIN_MM = 100.0


class FrameStats(NamedTuple):
    """Where the person is in one depth frame (NaN when nobody was found)."""

    u: float
    v: float
    z_mm: float


class Crop(NamedTuple):
    """A person crop: centre in pixels, side in pixels, in-plane angle and body depth."""

    u_c: float
    v_c: float
    side_px: float
    angle_rad: float
    z_body_m: float

    def to_array(self) -> np.ndarray:
        return np.asarray(self, dtype=np.float64)

    @classmethod
    def from_array(cls, a) -> Crop:
        return cls(*(float(x) for x in np.asarray(a).reshape(5)))


def frame_stats(depth_mm: np.ndarray, cfg: DataConfig) -> FrameStats:
    """Find the person in one ``(H, W)`` depth frame.

    The body depth is the nearest depth-histogram peak holding at least 1.5% of the
    image's pixels (so a wall or floor behind the dancer is ignored); the centre is the
    median pixel of the largest run of occupied columns within the body's depth band.
    """
    d = np.asarray(depth_mm)
    valid = (d >= cfg.min_depth_mm) & (d <= cfg.max_depth_mm)
    vals = d[valid].astype(np.float64)
    if vals.size < 20:
        return FrameStats(np.nan, np.nan, np.nan)
    bins = ((vals - cfg.min_depth_mm) / _HIST_BIN_MM).astype(np.int64)
    hist = np.bincount(bins)
    smooth = np.convolve(hist, np.ones(3), mode="same")
    need = max(20.0, 0.015 * d.size)
    peaks = np.flatnonzero(smooth >= need)
    peak = int(peaks[0]) if peaks.size else int(np.argmax(smooth))
    # Refine the peak to the histogram's mode near it, then take the band's median.
    lo, hi = max(peak - 1, 0), min(peak + 2, hist.size)
    peak = lo + int(np.argmax(hist[lo:hi]))
    z0 = cfg.min_depth_mm + (peak + 0.5) * _HIST_BIN_MM
    band = valid & (np.abs(d - z0) <= cfg.depth_band_mm)
    if band.sum() < 20:
        return FrameStats(np.nan, np.nan, np.nan)
    # The largest run of occupied columns: separates the dancer from other objects.
    cols = band.sum(axis=0)
    occupied = np.concatenate([[0], (cols > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(occupied))
    starts, ends = edges[::2], edges[1::2]
    mass = np.add.reduceat(cols, starts) if starts.size else np.array([0])
    k = int(np.argmax(mass))
    person = band.copy()
    person[:, : starts[k]] = False
    person[:, ends[k] :] = False
    rows, colsi = np.nonzero(person)
    z = float(np.median(d[person]))
    return FrameStats(float(np.median(colsi)), float(np.median(rows)), z)


def crop_from_stats(stats: np.ndarray, intrinsics: Intrinsics, cfg: DataConfig) -> Crop:
    """Combine per-frame ``FrameStats`` rows ``(frames, 3)`` into one crop for the window.

    Raises:
        ValueError: when no frame contains a person.
    """
    s = np.asarray(stats, dtype=np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(s), axis=1)
    if not ok.any():
        raise ValueError("no person found in any frame (all frames empty or out of the depth range)")
    u, v, z_mm = np.median(s[ok], axis=0)
    z_m = z_mm / 1000.0
    # Centre the box on the body's centre at its depth; the median pixel sits near the belly.
    side = intrinsics.fx * cfg.box_m / z_m
    return Crop(float(u), float(v), float(side), 0.0, float(z_m))


def sequence_stats(depth_mm: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """``frame_stats`` of every frame of a ``(frames, H, W)`` depth sequence: ``(frames, 3)`` float64."""
    return np.array([frame_stats(f, cfg) for f in depth_mm], np.float64).reshape(-1, 3)


def find_crop(depth_mm: np.ndarray, intrinsics: Intrinsics, cfg: DataConfig) -> Crop:
    """One crop for a ``(frames, H, W)`` depth sequence (see ``frame_stats``)."""
    return crop_from_stats(sequence_stats(depth_mm, cfg), intrinsics, cfg)


def cell_centres(n: int) -> np.ndarray:
    """Centres of ``n`` equal cells spanning [-1, 1], ``(i + 0.5) / n * 2 - 1``: where the crop's pixels (and the
    heat-map cells read by ``SoftArgmax2D``) sit in normalised crop coordinates."""
    return (np.arange(n) + 0.5) / n * 2.0 - 1.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    t = cell_centres(size)
    return np.meshgrid(t, t)  # a (columns), b (rows)


def crop_frames(depth_mm: np.ndarray, crop: Crop, cfg: DataConfig, index: np.ndarray | None = None) -> np.ndarray:
    """Sample ``(frames, H, W)`` depth into ``(frames, S, S)`` normalised crops.

    Each crop pixel is the mean of ``cfg.crop_supersample ** 2`` nearest-pixel samples spread evenly over its
    cell (one sample, the nearest pixel to the cell's centre, when it is 1). Each sample is normalised first:
    foreground (within ``depth_band_mm`` of the body) maps to ``(depth - z_body) / depth_scale_mm``;
    background, holes and outside-image pixels to ``BACKGROUND``; so a cell on the silhouette's edge
    averages the two. ``index``: crop only these frames of ``depth_mm``, in this order (the edge runtime's ring
    buffer), read in place rather than copied out whole first.
    """
    depth_mm = np.asarray(depth_mm)
    n, h, w = depth_mm.shape
    index = np.arange(n) if index is None else np.asarray(index, dtype=np.int64)
    frames, size, k = index.size, cfg.crop_size, cfg.crop_supersample
    a, b = _grid(size)
    if k > 1:  # k x k points per cell, at the centres of its k x k sub-cells
        oa, ob = np.meshgrid(cell_centres(k) / size, cell_centres(k) / size)
        a, b = a[..., None] + oa.ravel(), b[..., None] + ob.ravel()
    half = crop.side_px / 2.0
    ca, sa = np.cos(crop.angle_rad), np.sin(crop.angle_rad)
    u = crop.u_c + half * (ca * a - sa * b)
    v = crop.v_c + half * (sa * a + ca * b)
    ui = np.floor(u + 0.5).astype(np.int64).ravel()
    vi = np.floor(v + 0.5).astype(np.int64).ravel()
    inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
    flat = np.clip(vi, 0, h - 1) * w + np.clip(ui, 0, w - 1)
    # One flat gather of the crop's pixels of every frame: ~2-3x faster than indexing frames, then pixels.
    d = np.take(depth_mm.reshape(-1), index[:, None] * (h * w) + flat[None, :]).astype(np.float32)
    z_mm = crop.z_body_m * 1000.0
    fg = inside[None] & (d >= cfg.min_depth_mm) & (d <= cfg.max_depth_mm) & (np.abs(d - z_mm) <= cfg.depth_band_mm)
    x = np.where(fg, (d - z_mm) / cfg.depth_scale_mm, BACKGROUND).astype(np.float32, copy=False)
    if k > 1:
        return x.reshape(frames, size, size, k * k).mean(axis=-1, dtype=np.float32)
    return x.reshape(frames, size, size)


def camera_to_crop(joints_m: np.ndarray, crop: Crop, intrinsics: Intrinsics, cfg: DataConfig) -> np.ndarray:
    """Camera metres ``(..., 3)`` -> normalised crop coordinates ``(..., 3)``."""
    uvz = intrinsics.project(joints_m)
    du, dv = uvz[..., 0] - crop.u_c, uvz[..., 1] - crop.v_c
    ca, sa = np.cos(crop.angle_rad), np.sin(crop.angle_rad)
    half = crop.side_px / 2.0
    a = (ca * du + sa * dv) / half
    b = (-sa * du + ca * dv) / half
    c = (uvz[..., 2] - crop.z_body_m) / (cfg.box_m / 2.0)
    return np.stack([a, b, c], axis=-1)


def crop_to_camera(norm: np.ndarray, crop: Crop, intrinsics: Intrinsics, cfg: DataConfig) -> np.ndarray:
    """Normalised crop coordinates ``(..., 3)`` -> camera metres ``(..., 3)`` (inverse of ``camera_to_crop``)."""
    norm = np.asarray(norm, dtype=np.float64)
    half = crop.side_px / 2.0
    ca, sa = np.cos(crop.angle_rad), np.sin(crop.angle_rad)
    a, b = norm[..., 0] * half, norm[..., 1] * half
    u = crop.u_c + ca * a - sa * b
    v = crop.v_c + sa * a + ca * b
    z = crop.z_body_m + norm[..., 2] * (cfg.box_m / 2.0)
    return intrinsics.unproject(np.stack([u, v, z], axis=-1))


def resample_indices(num_frames: int, frames: int, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """Indices of ``frames`` evenly spaced frames of the span ``[start, stop]`` of a sequence."""
    if num_frames < 1:
        raise ValueError(f"Cannot resample an empty sequence. Received: num_frames={num_frames!r}")
    pos = np.linspace(start * (num_frames - 1), stop * (num_frames - 1), frames)
    return np.clip(np.round(pos), 0, num_frames - 1).astype(np.int64)


def add_motion(depth: np.ndarray, cfg: DataConfig, out: np.ndarray | None = None) -> np.ndarray:
    """``(frames, S, S)`` -> ``(frames, S, S, channels)``: depth plus, optionally, its frame difference.

    ``out``: a float32 array of that shape to write into (a batch's slot: no per-window copy); returned.
    """
    x = np.asarray(depth, dtype=np.float32)
    if out is None:
        if not cfg.motion_channel:
            return x[..., None]
        out = np.empty(x.shape + (2,), np.float32)  # written in place: no zeros, difference and stack copies
    out[..., 0] = x
    if cfg.motion_channel:
        out[:1, ..., 1] = 0.0
        np.subtract(x[1:], x[:-1], out=out[1:, ..., 1])
    return out


def joint_targets(joints_m: np.ndarray | None, crop: Crop, intrinsics: Intrinsics, cfg: DataConfig, frames: int):
    """Normalised joint targets and mask; zeros and mask 0 where joints are missing."""
    if joints_m is None:
        return np.zeros((frames, NUM_JOINTS, 3), np.float32), np.zeros((frames, NUM_JOINTS), np.float32)
    norm = camera_to_crop(joints_m, crop, intrinsics, cfg)
    mask = np.all(np.isfinite(norm), axis=-1) & np.all(np.abs(norm) < 4.0, axis=-1)
    return np.where(mask[..., None], norm, 0.0).astype(np.float32), mask.astype(np.float32)


def round_to_crop_dtype(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest ``CROP_DTYPE`` (float16) value, kept as float32 (in place when ``x`` is
    a contiguous float32 array).

    Equal to ``x.astype(np.float16).astype(np.float32)`` (round half to even) for values within float16's range,
    about 4x faster on the device: the float32 mantissa is rounded to float16's 10 bits; the rare values below
    float16's smallest normal number (2**-14), where float16 has fewer bits, take the slow conversion.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    tiny = np.abs(x) < np.float32(2.0**-14)
    small = x[tiny].astype(np.float16).astype(np.float32) if tiny.any() else None
    bits = x.view(np.uint32)
    bits += np.uint32(0x0FFF) + ((bits >> np.uint32(13)) & np.uint32(1))
    bits &= np.uint32(0xFFFFE000)
    if small is not None:
        x[tiny] = small
    return x


def window_indices(num_frames: int, cfg: DataConfig, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """The ``cfg.frames`` frames of a ``num_frames``-frame sequence that make its window: evenly spaced over the
    share ``[start, stop]`` of the sequence (the whole of it outside training's temporal crop)."""
    return resample_indices(num_frames, cfg.frames, start, stop)


def make_window(frames: np.ndarray, indices: np.ndarray, cfg: DataConfig, crop: Crop | None = None,
                transform=None, out: np.ndarray | None = None) -> np.ndarray:
    """Assemble one model input window: THE window assembly of training, evaluation, predict and the device.

    Args:
        frames: ``(N, H, W)`` depth in millimetres (with ``crop``), or ``(N, S, S)`` crops already cut by
            ``crop_frames`` (``crop`` None: the training cache).
        indices: ``(T,)`` which of ``frames`` make the window, oldest first (``window_indices``, or the edge
            tracker's pick from its ring buffer).
        cfg: preprocessing configuration.
        crop: the person crop to cut from depth ``frames``.
        transform: optional ``(T, S, S) -> (T, S, S)`` float32 function applied before the motion channel
            (training augmentation); None everywhere else.
        out: optional ``(T, S, S, C)`` float32 slot to write into (a batch's row).

    Returns:
        ``(T, S, S, cfg.channels)`` float32.
    """
    if crop is None:
        x = np.asarray(frames)[np.asarray(indices, dtype=np.int64)].astype(CROP_DTYPE, copy=False)
    else:
        x = round_to_crop_dtype(crop_frames(frames, crop, cfg, index=indices))
    if transform is not None:
        x = transform(x)
    return add_motion(x, cfg, out=out)


#: Torso joints: the frame's centre for ``repair_skeleton``'s jump test.
_TORSO = (6, 3, 2, 0, 1, 4, 5)  # hip centre, spine, shoulder centre, shoulders, hips (``skeleton.Joint``)
#: Limb pairs whose left and right a tracker swaps (from the elbow / knee out), for ``repair_skeleton``.
_SWAP_PAIRS = (((7, 9, 11), (8, 10, 12)), ((13, 15, 17), (14, 16, 18)))
#: A frame whose torso centre is farther than this from the median of its neighbours' is another person's (metres).
JUMP_M = 0.45
#: Frames either side of a frame in ``repair_skeleton``'s jump test.
JUMP_HALF_WIDTH = 5


def joint_validity(joints: np.ndarray) -> np.ndarray:
    """``(..., 20, 3)`` -> ``(..., 20)`` bool: a joint is valid when all its coordinates are finite and it is not an
    all-zero row (the Kinect SDK's "not tracked"; no tracked joint sits at the camera's centre)."""
    j = np.asarray(joints)
    return np.isfinite(j).all(axis=-1) & (np.abs(np.nan_to_num(j)).sum(axis=-1) > 1e-9)


def repair_skeleton(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clean one window of tracker joints: reject what a tracker gets wrong, then fill it in from the rest.

    1. Invalid joints (``joint_validity``: NaN, not finite, all-zero rows) are rejected.
    2. Frames whose torso centre jumps more than ``JUMP_M`` from the median of the ``JUMP_HALF_WIDTH`` frames
       either side (a wrong person) are rejected whole.
    3. Left/right limb swaps (``_SWAP_PAIRS``) are undone by continuity: each frame keeps the labelling nearer to
       the frame before (positions relative to the hip centre); where most frames end up relabelled, the others
       are the swapped ones.
    4. A joint whose bone to its parent is far from that bone's median length over the window (more than 30% +
       8 cm off: a foot through the floor, a joint flung out) is rejected.
    5. Rejected joints are filled by linear interpolation in time (the nearest valid value before the first / after
       the last), a joint never valid in the window by its parent's track.

    Args:
        joints: ``(frames, 20, 3)`` camera metres.

    Returns:
        ``(filled (frames, 20, 3) float64, valid (frames, 20) bool)``: ``valid`` is False where a value was filled
        in. All zeros and all False when nothing in the window is valid.
    """
    j = np.array(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be (frames, {NUM_JOINTS}, 3). Received: shape={j.shape!r}")
    n = j.shape[0]
    valid = joint_validity(j)
    j[~valid] = np.nan
    # 2. Jumps of the whole skeleton.
    torso = j[:, list(_TORSO)]
    with warnings.catch_warnings():  # an all-NaN frame's centre is NaN: expected
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(torso, axis=1) if n else np.zeros((0, 3))
    if n:
        h = JUMP_HALF_WIDTH
        padded = np.concatenate([np.full((h, 3), np.nan), centre, np.full((h, 3), np.nan)])
        near = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1, axis=0)  # (n, 3, 2h + 1)
        enough = np.isfinite(near[:, 0]).sum(axis=-1) >= 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(near, axis=-1)
        jump = enough & (np.linalg.norm(centre - med, axis=-1) > JUMP_M)  # False where the centre is NaN
        valid[jump] = False
    # 3. Left/right swaps, by continuity (before the bone test: a swapped elbow hangs from the wrong shoulder).
    j[~valid] = np.nan
    with np.errstate(all="ignore"):
        rel = j - j[:, 6:7]
    for left, right in _SWAP_PAIRS:
        lr, rl = list(left) + list(right), list(right) + list(left)
        flipped = np.zeros(n, bool)
        state, prev = False, None  # prev: the pair's last known positions, in the corrected labelling
        for t in range(n):
            same, other = (rel[t, rl], rel[t, lr]) if state else (rel[t, lr], rel[t, rl])
            if prev is not None:
                keep, swap = _mean_dist(same, prev), _mean_dist(other, prev)
                if np.isfinite(keep) and np.isfinite(swap) and swap < 0.6 * keep:
                    state, same = not state, other
            flipped[t] = state
            ok = np.isfinite(same).all(axis=-1)
            prev = same.copy() if prev is None else np.where(ok[:, None], same, prev)
        if flipped.sum() * 2 > n:  # most frames relabelled: the first frames were the swapped ones
            flipped = ~flipped
        if flipped.any():
            swap_idx = _swap_index(left, right)
            j[flipped] = j[flipped][:, swap_idx]
            valid[flipped] = valid[flipped][:, swap_idx]
    # 4. Bones far from their median length (parents first, so a rejected parent is not a reference).
    for parent, child in BONES:
        length = np.linalg.norm(j[:, child] - j[:, parent], axis=-1)
        ok = np.isfinite(length)
        if ok.sum() < 2:
            continue
        ref = np.median(length[ok])
        bad = ok & (np.abs(length - ref) > 0.3 * ref + 0.08)
        valid[bad, child] = False
        j[bad, child] = np.nan
    # 5. Fill in.
    j[~valid] = np.nan
    t = np.arange(n)
    if not valid.any():
        return np.zeros_like(j), valid
    order = [6] + [c for _, c in BONES]  # the root first, then parents before children
    for k in order:
        ok = valid[:, k]
        if ok.any():
            for d in range(3):
                j[:, k, d] = np.interp(t, t[ok], j[ok, k, d])
        else:
            j[:, k] = j[:, _PARENT_OF[k]] if k != 6 else np.nan
    if not np.isfinite(j[:, 6]).all():  # the hip centre never seen: from any other joint's track
        first = int(np.flatnonzero(valid.any(axis=0))[0])
        j[:, 6] = j[:, first]
        for k in order[1:]:
            if not valid[:, k].any():
                j[:, k] = j[:, _PARENT_OF[k]]
    return np.nan_to_num(j), valid


def _mean_dist(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance between the rows of ``a`` and ``b`` finite in both (NaN if none)."""
    d = np.sqrt(((a - b) ** 2).sum(axis=-1))
    d = d[d == d]
    return float(d.sum() / d.size) if d.size else float("nan")


def _swap_index(left, right) -> list[int]:
    idx = list(range(NUM_JOINTS))
    for a, b in zip(left, right):
        idx[a], idx[b] = b, a
    return idx


#: Each joint's parent along ``BONES`` (the hip centre has none).
_PARENT_OF = {int(c): int(p) for p, c in BONES}


def skeleton_features(joints: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Skeleton-mode input: hip-centred, scale-normalised joints (+ velocities, + a validity flag).

    With ``cfg.skeleton_repair`` each window is cleaned first (``repair_skeleton``: invalid and implausible joints
    rejected and filled in by interpolation, jumping frames rejected, left/right swaps undone) and each joint gets
    a last feature, 1 where it was observed and 0 where it was filled in. Without it a missing joint sits at the
    hip centre. No NaN leaves this function.

    Args:
        joints: ``(..., frames, 20, 3)`` camera metres (NaN, or an all-zero row, where missing).

    Returns:
        ``(..., frames, cfg.skeleton_features)`` float32: per joint ``x y z`` (+ ``vx vy vz``) (+ ``valid``).
    """
    j = np.asarray(joints, dtype=np.float64)
    valid = None
    if cfg.skeleton_repair:
        lead = j.shape[:-3]
        flat = j.reshape((-1,) + j.shape[-3:])
        pairs = [repair_skeleton(w) for w in flat]
        j = np.stack([p[0] for p in pairs]).reshape(j.shape) if pairs else j
        valid = np.stack([p[1] for p in pairs]).reshape(lead + j.shape[-3:-1]) if pairs else None
        if valid is None:
            valid = np.zeros(j.shape[:-1], bool)
        j = np.where(valid.any(axis=(-1, -2), keepdims=True)[..., None], j, np.nan)
    # A missing joint ends up at the hip centre (0 after centring).
    j = np.where(np.isfinite(j), j, np.nan)
    with warnings.catch_warnings():  # a window without a hip centre: root 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        root = np.nanmedian(j[..., 6:7, :], axis=-3, keepdims=True)  # hip centre over time
    root = np.where(np.isfinite(root), root, 0.0)
    rel = np.nan_to_num(j - root)
    feats = [rel]
    if cfg.velocity_features:
        vel = np.zeros_like(rel)
        vel[..., 1:, :, :] = rel[..., 1:, :, :] - rel[..., :-1, :, :]
        feats.append(vel * 4.0)
    if valid is not None:
        feats.append(valid[..., None].astype(np.float64))
    out = np.concatenate(feats, axis=-1)  # (..., frames, 20, 3k (+1))
    return out.reshape(*out.shape[:-2], -1).astype(np.float32)
