"""Motion export: tracked joints -> BVH (a skeleton animation) or CSV (a table). Pure numpy.

Inputs (``load_motion``): a JSON-lines file of ``kerasdance-edge track --jsonl`` (one performer, or one
chosen with ``person``), a generic-layout ``.npz`` with ``joints_m`` (a recording segment of
``kerasdance-edge track --record``, a dataset sequence) or a dataset folder with a sequence name (or,
for a ``--record`` folder, a take: its segments joined).

BVH conventions (``write_bvh``):

* **Axes and units**: Y up, right-handed, **centimetres**. A camera point ``(x, y, z)`` in metres
  (x right, y up, z away from the camera) becomes ``(X, Y, Z) = 100 * (x, y, -z)``: the origin is the
  camera, the floor is wherever it was in the camera's view, and a dancer who faces the camera faces
  +Z, as BVH characters usually do. Blender's BVH import (Y up, forward -Z, scale 0.01 for metres)
  and the usual BVH-to-FBX tools for Unity show the dancer upright.
* **Hierarchy**: the 20 joints of ``kerasdance.skeleton`` named as there; the root ``hip_center`` has six
  channels (``Xposition Yposition Zposition Zrotation Xrotation Yrotation``), every other joint three
  (``Zrotation Xrotation Yrotation``, i.e. ``R = Rz @ Rx @ Ry``, degrees). ``head``, ``hand_*`` and
  ``foot_*`` end in an End Site (a nominal tip half the incoming bone's length further). Four
  zero-length helpers sit at the branching joints, ``pelvis_left/right`` (at ``hip_center``, carrying
  the hip bones) and ``clavicle_left/right`` (at ``shoulder_center``, carrying the shoulder bones), so
  that every one of the 19 bones has its own rotation: 24 joints, 75 channels. Without them the hips
  and shoulders would have to keep one rigid shape, which tracked joints do not.
* **Rest pose** (all rotations zero): a T-pose facing +Z: spine, neck and head up (+Y), the left arm
  along -X ("left" is the side of smaller camera x, as in ``kerasdance.skeleton``), the right arm
  along +X, the legs down, the feet forward (+Z). OFFSETs are the performer's bone lengths: the
  median over the frames where both ends of the bone are valid.
* **Rotations**: each bone is turned from its rest direction onto its measured direction. The pelvis
  (``hip_center``) takes its twist from the hip line (``hip_left`` -> ``hip_right``), the chest
  (``spine``) from the shoulder line; every other bone takes the smallest rotation (a swing) from its
  parent's frame, so it never twists about itself. Joints fall where the file says up to the bone
  lengths: with constant bone lengths the file reproduces the positions exactly.
* **Missing joints**: a joint missing in a frame (NaN, or a frame without the performer) holds its last
  valid position (before the first valid one: the first); ``Motion.filled_frames`` counts such frames.
* **Frame time**: ``1 / fps``.

CSV (``write_csv``): one row per frame, ``frame,time_s,<joint>_x,<joint>_y,<joint>_z,...`` in the
joint order of ``kerasdance.skeleton.JOINT_NAMES``, camera metres (x right, y up, z away from the
camera), an empty cell where a joint is missing (not filled); ``read_csv`` reads it back.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.errors import DataFormatError
from kerasdance.skeleton import BONES, JOINT_NAMES, NUM_JOINTS, Joint

#: BVH length units per metre (the file is in centimetres).
CM_PER_M = 100.0
#: Camera metres -> BVH axes (before scaling): X = x, Y = y, Z = -z.
AXES = np.array([1.0, 1.0, -1.0])
#: Frames per second when nothing says otherwise (MSR-Action3D, the default of the generic layout).
DEFAULT_FPS = 15.0
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")


@dataclasses.dataclass
class Motion:
    """A performer's joints over time.

    Attributes:
        joints_m: ``(frames, 20, 3)`` float64 camera metres (x right, y up, z away), NaN where missing.
        fps: frames per second.
        time_s: ``(frames,)`` seconds from the first frame (capture times when the input had them).
        name: where it came from (for messages).
        filled_frames: frames in which ``fill_missing`` held a missing joint (0 before filling).
    """

    joints_m: np.ndarray
    fps: float
    time_s: np.ndarray
    name: str = ""
    filled_frames: int = 0

    @property
    def num_frames(self) -> int:
        return int(self.joints_m.shape[0])


def _check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number. Received: fps={fps!r}")
    return float(fps)


def _motion(joints: np.ndarray, fps: float, name: str, time_s: np.ndarray | None = None) -> Motion:
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) == 0:
        raise DataFormatError(f"{name}: joints must be (frames, {NUM_JOINTS}, 3) with frames > 0. "
                              f"Received: shape={joints.shape}")
    fps = _check_fps(fps)
    if time_s is None:
        time_s = np.arange(len(joints)) / fps
    return Motion(joints, fps, np.asarray(time_s, np.float64), name)


# --- inputs --------------------------------------------------------------------------------------------------
def load_jsonl(path: str | Path, person: int | None = None, fps: float | None = None) -> Motion:
    """The joints of a ``kerasdance-edge track --jsonl`` file, one row per source frame index.

    Frames the file skips (the tracker dropped them, or the performer was not there) become rows of NaN,
    so that the frame time stays constant. The frame rate is measured from the timestamps (frames per
    second of the index over time), unless ``fps`` is given.

    Args:
        path: the file.
        person: the track ID to export when the lines carry several ``person`` values.
        fps: override the measured frame rate.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: a line that is not a tracker result, no frames, several performers without
            ``person``, or ``person`` not in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows: dict = {}
    names = {n: i for i, n in enumerate(JOINT_NAMES)}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                index, ts = int(obj["index"]), int(obj["timestamp_us"])
                joints = obj.get("joints")
                pid = obj.get("person")
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise DataFormatError(f"{path}:{lineno}: not a tracker result line (index, timestamp_us, joints): "
                                      f"{type(e).__name__}: {e}") from None
            xyz = np.full((NUM_JOINTS, 3), np.nan)
            if joints is not None:
                if not isinstance(joints, dict):
                    raise DataFormatError(f"{path}:{lineno}: joints must be an object of joint name -> [x, y, z]")
                for name, v in joints.items():
                    if name not in names:
                        raise DataFormatError(f"{path}:{lineno}: unknown joint {name!r} (expected names of "
                                              "kerasdance.skeleton.JOINT_NAMES)")
                    if not isinstance(v, list) or len(v) != 3:
                        raise DataFormatError(f"{path}:{lineno}: joint {name!r} must be [x, y, z]. Received: {v!r}")
                    xyz[names[name]] = [np.nan if c is None else float(c) for c in v]
            rows.setdefault(pid, {})[index] = (ts, xyz)
    if not rows:
        raise DataFormatError(f"{path}: no frames")
    ids = sorted(rows, key=lambda p: (p is None, p if p is not None else 0))
    if person is None:
        if len(rows) > 1:
            raise DataFormatError(f"{path}: holds several performers (person {', '.join(map(str, ids))}): "
                                  "choose one with --person")
        person = ids[0]
    elif person not in rows:
        have = "no person IDs (one performer)" if ids == [None] else f"person {', '.join(map(str, ids))}"
        raise DataFormatError(f"{path}: no performer with person ID {person}. The file has {have}")
    frames = rows[person]
    idx = np.array(sorted(frames))
    ts_us = np.array([frames[i][0] for i in idx], np.float64)
    if fps is None:
        span_us = ts_us[-1] - ts_us[0]  # over the whole file: integer microseconds make single steps uneven
        fps = float((idx[-1] - idx[0]) / span_us * 1e6) if len(idx) > 1 and span_us > 0 else DEFAULT_FPS
    grid = np.arange(idx[0], idx[-1] + 1)
    joints = np.full((len(grid), NUM_JOINTS, 3), np.nan)
    joints[idx - idx[0]] = np.stack([frames[i][1] for i in idx])
    time_s = np.interp(grid, idx, (ts_us - ts_us[0]) / 1e6) if len(idx) > 1 else np.zeros(1)
    label = path.name if person is None else f"{path.name} (person {person})"
    return _motion(joints, fps, label, time_s)


def _sibling_fps(npz: Path) -> float | None:
    meta = npz.parent / "dataset.json"
    if not meta.is_file():
        return None
    try:
        fps = json.loads(meta.read_text(encoding="utf-8")).get("fps")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return float(fps) if isinstance(fps, int | float) and not isinstance(fps, bool) and fps > 0 else None


def load_npz(path: str | Path, fps: float | None = None) -> Motion:
    """The ``joints_m`` of a generic-layout ``.npz`` (a recording segment or a dataset sequence).

    The frame rate is ``fps``, else the ``fps`` of a sibling ``dataset.json``, else 15. A
    ``timestamp_us`` array (written by ``kerasdance-edge track --record``) gives the times.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a ``.npz``, or no ``joints_m`` array of shape ``(frames, 20, 3)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "joints_m" not in z.files:
                raise DataFormatError(f"{path}: no joints_m array (arrays: {sorted(z.files)}); a depth-only "
                                      "recording has no joints to export")
            joints = z["joints_m"]
            ts = z["timestamp_us"] if "timestamp_us" in z.files else None
    except (ValueError, OSError, EOFError) as e:
        raise DataFormatError(f"{path}: cannot be read as .npz ({str(e)[:100]})") from None
    fps = fps if fps is not None else (_sibling_fps(path) or DEFAULT_FPS)
    time_s = None
    if ts is not None and ts.shape == (len(joints),) and len(ts):
        time_s = (ts.astype(np.float64) - float(ts[0])) / 1e6
    return _motion(joints, fps, path.name, time_s)


def _takes(ds) -> dict[str, list[Path]]:
    """Take name -> its segment files in order, from the ``take`` of ``dataset.json``'s entries (recordings of
    ``kerasdance-edge track --record``; other datasets have none)."""
    try:
        entries = json.loads((ds.root / "dataset.json").read_text(encoding="utf-8")).get("sequences") or []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}
    takes: dict[str, list[Path]] = {}
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("take"), str) and isinstance(e.get("file"), str):
            takes.setdefault(e["take"], []).append(ds.root / e["file"])
    return {t: sorted(files) for t, files in takes.items()}


def _load_take(files: list[Path], fps: float, name: str) -> Motion:
    """A recorded take's segments as one motion on the grid of source frame indices (gaps become NaN rows)."""
    joints, index, ts = [], [], []
    for p in files:
        with np.load(p, allow_pickle=False) as z:
            if not {"joints_m", "frame_index", "timestamp_us"} <= set(z.files):
                raise DataFormatError(f"{p}: not a segment of kerasdance-edge track --record (needs joints_m, "
                                      f"frame_index, timestamp_us; has {sorted(z.files)})")
            joints.append(z["joints_m"])
            index.append(z["frame_index"])
            ts.append(z["timestamp_us"])
    idx, t_us = np.concatenate(index).astype(np.int64), np.concatenate(ts).astype(np.float64)
    order = np.argsort(idx, kind="stable")
    idx, t_us, j = idx[order], t_us[order], np.concatenate(joints)[order]
    grid = np.arange(idx[0], idx[-1] + 1)
    out = np.full((len(grid), NUM_JOINTS, 3), np.nan)
    out[idx - idx[0]] = j
    time_s = np.interp(grid, idx, (t_us - t_us[0]) / 1e6) if len(idx) > 1 else np.zeros(1)
    return _motion(out, fps, name, time_s)


def load_dataset_sequence(directory: str | Path, sequence: str | None = None, fps: float | None = None) -> Motion:
    """The joints of one sequence of a dataset folder (MSR-Action3D or generic layout), or of a whole take of a
    ``kerasdance-edge track --record`` folder (its segments joined, by source frame index).

    Args:
        directory: the folder.
        sequence: a sequence name or a take name; None: the folder's only sequence, or its only take.
        fps: override the dataset's frame rate.

    Raises:
        DataFormatError: no such sequence or take, several and none chosen, or no joints.
    """
    from kerasdance.data.dataset import Dataset

    ds = Dataset.open(directory)
    names = [r.name for r in ds.refs]
    takes = _takes(ds) if ds.layout == "generic" else {}
    fps = fps if fps is not None else ds.fps
    if sequence is None:
        if len(names) == 1:
            sequence = names[0]
        elif len(takes) == 1:
            sequence = next(iter(takes))
        else:
            what = f"takes {', '.join(sorted(takes))}" if takes else f"sequences {', '.join(names[:5])}"
            more = " ..." if not takes and len(names) > 5 else ""
            raise DataFormatError(f"{directory}: holds {len(takes) or len(names)} {what}{more}: choose one with "
                                  "--sequence")
    ref = next((r for r in ds.refs if r.name == sequence), None)
    if ref is None:
        if sequence in takes:
            return _load_take(takes[sequence], fps, f"take {sequence}")
        listed = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        raise DataFormatError(f"{directory}: no sequence named {sequence!r} (there are: {listed}"
                              + (f"; takes: {', '.join(sorted(takes))}" if takes else "") + ")")
    seq = ds.load(ref)
    if seq.joints_m is None:
        raise DataFormatError(f"{directory}: sequence {sequence!r} has no joints (depth only)")
    return _motion(seq.joints_m, fps, f"{sequence}")


def load_motion(path: str | Path, person: int | None = None, sequence: str | None = None,
                fps: float | None = None) -> Motion:
    """Joints from a ``.jsonl`` (tracker output), a ``.npz`` (generic layout) or a dataset folder.

    Args:
        path: the input.
        person: for a JSONL with several performers, the track ID to export.
        sequence: for a dataset folder, the sequence name (needed when it holds several).
        fps: override the frame rate.

    Raises:
        FileNotFoundError: no such path.
        DataFormatError: an unreadable input, or an option that does not fit it.
    """
    path = Path(path)
    if fps is not None:
        fps = _check_fps(fps)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir() or path.name == "dataset.json":
        if person is not None:
            raise DataFormatError("--person applies to a JSONL with several performers, not to a dataset")
        return load_dataset_sequence(path, sequence, fps)
    if sequence is not None:
        raise DataFormatError("--sequence applies to a dataset folder; this is a file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return load_jsonl(path, person, fps)
    if person is not None:
        raise DataFormatError("--person applies to a JSONL (kerasdance-edge track --jsonl) only")
    if suffix == ".npz":
        return load_npz(path, fps)
    raise DataFormatError(f"{path}: expected a .jsonl (kerasdance-edge track --jsonl), a .npz with joints_m or a "
                          f"dataset folder. Received suffix: {suffix!r}")


# --- filling and bone lengths --------------------------------------------------------------------------------
def fill_missing(motion: Motion) -> Motion:
    """Each missing joint holds its last valid position (its first valid one before that).

    Returns:
        A new ``Motion`` without NaN; ``filled_frames`` counts the frames where a joint was held.

    Raises:
        DataFormatError: a joint that is never valid.
    """
    joints = np.array(motion.joints_m, np.float64)
    valid = np.isfinite(joints).all(axis=-1)  # (F, J)
    never = [JOINT_NAMES[j] for j in np.flatnonzero(~valid.any(axis=0))]
    if never:
        what = "no joints in any frame" if len(never) == NUM_JOINTS else f"{', '.join(never)} never valid"
        raise DataFormatError(f"{motion.name}: {what}: nothing to export")
    frames = np.arange(len(joints))
    for j in range(NUM_JOINTS):
        last = np.maximum.accumulate(np.where(valid[:, j], frames, -1))
        src = np.where(last >= 0, last, np.argmax(valid[:, j]))
        joints[:, j] = joints[src, j]
    return dataclasses.replace(motion, joints_m=joints, filled_frames=int((~valid).any(axis=1).sum()))


def bone_lengths_m(joints_m: np.ndarray) -> np.ndarray:
    """``(19,)`` metres: each bone of ``skeleton.BONES``, the median over the frames where both its ends are valid.

    Raises:
        ValueError: a bone never valid.
    """
    joints = np.asarray(joints_m, np.float64)
    out = np.empty(len(BONES))
    for b, (p, c) in enumerate(BONES):
        length = np.linalg.norm(joints[:, c] - joints[:, p], axis=-1)
        ok = np.isfinite(length)
        if not ok.any():
            raise ValueError(f"bone {JOINT_NAMES[p]} -> {JOINT_NAMES[c]} is never valid")
        out[b] = float(np.median(length[ok]))
    return out


# --- the BVH skeleton ----------------------------------------------------------------------------------------
class BvhNode(NamedTuple):
    """One joint of the BVH hierarchy.

    Attributes:
        name: its BVH name.
        parent: index of its parent node (-1 for the root).
        at: the kerasdance joint where it sits.
        child: the kerasdance joint its bone points to (None: a leaf with an End Site).
        rest: unit direction of its bone (or End Site) at rest, in BVH axes.
        twist: for a node whose twist is taken from a line of the body: ``(from_joint, to_joint)`` of that line,
            which points along +X at rest; None: the smallest swing from the parent's frame.
    """

    name: str
    parent: int
    at: int
    child: int | None
    rest: tuple[float, float, float]
    twist: tuple[int, int] | None = None


def _build_nodes() -> tuple[BvhNode, ...]:
    up, down, fwd, left, right = (0, 1, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0)
    nodes: list[BvhNode] = []

    def add(name, parent, at, child, rest, twist=None) -> int:
        nodes.append(BvhNode(name, parent, int(at), None if child is None else int(child), rest, twist))
        return len(nodes) - 1

    root = add("hip_center", -1, Joint.HIP_CENTER, Joint.SPINE, up, (Joint.HIP_LEFT, Joint.HIP_RIGHT))
    spine = add("spine", root, Joint.SPINE, Joint.SHOULDER_CENTER, up, (Joint.SHOULDER_LEFT, Joint.SHOULDER_RIGHT))
    chest = add("shoulder_center", spine, Joint.SHOULDER_CENTER, Joint.HEAD, up)
    add("head", chest, Joint.HEAD, None, up)
    for side, d in (("left", left), ("right", right)):
        S = lambda n, side=side: Joint[f"{n}_{side}".upper()]  # noqa: E731
        k = add(f"clavicle_{side}", chest, Joint.SHOULDER_CENTER, S("shoulder"), d)
        k = add(f"shoulder_{side}", k, S("shoulder"), S("elbow"), d)
        k = add(f"elbow_{side}", k, S("elbow"), S("wrist"), d)
        k = add(f"wrist_{side}", k, S("wrist"), S("hand"), d)
        add(f"hand_{side}", k, S("hand"), None, d)
    for side, d in (("left", left), ("right", right)):
        S = lambda n, side=side: Joint[f"{n}_{side}".upper()]  # noqa: E731
        k = add(f"pelvis_{side}", root, Joint.HIP_CENTER, S("hip"), d)
        k = add(f"hip_{side}", k, S("hip"), S("knee"), down)
        k = add(f"knee_{side}", k, S("knee"), S("ankle"), down)
        k = add(f"ankle_{side}", k, S("ankle"), S("foot"), fwd)
        add(f"foot_{side}", k, S("foot"), None, fwd)
    return tuple(nodes)


#: The BVH hierarchy in file (depth-first) order: 20 joints and 4 zero-length helpers.
BVH_NODES: tuple[BvhNode, ...] = _build_nodes()
#: End Site length as a fraction of the leaf's incoming bone.
END_SITE_FRACTION = 0.5


def _bone_index() -> dict[tuple[int, int], int]:
    return {(int(p), int(c)): b for b, (p, c) in enumerate(BONES)}


def bvh_offsets_m(lengths_m: np.ndarray) -> np.ndarray:
    """``(nodes, 3)`` OFFSET of every node in metres, BVH axes; the End Sites are ``bvh_end_sites_m``."""
    bones = _bone_index()
    out = np.zeros((len(BVH_NODES), 3))
    for i, n in enumerate(BVH_NODES):
        if n.parent < 0:
            continue
        par = BVH_NODES[n.parent]
        if par.at != n.at:  # a real bone from the parent's joint to this one
            out[i] = lengths_m[bones[(par.at, n.at)]] * np.asarray(par.rest, np.float64)
    return out


def bvh_end_sites_m(lengths_m: np.ndarray) -> dict[int, np.ndarray]:
    """Node index -> its End Site OFFSET in metres (a leaf's tip, ``END_SITE_FRACTION`` of its incoming bone)."""
    bones = _bone_index()
    out = {}
    for i, n in enumerate(BVH_NODES):
        if n.child is None:
            par = BVH_NODES[n.parent]
            out[i] = END_SITE_FRACTION * lengths_m[bones[(par.at, n.at)]] * np.asarray(n.rest, np.float64)
    return out


# --- rotations -----------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = n[..., 0] > 1e-9
    return v / np.where(n > 1e-9, n, 1.0), ok


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(F, 3, 3)``: the smallest rotations taking unit vectors ``a`` onto unit vectors ``b`` (both ``(F, 3)``)."""
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    # Opposite vectors: half a turn about an axis perpendicular to a (a fixed choice, the same in every frame).
    opposite = (s < 1e-9) & (c < 0)
    if opposite.any():
        ref = np.where(np.abs(a[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]])
        perp = np.cross(a, ref)
        axis = np.where(opposite[:, None], perp, axis)
        s = np.where(opposite, np.linalg.norm(axis, axis=-1), s)
    k = axis / np.where(s > 1e-12, s, 1.0)[:, None]
    angle = np.arctan2(np.where(opposite, 0.0, s), c)
    angle = np.where(opposite, np.pi, angle)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 0] = -k[:, 2], k[:, 1], k[:, 2]
    K[:, 1, 2], K[:, 2, 0], K[:, 2, 1] = -k[:, 0], -k[:, 1], k[:, 0]
    sa, ca = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + sa * K + (1 - ca) * (K @ K)


def _frame(d: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F, 3, 3)`` orthonormal frames with columns (d, r orthogonalised, d x r), and where they are defined."""
    e1, ok1 = _unit(d)
    e2, ok2 = _unit(r - np.sum(r * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1), ok1 & ok2


def _hold(rot: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Frames where a rotation is undefined take the last defined one (identity before the first)."""
    if ok.all():
        return rot
    frames = np.arange(len(rot))
    last = np.maximum.accumulate(np.where(ok, frames, -1))
    out = np.where((last >= 0)[:, None, None], rot[np.maximum(last, 0)], np.eye(3))
    return out


def solve_rotations(joints_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations of every BVH node from joint positions (no NaN).

    Args:
        joints_m: ``(frames, 20, 3)`` camera metres.

    Returns:
        ``(local, world)``: ``(frames, nodes, 3, 3)`` rotation matrices acting on column vectors in BVH axes;
        ``world[:, i] = world[:, parent] @ local[:, i]``.
    """
    p = np.asarray(joints_m, np.float64) * AXES
    f = len(p)
    local = np.zeros((f, len(BVH_NODES), 3, 3))
    world = np.zeros_like(local)
    for i, n in enumerate(BVH_NODES):
        parent_w = world[:, n.parent] if n.parent >= 0 else np.broadcast_to(np.eye(3), (f, 3, 3))
        if n.child is None:  # a leaf: only its End Site hangs on it
            loc = np.broadcast_to(np.eye(3), (f, 3, 3))
        elif n.twist is not None:
            target, ok = _frame(p[:, n.child] - p[:, n.at], p[:, n.twist[1]] - p[:, n.twist[0]])
            rest, _ = _frame(np.asarray(n.rest, np.float64)[None], np.array([[1.0, 0.0, 0.0]]))
            w = target @ np.swapaxes(rest, -1, -2)
            loc = _hold(np.swapaxes(parent_w, -1, -2) @ w, ok)
        else:
            d, ok = _unit(p[:, n.child] - p[:, n.at])
            d_local = np.einsum("fji,fj->fi", parent_w, d)  # parent_w^T @ d
            rest = np.broadcast_to(np.asarray(n.rest, np.float64), d_local.shape)
            loc = _hold(_swing(rest, d_local), ok)
        local[:, i] = loc
        world[:, i] = parent_w @ loc
    return local, world


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def euler_zxy_from_matrix(rot: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations -> ``(..., 3)`` radians ``(z, x, y)`` with ``rot = Rz(z) @ Rx(x) @ Ry(y)``."""
    r = np.asarray(rot, np.float64)
    x = np.arctan2(r[..., 2, 1], np.hypot(r[..., 2, 0], r[..., 2, 2]))
    lock = np.hypot(r[..., 2, 0], r[..., 2, 2]) < 1e-9  # x = +-90 degrees: only z - y or z + y is defined
    z = np.where(lock, np.arctan2(r[..., 1, 0], r[..., 0, 0]), np.arctan2(-r[..., 0, 1], r[..., 1, 1]))
    y = np.where(lock, 0.0, np.arctan2(-r[..., 2, 0], r[..., 2, 2]))
    return np.stack([z, x, y], axis=-1)


def matrix_from_euler(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """``(..., 3)`` degrees in channel ``order`` (e.g. ``"ZXY"``) -> ``(..., 3, 3)`` = the product in that order."""
    a = np.radians(np.asarray(angles_deg, np.float64))
    fns = {"X": _rx, "Y": _ry, "Z": _rz}
    out = None
    for k, axis in enumerate(order):
        m = fns[axis](a[..., k])
        out = m if out is None else out @ m
    return out


# --- BVH writing and reading ---------------------------------------------------------------------------------
def _fmt(v: float, digits: int) -> str:
    s = f"{v:.{digits}f}"
    return "0" if s.lstrip("-").strip("0.") == "" else s


def write_bvh(motion: Motion, path: str | Path) -> Motion:
    """Write a BVH file (conventions in the module docstring).

    Args:
        motion: the joints (missing joints are filled with ``fill_missing``).
        path: the output file.

    Returns:
        The filled ``Motion`` that was written (``filled_frames`` says how many frames held a joint).

    Raises:
        DataFormatError: a joint never valid.
    """
    filled = fill_missing(motion)
    lengths = bone_lengths_m(motion.joints_m)
    offsets = bvh_offsets_m(lengths) * CM_PER_M
    ends = {i: e * CM_PER_M for i, e in bvh_end_sites_m(lengths).items()}
    local, _ = solve_rotations(filled.joints_m)
    # (F, nodes, 3) in channel order Z X Y; unwrapped over time (a turn goes on past 180 degrees rather than
    # jumping to -180, so that an importer interpolating the curves does not spin the dancer back)
    angles = np.degrees(np.unwrap(euler_zxy_from_matrix(local), axis=0))
    root_cm = filled.joints_m[:, BVH_NODES[0].at] * AXES * CM_PER_M
    children: dict[int, list[int]] = {}
    for i, n in enumerate(BVH_NODES):
        children.setdefault(n.parent, []).append(i)
    lines = ["HIERARCHY"]

    def node(i: int, depth: int) -> None:
        pad, n = "  " * depth, BVH_NODES[i]
        lines.append(f"{pad}{'ROOT' if i == 0 else 'JOINT'} {n.name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {' '.join(_fmt(v, 6) for v in offsets[i])}")
        chans = ROOT_CHANNELS if i == 0 else JOINT_CHANNELS
        lines.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
        for c in children.get(i, []):
            node(c, depth + 1)
        if i in ends:
            lines.extend([f"{pad}  End Site", pad + "  {",
                          f"{pad}    OFFSET {' '.join(_fmt(v, 6) for v in ends[i])}", pad + "  }"])
        lines.append(pad + "}")

    node(0, 0)
    lines += ["MOTION", f"Frames: {filled.num_frames}", f"Frame Time: {1.0 / filled.fps:.8f}"]
    for f in range(filled.num_frames):
        vals = [_fmt(v, 5) for v in root_cm[f]] + [_fmt(v, 6) for v in angles[f].reshape(-1)]
        lines.append(" ".join(vals))
    Path(path).write_text("\n".join(lines) + "\n", encoding="ascii")
    return filled


@dataclasses.dataclass
class Bvh:
    """A parsed BVH file: ``names``, ``parents`` (-1 for the root), ``offsets`` ``(joints, 3)``, ``channels``
    (per joint), ``end_sites`` (joint index -> offset), ``frame_time_s``, ``values`` ``(frames, channels)``."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: dict[int, np.ndarray]
    frame_time_s: float
    values: np.ndarray

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)


def read_bvh(path: str | Path) -> Bvh:
    """Parse a BVH file (any channel order; position channels on any joint).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a BVH file.
    """
    path = Path(path)
    tokens = path.read_text(encoding="utf-8", errors="replace").split()
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise DataFormatError(f"{path}: ends too early")
        pos += 1
        return tokens[pos - 1]

    def expect(word: str) -> None:
        got = take()
        if got != word:
            raise DataFormatError(f"{path}: expected {word!r}, found {got!r}")

    names, parents, offsets, channels, ends = [], [], [], [], {}
    try:
        expect("HIERARCHY")
        expect("ROOT")
        stack: list[int] = []
        name = take()
        while True:
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            me = len(names) - 1
            expect("{")
            expect("OFFSET")
            offsets.append([float(take()) for _ in range(3)])
            expect("CHANNELS")
            channels.append(tuple(take() for _ in range(int(take()))))
            stack.append(me)
            while True:
                word = take()
                if word == "JOINT":
                    name = take()
                    break
                if word == "End":
                    expect("Site")
                    expect("{")
                    expect("OFFSET")
                    ends[stack[-1]] = np.array([float(take()) for _ in range(3)])
                    expect("}")
                elif word == "}":
                    stack.pop()
                    if not stack:
                        break
                else:
                    raise DataFormatError(f"{path}: unexpected {word!r} in the hierarchy")
            if not stack:
                break
        expect("MOTION")
        expect("Frames:")
        frames = int(take())
        expect("Frame")
        expect("Time:")
        frame_time = float(take())
        width = sum(len(c) for c in channels)
        rest = tokens[pos:]
        if len(rest) != frames * width:
            raise DataFormatError(f"{path}: {len(rest)} motion values for {frames} frames of {width} channels")
        values = np.array(rest, np.float64).reshape(frames, width)
    except ValueError as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a BVH file ({e})") from None
    return Bvh(names, parents, np.array(offsets, np.float64), channels, ends, frame_time, values)


def bvh_positions(bvh: Bvh) -> np.ndarray:
    """Forward kinematics: ``(frames, joints, 3)`` world positions in the file's units and axes.

    Each joint's local transform is a translation (its OFFSET, replaced by its position channels when it has
    them) followed by the product of its rotation channels in the order listed.
    """
    f = len(bvh.values)
    pos = np.zeros((f, len(bvh.names), 3))
    world = np.zeros((f, len(bvh.names), 3, 3))
    col = 0
    for i, chans in enumerate(bvh.channels):
        v = bvh.values[:, col : col + len(chans)]
        col += len(chans)
        t = np.broadcast_to(bvh.offsets[i], (f, 3)).copy()
        rot_axes, rot_vals = "", []
        for k, c in enumerate(chans):
            if c.endswith("position"):
                t[:, "XYZ".index(c[0])] = v[:, k]
            elif c.endswith("rotation"):
                rot_axes += c[0]
                rot_vals.append(v[:, k])
        loc = matrix_from_euler(np.stack(rot_vals, -1), rot_axes) if rot_axes else np.broadcast_to(np.eye(3),
                                                                                                    (f, 3, 3))
        p = bvh.parents[i]
        if p < 0:
            pos[:, i], world[:, i] = t, loc
        else:
            pos[:, i] = pos[:, p] + np.einsum("fij,fj->fi", world[:, p], t)
            world[:, i] = world[:, p] @ loc
    return pos


def bvh_to_joints_m(bvh: Bvh) -> np.ndarray:
    """``(frames, 20, 3)`` camera metres of the kerasdance joints in a BVH file written by ``write_bvh``.

    Raises:
        DataFormatError: a kerasdance joint name missing from the file.
    """
    pos = bvh_positions(bvh)
    missing = [n for n in JOINT_NAMES if n not in bvh.names]
    if missing:
        raise DataFormatError(f"the BVH file has no joints named {missing}")
    idx = [bvh.names.index(n) for n in JOINT_NAMES]
    return pos[:, idx] / CM_PER_M * AXES


# --- CSV -----------------------------------------------------------------------------------------------------
def csv_header() -> list[str]:
    return ["frame", "time_s"] + [f"{n}_{a}" for n in JOINT_NAMES for a in "xyz"]


def write_csv(motion: Motion, path: str | Path) -> None:
    """One row per frame: ``frame,time_s,<joint>_x,<joint>_y,<joint>_z,...`` (camera metres, empty = missing)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(csv_header())
        flat = motion.joints_m.reshape(motion.num_frames, -1)
        for i in range(motion.num_frames):
            w.writerow([i, f"{motion.time_s[i]:.6f}"] + ["" if not np.isfinite(v) else f"{v:.6f}" for v in flat[i]])


def read_csv(path: str | Path, fps: float | None = None) -> Motion:
    """Read a ``write_csv`` file back (the frame rate from ``time_s`` unless ``fps`` is given).

    Raises:
        DataFormatError: another header, or a cell that is not a number.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != csv_header():
        raise DataFormatError(f"{path}: the header is not frame,time_s,<joint>_x,<joint>_y,<joint>_z,...")
    try:
        data = np.array([[float(c) if c != "" else np.nan for c in r] for r in rows[1:]], np.float64)
    except ValueError as e:
        raise DataFormatError(f"{path}: {e}") from None
    if data.ndim != 2 or len(data) == 0 or data.shape[1] != len(rows[0]):
        raise DataFormatError(f"{path}: no frames, or rows of another width than the header")
    t = data[:, 1]
    if fps is None:
        span = t[-1] - t[0] if len(t) > 1 else 0.0
        fps = (len(t) - 1) / span if span > 0 else DEFAULT_FPS
    return _motion(data[:, 2:].reshape(len(data), NUM_JOINTS, 3), fps, path.name, t)
