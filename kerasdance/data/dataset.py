"""Dataset index over a folder and the generic layout (protocols: ``splits``; summaries: ``inspect``).

Two folder layouts are recognised by ``Dataset.open``:

* **MSR layout**: MSR-Action3D files ``aXX_sYY_eZZ_{sdepth.bin,skeleton3D.txt,skeleton.txt}``
  in the folder or in its subfolders one level down (e.g. ``Depth/`` and ``Skeleton/``). The
  class names are ``MSR_ACTIONS`` unless a ``classes.txt`` (one class name per line, in label
  order) sits in the folder. The label of ``aXX`` is ``XX - 1``.
* **Generic layout** (``kerasdance-generic`` version 1): a folder holding ``dataset.json`` and
  one ``.npz`` per sequence.

Generic layout, exactly:

``<name>.npz`` (``np.savez``/``np.savez_compressed``, no pickled objects):
    ``depth_mm``: ``(frames, height, width)`` uint16 depth in millimetres, 0 = no reading;
    ``height``/``width`` equal the intrinsics' ``height``/``width``.
    ``joints_m`` (optional): ``(frames, J, 3)`` float32 camera metres (x right, y up, z away
    from the sensor), NaN = missing, ``J = len(joint_names)``, same ``frames`` as ``depth_mm``.
    At least one of the two arrays is present.
    ``frame_labels`` (optional): ``(frames,)`` integer array (any signed or unsigned integer dtype, loaded
    as int64), the class index of every frame in ``class_names`` order, -1 = no move (pause, transition,
    unknown); ``frames`` as in ``depth_mm`` / ``joints_m``; values in ``-1 .. len(class_names) - 1``. For
    continuous recordings (several moves in one take); a clip needs only the sequence's ``label``.
    Other arrays are allowed and ignored by ``Dataset.load`` (read one with ``Dataset.load_extra``). The synthetic
    studio scenes (``kerasdance.data.scenes``) write, for P people (the dancers first, person 0 the one in
    ``joints_m``): ``people_joints_m`` ``(P, frames, J, 3)`` float32 (NaN where a person is absent),
    ``people_frame_labels`` ``(P, frames)`` int64, ``people_roles`` ``(P,)`` str (``dancer`` / ``passerby``),
    ``people_subjects`` ``(P,)`` int64 (-1 = none) and ``person_mask`` ``(frames, height, width)`` int8 (the
    person each pixel shows, -1 = the room).

``empty_room.npz`` (optional, beside ``dataset.json``): ``depth_mm`` ``(frames, height, width)`` uint16 frames of
the room without anybody in it (for learning the background; ``Dataset.empty_room``); synthetic rooms add their
truth: ``floor_plane`` ``(4,)`` (unit up normal ``n`` and ``d`` with ``n . p + d = 0`` on the floor, camera
metres), ``camera_height_m``, ``tilt_deg``, ``roll_deg``.

``dataset.json``::

    {
      "format": "kerasdance-generic",
      "version": 1,
      "class_names": ["class 0", "class 1", ...],
      "joint_names": [... the 20 names of kerasdance.skeleton.JOINT_NAMES, in that order ...],
      "intrinsics": {"fx": 285.63, "fy": 285.63, "cx": 160.0, "cy": 120.0, "width": 320, "height": 240},
      "fps": 15.0,
      "sequences": [
        {"file": "a01_s01_e01.npz", "label": "class 0" or null, "subject": 1 or null, "episode": 1 or null},
        ...
      ]
    }

``file`` is relative to the folder (no ``..``); the sequence name is the file's stem; ``label``
is a class name from ``class_names`` or null (unlabelled; also usual for a continuous recording
whose ``.npz`` holds ``frame_labels``). ``fps`` is optional: the frames per second of every
sequence, a positive finite number, 15.0 (MSR-Action3D's rate) when absent. Files written before
``fps`` and ``frame_labels`` existed are valid version 1 files as they are. Every field is validated
on open (and array dtypes/shapes/values on load); a violation raises ``DataFormatError`` naming the
file. The MSR layout has no per-frame labels and 15 frames per second.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data import msr
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError
from kerasdance.skeleton import JOINT_NAMES, NUM_JOINTS

log = logging.getLogger("kerasdance.data")

GENERIC_FORMAT = "kerasdance-generic"
GENERIC_VERSION = 1
DATASET_JSON = "dataset.json"
EMPTY_ROOM_NPZ = "empty_room.npz"
_SEQUENCE_KEYS = ("depth_mm", "joints_m", "frame_labels")
CLASSES_TXT = "classes.txt"
#: Frames per second of the MSR layout and of a generic-layout folder whose dataset.json has no ``fps``.
DEFAULT_FPS = 15.0


@dataclasses.dataclass(frozen=True)
class SequenceRef:
    """One sequence of a dataset, before loading.

    Attributes:
        name: sequence name (``aXX_sYY_eZZ`` or the ``.npz`` stem).
        label: 0-based class index, None when unlabelled.
        subject: 1-based performer id, None when unknown.
        episode: 1-based repetition id, None when unknown.
        modalities: subset of ``("depth", "skeleton")``.
        paths: file kind -> path (``"sdepth"``, ``"skeleton3D"``, ``"skeleton"`` as in ``msr.KIND_SUFFIXES``,
            or ``"npz"`` for the generic layout).
    """

    name: str
    label: int | None
    subject: int | None
    episode: int | None
    modalities: tuple[str, ...]
    paths: dict[str, Path] = dataclasses.field(compare=False)


class Dataset:
    """An indexed dataset folder; open one with ``Dataset.open(path)``.

    Attributes:
        root: the folder.
        layout: ``"msr"`` or ``"generic"``.
        class_names: class names in label order.
        joint_names: joint names in joint order.
        intrinsics: the depth camera (per-sequence intrinsics are on the loaded ``Sequence``).
        refs: the sequences, sorted by name.
        fps: frames per second of every sequence (also on each loaded ``Sequence``).
    """

    def __init__(
        self,
        root: Path,
        layout: str,
        class_names: tuple[str, ...],
        joint_names: tuple[str, ...],
        intrinsics: Intrinsics,
        refs: list[SequenceRef],
        fps: float = DEFAULT_FPS,
    ):
        self.root = Path(root)
        self.layout = layout
        self.class_names = tuple(class_names)
        self.joint_names = tuple(joint_names)
        self.intrinsics = intrinsics
        self.refs = sorted(refs, key=lambda r: r.name)
        self.fps = float(fps)

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[SequenceRef]:
        return iter(self.refs)

    def __repr__(self) -> str:
        return f"Dataset(root={str(self.root)!r}, layout={self.layout!r}, sequences={len(self)})"

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        """Index a folder in the MSR or the generic layout.

        Args:
            path: the folder (or its ``dataset.json``).

        Returns:
            The ``Dataset``.

        Raises:
            FileNotFoundError: no such folder.
            DataFormatError: not a folder, no recognisable files, or invalid metadata/labels.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such dataset folder")
        if path.is_file() and path.name == DATASET_JSON:
            path = path.parent
        if not path.is_dir():
            raise DataFormatError(f"{path}: not a folder (expected a dataset folder)")
        if (path / DATASET_JSON).is_file():
            return _open_generic(path)
        return _open_msr(path)

    def load(self, ref: SequenceRef) -> Sequence:
        """Load one sequence.

        Raises:
            FileNotFoundError: a file vanished.
            DataFormatError: a bad file.
        """
        if self.layout == "generic":
            return _load_npz(ref, self.intrinsics, self.joint_names, len(self.class_names), self.fps)
        seq = msr.load_msr_files(ref.name, ref.paths)
        seq.label = ref.label
        seq.fps = self.fps
        return seq

    def load_extra(self, ref: SequenceRef, key: str) -> np.ndarray | None:
        """One optional array of a generic-layout sequence's ``.npz`` (e.g. ``person_mask``), None when absent
        (always None in the MSR layout). Not validated: its writer documents it.

        Raises:
            DataFormatError: the file cannot be read.
        """
        if self.layout != "generic":
            return None
        p = ref.paths["npz"]
        try:
            with np.load(p, allow_pickle=False) as z:
                return z[key] if key in z.files else None
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataFormatError(f"{p}: cannot be read as .npz ({str(e)[:100]})") from None

    def empty_room(self) -> np.ndarray | None:
        """The ``(frames, height, width)`` uint16 depth frames of ``empty_room.npz`` beside ``dataset.json``, None
        when there is none.

        Raises:
            DataFormatError: the file cannot be read or its frames do not match the intrinsics.
        """
        p = self.root / EMPTY_ROOM_NPZ
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                depth = z["depth_mm"] if "depth_mm" in z.files else None
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataFormatError(f"{p}: cannot be read as .npz ({str(e)[:100]})") from None
        hw = (self.intrinsics.height, self.intrinsics.width)
        if depth is None or depth.dtype != np.uint16 or depth.ndim != 3 or depth.shape[1:] != hw or not len(depth):
            raise DataFormatError(f"{p}: depth_mm must be (frames, {hw[0]}, {hw[1]}) uint16 with frames > 0. "
                                  f"Received: {None if depth is None else (depth.shape, str(depth.dtype))}")
        return depth


# --- MSR layout ----------------------------------------------------------------------------------------------
def _read_classes_txt(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a UTF-8 text file") from None
    names = tuple(ln.strip() for ln in text.splitlines() if ln.strip())
    if not names:
        raise DataFormatError(f"{path}: no class names (expected one per line)")
    if len(set(names)) != len(names):
        raise DataFormatError(f"{path}: duplicate class names in {list(names)!r}")
    return names


def _open_msr(root: Path) -> Dataset:
    candidates = [p for p in root.iterdir() if p.is_file()]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        candidates += [p for p in sub.iterdir() if p.is_file()]
    files: dict[str, dict[str, Path]] = {}
    skipped = 0
    for p in sorted(candidates):
        if p.name.startswith(".") or (p.parent == root and p.name == CLASSES_TXT):
            continue
        try:
            name = msr.parse_name(p)
        except DataFormatError:
            log.warning("%s: skipped, not an MSR-Action3D file name", p)
            skipped += 1
            continue
        if name.kind not in msr.KIND_SUFFIXES:
            log.warning("%s: skipped, no MSR file kind (_sdepth.bin, _skeleton3D.txt, _skeleton.txt)", p)
            skipped += 1
            continue
        entry = files.setdefault(name.stem, {})
        if name.kind in entry:
            log.warning("%s: skipped, duplicate of %s", p, entry[name.kind])
            continue
        entry[name.kind] = p
    if not files:
        extra = f" ({skipped} files with other names skipped)" if skipped else ""
        raise DataFormatError(f"{root}: no MSR-Action3D files (aXX_sYY_eZZ_<kind>) and no {DATASET_JSON}{extra}")
    classes_path = root / CLASSES_TXT
    class_names = _read_classes_txt(classes_path) if classes_path.is_file() else msr.MSR_ACTIONS
    refs = []
    for stem, paths in files.items():
        name = msr.parse_name(stem)
        if name.action > len(class_names):
            raise DataFormatError(
                f"{next(iter(paths.values()))}: action {name.action} is beyond the {len(class_names)} class names"
                + (f" of {classes_path}" if classes_path.is_file() else " of MSR-Action3D")
            )
        modalities = tuple(
            m for m, kinds in (("depth", (msr.KIND_DEPTH,)), ("skeleton", (msr.KIND_SKELETON3D, msr.KIND_SCREEN)))
            if any(k in paths for k in kinds)
        )  # fmt: skip
        refs.append(SequenceRef(stem, name.action - 1, name.subject, name.episode, modalities, dict(paths)))
    return Dataset(root, "msr", class_names, JOINT_NAMES, KINECT_V1, refs, DEFAULT_FPS)


# --- generic layout ------------------------------------------------------------------------------------------
def _optional_int(meta: Path, i: int, entry: dict, key: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataFormatError(f"{meta}: sequences[{i}].{key} must be a non-negative integer or null. "
                              f"Received: {key}={value!r}")
    return value


def _open_generic(root: Path) -> Dataset:
    meta = root / DATASET_JSON
    try:
        d = json.loads(meta.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(f"{meta}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise DataFormatError(f"{meta}: top level must be an object. Received: {type(d).__name__}")
    if d.get("format") != GENERIC_FORMAT:
        raise DataFormatError(f"{meta}: format must be {GENERIC_FORMAT!r}. Received: format={d.get('format')!r}")
    if d.get("version") != GENERIC_VERSION:
        raise DataFormatError(f"{meta}: unsupported version. Received: version={d.get('version')!r}, "
                              f"expected {GENERIC_VERSION}")
    class_names = d.get("class_names")
    if (not isinstance(class_names, list) or not class_names
            or not all(isinstance(c, str) and c for c in class_names) or len(set(class_names)) != len(class_names)):
        raise DataFormatError(f"{meta}: class_names must be a non-empty list of distinct strings. "
                              f"Received: class_names={class_names!r}")
    joint_names = d.get("joint_names")
    if joint_names != list(JOINT_NAMES):
        raise DataFormatError(f"{meta}: joint_names must be the {NUM_JOINTS} kerasdance joint names in order "
                              f"{list(JOINT_NAMES)}. Received: joint_names={joint_names!r}")
    intr = d.get("intrinsics")
    keys = ("fx", "fy", "cx", "cy", "width", "height")
    if not isinstance(intr, dict) or set(intr) != set(keys):
        raise DataFormatError(f"{meta}: intrinsics must be an object with keys {list(keys)}. Received: {intr!r}")
    if (not all(isinstance(intr[k], int | float) and not isinstance(intr[k], bool) and math.isfinite(intr[k])
                for k in keys) or not all(isinstance(intr[k], int) for k in ("width", "height"))):
        raise DataFormatError(f"{meta}: intrinsics must be finite numbers (width/height integers). Received: {intr!r}")
    try:
        intrinsics = Intrinsics.from_dict(intr)
    except ValueError as e:
        raise DataFormatError(f"{meta}: bad intrinsics ({e})") from None
    fps = d.get("fps", DEFAULT_FPS)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise DataFormatError(f"{meta}: fps must be a positive finite number (frames per second) or absent "
                              f"(= {DEFAULT_FPS}). Received: fps={fps!r}")
    seqs = d.get("sequences")
    if not isinstance(seqs, list) or not seqs:
        raise DataFormatError(f"{meta}: sequences must be a non-empty list. Received: sequences={seqs!r:.80}")
    index = {c: i for i, c in enumerate(class_names)}
    refs, seen = [], set()
    for i, entry in enumerate(seqs):
        if not isinstance(entry, dict):
            raise DataFormatError(f"{meta}: sequences[{i}] must be an object. Received: {entry!r:.80}")
        file = entry.get("file")
        if (not isinstance(file, str) or not file.endswith(".npz") or Path(file).is_absolute()
                or ".." in Path(file).parts or "\\" in file):
            raise DataFormatError(f"{meta}: sequences[{i}].file must be a relative .npz path inside the folder. "
                                  f"Received: file={file!r}")
        p = root / file
        if not p.is_file():
            raise DataFormatError(f"{meta}: sequences[{i}].file {file!r} is missing from {root}")
        name = Path(file).stem
        if name in seen:
            raise DataFormatError(f"{meta}: two sequences are named {name!r}")
        seen.add(name)
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or label not in index):
            raise DataFormatError(f"{meta}: sequences[{i}] ({file}) has an unknown class name. "
                                  f"Received: label={label!r}; class_names={class_names!r}")
        subject = _optional_int(meta, i, entry, "subject")
        episode = _optional_int(meta, i, entry, "episode")
        try:
            with zipfile.ZipFile(p) as z:
                members = {n.removesuffix(".npy") for n in z.namelist()}
        except (zipfile.BadZipFile, OSError) as e:
            raise DataFormatError(f"{p}: not a .npz file ({e})") from None
        modalities = tuple(m for m, k in (("depth", "depth_mm"), ("skeleton", "joints_m")) if k in members)
        if not modalities:
            raise DataFormatError(f"{p}: holds neither depth_mm nor joints_m. Received arrays: {sorted(members)}")
        refs.append(SequenceRef(name, None if label is None else index[label], subject, episode, modalities,
                                {"npz": p}))
    return Dataset(root, "generic", tuple(class_names), tuple(joint_names), intrinsics, refs, float(fps))


def recording_meta(npz: str | Path) -> tuple[Intrinsics, float]:
    """The camera and frame rate of a generic-layout ``.npz`` read on its own (``kerasdance predict``, a replayed
    recording): its sibling ``dataset.json``'s ``intrinsics`` and ``fps``; Kinect v1 and ``DEFAULT_FPS`` without
    one (as MSR files), or where it has no ``fps``.

    Raises:
        DataFormatError: a ``dataset.json`` whose intrinsics or fps cannot be read.
    """
    meta = Path(npz).parent / "dataset.json"
    if not meta.exists():
        return KINECT_V1, DEFAULT_FPS
    try:
        info = json.loads(meta.read_text())
        fps = float(info.get("fps", DEFAULT_FPS))
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be positive, not {fps!r}")
        return Intrinsics.from_dict(info["intrinsics"]), fps
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataFormatError(f"{meta}: cannot read its intrinsics and fps ({e})") from None


def _check_frame_labels(frame_labels, frames: int, num_classes: int) -> np.ndarray:
    """``frame_labels`` as int64, or ValueError saying what is wrong."""
    a = np.asarray(frame_labels)
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise ValueError(f"frame_labels must be a (frames,) integer array. Received: shape={a.shape}, dtype={a.dtype}")
    if len(a) != frames:
        raise ValueError(f"frame_labels has {len(a)} frames but the sequence has {frames}")
    if len(a) and (a.min() < -1 or a.max() >= num_classes):
        raise ValueError(f"frame_labels must lie in -1 .. {num_classes - 1} (-1 = no move; {num_classes} class names). "
                         f"Received: min={a.min()}, max={a.max()}")
    return a.astype(np.int64)


def _load_npz(ref: SequenceRef, intrinsics: Intrinsics, joint_names: tuple[str, ...], num_classes: int,
              fps: float = DEFAULT_FPS) -> Sequence:
    p = ref.paths["npz"]
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k in _SEQUENCE_KEYS}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DataFormatError(f"{p}: cannot be read as .npz ({str(e)[:100]})") from None
    depth = arrays.get("depth_mm")
    joints = arrays.get("joints_m")
    if depth is None and joints is None:
        raise DataFormatError(f"{p}: holds neither depth_mm nor joints_m")
    hw = (intrinsics.height, intrinsics.width)
    if depth is not None:
        if depth.dtype != np.uint16 or depth.ndim != 3 or depth.shape[1:] != hw or len(depth) == 0:
            raise DataFormatError(f"{p}: depth_mm must be (frames, {hw[0]}, {hw[1]}) uint16 with frames > 0. "
                                  f"Received: shape={depth.shape}, dtype={depth.dtype}")
    if joints is not None:
        if (joints.dtype.kind != "f" or joints.ndim != 3 or joints.shape[1:] != (len(joint_names), 3)
                or len(joints) == 0):
            raise DataFormatError(f"{p}: joints_m must be (frames, {len(joint_names)}, 3) float32. "
                                  f"Received: shape={joints.shape}, dtype={joints.dtype}")
        joints = joints.astype(np.float32)
        if depth is not None and len(joints) != len(depth):
            raise DataFormatError(f"{p}: joints_m has {len(joints)} frames but depth_mm has {len(depth)}")
    frame_labels = arrays.get("frame_labels")
    if frame_labels is not None:
        frames = len(depth) if depth is not None else len(joints)
        try:
            frame_labels = _check_frame_labels(frame_labels, frames, num_classes)
        except ValueError as e:
            raise DataFormatError(f"{p}: {e}") from None
    return Sequence(ref.name, depth, joints, ref.label, ref.subject, ref.episode, intrinsics, fps=fps,
                    frame_labels=frame_labels)


def write_generic(
    out_dir: str | Path,
    sequences: Iterable[Sequence],
    class_names: Iterable[str],
    intrinsics: Intrinsics,
    fps: float = DEFAULT_FPS,
    extra_arrays: Callable[[Sequence], Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Write sequences in the generic layout (one ``.npz`` each plus ``dataset.json``).

    Args:
        out_dir: the folder (created if needed; an existing ``dataset.json`` is replaced).
        sequences: the sequences; names must be distinct file-name-safe stems. A sequence's
            ``frame_labels`` (when not None) are written to its ``.npz``.
        class_names: class names in label order.
        intrinsics: the one camera of every sequence.
        fps: the one frame rate of every sequence (written to ``dataset.json``).
        extra_arrays: called with each sequence, returns more arrays for its ``.npz`` (names that are Python
            identifiers other than the sequence's own, no object arrays); ``Dataset.load`` ignores them.

    Returns:
        The path of ``dataset.json``.

    Raises:
        ValueError: a label or frame label beyond the class names, frame labels of another length
            or not integers, a sequence with other intrinsics, frame rate or depth size, a bad or
            repeated name, no sequences, a frame rate that is not a positive finite number, a bad extra array.
    """
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number. Received: fps={fps!r}")
    fps = float(fps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = [str(c) for c in class_names]
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be non-empty and distinct. Received: class_names={class_names!r}")
    entries, seen = [], set()
    for seq in sequences:
        name = seq.name
        if not name or name in seen or Path(name).name != name or name.startswith(".") or "\\" in name:
            raise ValueError(f"sequence names must be distinct plain file stems. Received: name={name!r}")
        seen.add(name)
        if seq.intrinsics != intrinsics:
            raise ValueError(f"{name}: its intrinsics differ from the dataset's. "
                             f"Received: {seq.intrinsics!r}, expected {intrinsics!r}")
        if seq.label is not None and not 0 <= seq.label < len(class_names):
            raise ValueError(f"{name}: label beyond the {len(class_names)} class names. Received: label={seq.label!r}")
        if seq.fps != fps:
            raise ValueError(f"{name}: its frame rate differs from the dataset's. Received: fps={seq.fps!r}, "
                             f"expected {fps!r}")
        arrays: dict[str, np.ndarray] = {}
        if seq.depth_mm is not None:
            depth = np.asarray(seq.depth_mm)
            if depth.ndim != 3 or depth.shape[1:] != (intrinsics.height, intrinsics.width):
                raise ValueError(f"{name}: depth_mm must be (frames, {intrinsics.height}, {intrinsics.width}). "
                                 f"Received: shape={depth.shape}")
            arrays["depth_mm"] = depth.astype(np.uint16)
        if seq.joints_m is not None:
            arrays["joints_m"] = np.asarray(seq.joints_m, dtype=np.float32)
        if not arrays:
            raise ValueError(f"{name}: has neither depth nor joints")
        if seq.frame_labels is not None:
            frames = len(next(iter(arrays.values())))
            try:
                arrays["frame_labels"] = _check_frame_labels(seq.frame_labels, frames, len(class_names))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        for key, value in (extra_arrays(seq) if extra_arrays is not None else {}).items():
            value = np.asarray(value)
            if not key.isidentifier() or key in _SEQUENCE_KEYS or value.dtype.kind == "O":
                raise ValueError(f"{name}: extra arrays need identifier names other than {list(_SEQUENCE_KEYS)} and "
                                 f"no object dtype. Received: {key!r} ({value.dtype})")
            arrays[key] = value
        np.savez_compressed(out_dir / f"{name}.npz", **arrays)
        entries.append({
            "file": f"{name}.npz",
            "label": None if seq.label is None else class_names[seq.label],
            "subject": None if seq.subject is None else int(seq.subject),
            "episode": None if seq.episode is None else int(seq.episode),
        })  # fmt: skip
    if not entries:
        raise ValueError("no sequences to write")
    meta = {
        "format": GENERIC_FORMAT, "version": GENERIC_VERSION, "class_names": class_names,
        "joint_names": list(JOINT_NAMES), "intrinsics": intrinsics.to_dict(), "fps": fps, "sequences": entries,
    }  # fmt: skip
    path = out_dir / DATASET_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    log.info("wrote %d sequences to %s", len(entries), out_dir)
    return path


def convert_msr_to_generic(msr_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert an MSR-layout folder to the generic layout.

    Args:
        msr_dir: the MSR folder.
        out_dir: the output folder.

    Returns:
        The path of the written ``dataset.json``.

    Raises:
        FileNotFoundError: no such folder.
        DataFormatError: ``msr_dir`` is not an MSR-layout folder or a file in it is bad.
        ValueError: sequences with different depth sizes.
    """
    ds = Dataset.open(msr_dir)
    if ds.layout != "msr":
        raise DataFormatError(f"{msr_dir}: already in the generic layout (has {DATASET_JSON})")
    seqs = (ds.load(r) for r in ds.refs)
    first = next(seqs)

    def chained():
        yield first
        yield from seqs

    return write_generic(out_dir, chained(), ds.class_names, first.intrinsics)
