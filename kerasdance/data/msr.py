"""MSR-Action3D files: depth ``.bin`` maps, real-world and screen skeletons, file names.

File names are ``aXX_sYY_eZZ_<kind>``: action, subject and episode, two digits each, from 01
(MSR-Action3D itself has actions 1-20, subjects 1-10, episodes 1-3; any 01-99 is accepted here).
The kinds:

``_sdepth.bin``
    Little-endian. A header of three int32: ``frames, columns, rows``; then, per frame,
    ``rows x columns`` int32 depth values in millimetres, row-major, row 0 at the top, no per-frame
    header; background is 0. The MSR DailyActivity3D variant follows each row with ``columns``
    uint8 player ids (``columns * 5`` bytes a row); it is recognised from the file size and the ids
    are dropped.
``_skeleton3D.txt``
    Text, ``x y z c`` per row, 20 rows a frame in ``kerasdance.skeleton.Joint`` order, no header;
    metres, camera-centred, y up, z = distance from the sensor, ``c`` = confidence in [0, 1].
``_skeleton.txt``
    Text, ``u v d c`` per row: pixel column and row in the 320x240 depth map and
    ``d = 250 z`` (4 mm units). Kinect v1 at 320x240: ``u = 160 + 285.63 x/z``,
    ``v = 120 - 285.63 y/z`` (``KINECT_V1.project``).

Readers survive the quirks of the real recordings and log a warning (logger ``kerasdance.data``)
that names the file: all-zero depth frames, rows of NaN or of ~2.1e9 (read as NaN), line counts
that are not a multiple of 20 (the incomplete last frame is dropped), rows of 3 columns (no
confidence: read as 1), depth values outside 0..65535 (clipped). Blank lines, trailing
whitespace and Windows line endings are accepted silently. A skeleton row is invalid (NaN, confidence
0) when a value is not finite, when its magnitude is 1e9 or more, or when z (or d) is not positive.

Everything else that is wrong with a file (truncated or wrong-size ``.bin``, absurd header values,
empty or non-numeric text, a bad file name) raises ``DataFormatError`` with a one-line message that
names the file; a missing file raises ``FileNotFoundError``. No other exception leaves a reader.

Writers are the inverse of the readers: text is written with ``%.6f``, invalid rows as ``nan`` (3D)
or ``2147483648`` (screen) with confidence 0, so write -> read -> write gives identical bytes.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError
from kerasdance.skeleton import NUM_JOINTS

log = logging.getLogger("kerasdance.data")

MSR_ACTIONS: tuple[str, ...] = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw",
    "draw x", "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend",
    "forward kick", "side kick", "jogging", "tennis swing", "tennis serve", "golf swing", "pick up & throw",
)
#: The three 8-action subsets of Li et al. (2010), as 1-based action ids.
AS1: tuple[int, ...] = (2, 3, 5, 6, 10, 13, 18, 20)
AS2: tuple[int, ...] = (1, 4, 7, 8, 9, 11, 12, 14)
AS3: tuple[int, ...] = (6, 14, 15, 16, 17, 18, 19, 20)
CROSS_SUBJECT_TRAIN: tuple[int, ...] = (1, 3, 5, 7, 9)
CROSS_SUBJECT_TEST: tuple[int, ...] = (2, 4, 6, 8, 10)

#: File kinds and their name suffixes.
KIND_DEPTH = "sdepth"
KIND_SKELETON3D = "skeleton3D"
KIND_SCREEN = "skeleton"
KIND_SUFFIXES: dict[str, str] = {
    KIND_DEPTH: "_sdepth.bin",
    KIND_SKELETON3D: "_skeleton3D.txt",
    KIND_SCREEN: "_skeleton.txt",
}
_KIND_FROM_SUFFIX = {suffix[1:].lower(): kind for kind, suffix in KIND_SUFFIXES.items()}
_NAME_RE = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})(?:_(sdepth\.bin|skeleton3d\.txt|skeleton\.txt))?", re.IGNORECASE)

HEADER_BYTES = 12
MAX_FRAMES = 100_000
MAX_SIDE = 4096
#: Skeleton values of this magnitude or more are the sensor's "invalid" marker (~2.1e9 in real files).
INVALID_MAGNITUDE = 1e9
#: What the screen writer writes for u, v, d of an invalid row.
SCREEN_INVALID = 2147483648.0
#: d in a screen file is 250 z: 4 mm units.
SCREEN_D_PER_M = 250.0


class MsrName(NamedTuple):
    """A parsed MSR-Action3D file name; ``kind`` is ``""`` for a bare stem like ``a01_s01_e01``."""

    action: int
    subject: int
    episode: int
    kind: str

    @property
    def stem(self) -> str:
        return format_name(self.action, self.subject, self.episode, "")


def parse_name(path: str | Path) -> MsrName:
    """Parse ``aXX_sYY_eZZ_<kind>`` (or a bare ``aXX_sYY_eZZ`` stem).

    Args:
        path: a file path or name; only the last component is read. Case is ignored.

    Returns:
        The 1-based action, subject and episode and the kind (``"sdepth"``, ``"skeleton3D"``,
        ``"skeleton"`` or ``""``).

    Raises:
        DataFormatError: the name does not follow the pattern or a number is 00.
    """
    name = Path(path).name
    m = _NAME_RE.fullmatch(name)
    if m is None:
        raise DataFormatError(
            f"{path}: not an MSR-Action3D file name (expected aXX_sYY_eZZ_sdepth.bin, "
            f"aXX_sYY_eZZ_skeleton3D.txt or aXX_sYY_eZZ_skeleton.txt). Received: {name!r}"
        )
    action, subject, episode = (int(g) for g in m.groups()[:3])
    if min(action, subject, episode) < 1:
        raise DataFormatError(f"{path}: action, subject and episode start at 01. Received: {name!r}")
    kind = _KIND_FROM_SUFFIX[m.group(4).lower()] if m.group(4) else ""
    return MsrName(action, subject, episode, kind)


def format_name(action: int, subject: int, episode: int, kind: str) -> str:
    """The file name ``aXX_sYY_eZZ_<kind>`` (``kind=""`` gives the bare stem ``aXX_sYY_eZZ``).

    Raises:
        ValueError: a number outside 1..99 or an unknown kind.
    """
    for what, value in (("action", action), ("subject", subject), ("episode", episode)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= 99:
            raise ValueError(f"{what} must be an int in 1..99. Received: {what}={value!r}")
    if kind not in KIND_SUFFIXES and kind != "":
        raise ValueError(f"kind must be one of {sorted(KIND_SUFFIXES)} or ''. Received: kind={kind!r}")
    return f"a{action:02d}_s{subject:02d}_e{episode:02d}{KIND_SUFFIXES.get(kind, '')}"


# --- reading helpers ------------------------------------------------------------------------------------------
def _reader(fn):
    """Make sure only DataFormatError (or FileNotFoundError) leaves a reader, naming the file."""

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        try:
            return fn(Path(path), *args, **kwargs)
        except (DataFormatError, FileNotFoundError):
            raise
        except (OSError, ValueError, IndexError, TypeError, OverflowError, UnicodeError) as e:
            raise DataFormatError(f"{path}: cannot read ({type(e).__name__}: {e})") from None

    return wrapper


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file")
    return path.read_bytes()


@_reader
def read_depth_bin(path: str | Path) -> np.ndarray:
    """Read an MSR ``_sdepth.bin`` depth file (or the DailyActivity3D variant with player ids).

    Args:
        path: the ``.bin`` file.

    Returns:
        ``(frames, rows, columns)`` uint16 depth in millimetres, 0 = no reading. Values above
        65535 are clipped to 65535 and negative values to 0, with a warning.

    Raises:
        DataFormatError: empty or truncated file, header out of range, size that does not match the header.
        FileNotFoundError: no such file.
    """
    data = _read_bytes(path)
    if len(data) < HEADER_BYTES:
        what = "empty" if not data else f"only {len(data)} bytes long"
        raise DataFormatError(f"{path}: file is {what}: shorter than the 12-byte header (frames, columns, rows)")
    frames, cols, rows = (int(v) for v in np.frombuffer(data, "<i4", count=3))
    if not 1 <= frames <= MAX_FRAMES:
        raise DataFormatError(f"{path}: header frames={frames} is outside 1..{MAX_FRAMES}")
    if not (1 <= cols <= MAX_SIDE and 1 <= rows <= MAX_SIDE):
        raise DataFormatError(f"{path}: header columns={cols}, rows={rows}: each must be in 1..{MAX_SIDE}")
    body = len(data) - HEADER_BYTES
    plain, with_ids = frames * rows * cols * 4, frames * rows * cols * 5
    if body == plain:
        depth = np.frombuffer(data, "<i4", offset=HEADER_BYTES).reshape(frames, rows, cols)
    elif body == with_ids:
        row_t = np.dtype([("depth", "<i4", (cols,)), ("player", "u1", (cols,))])
        depth = np.frombuffer(data, row_t, offset=HEADER_BYTES)["depth"].reshape(frames, rows, cols)
        log.debug("%s: DailyActivity3D layout (player ids after each row), ids dropped", path)
    else:
        raise DataFormatError(
            f"{path}: {body} bytes after the header, but frames={frames}, columns={cols}, rows={rows} "
            f"need {plain} (int32 depth) or {with_ids} (with player ids): truncated or wrong header"
        )
    n_out = int(np.count_nonzero((depth < 0) | (depth > 65535)))
    if n_out:
        log.warning("%s: %d depth values outside 0..65535 mm, clipped", path, n_out)
    depth_mm = np.clip(depth, 0, 65535).astype(np.uint16)
    valid = depth_mm.reshape(frames, -1).any(axis=1)
    if not valid.any():
        log.warning("%s: every depth frame is all zero (missing recording)", path)
    elif not valid.all():
        log.warning("%s: %d of %d depth frames are all zero (missing), e.g. frame %d",
                    path, int((~valid).sum()), frames, int(np.flatnonzero(~valid)[0]))
    return depth_mm


def write_depth_bin(path: str | Path, depth_mm: np.ndarray) -> Path:
    """Write ``(frames, rows, columns)`` depth in millimetres as an MSR ``_sdepth.bin`` (int32 layout).

    Args:
        path: the file to write (overwritten).
        depth_mm: integer array (uint16 usually); values must fit in int32.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: wrong shape, sizes the reader would reject, non-integer values or values outside int32.
    """
    depth = np.asarray(depth_mm)
    if depth.ndim != 3:
        raise ValueError(f"depth_mm must be (frames, rows, columns). Received: shape={depth.shape}")
    frames, rows, cols = depth.shape
    if not 1 <= frames <= MAX_FRAMES or not (1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE):
        raise ValueError(f"depth_mm needs 1..{MAX_FRAMES} frames of 1..{MAX_SIDE} pixels a side. "
                         f"Received: shape={depth.shape}")
    if not (np.issubdtype(depth.dtype, np.integer) or depth.dtype == np.bool_):
        raise ValueError(f"depth_mm must be an integer array. Received: dtype={depth.dtype}")
    if depth.size and (depth.min() < -(2**31) or depth.max() > 2**31 - 1):
        raise ValueError(f"depth_mm values must fit in int32. Received: min={depth.min()}, max={depth.max()}")
    path = Path(path)
    header = np.array([frames, cols, rows], "<i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(depth, dtype="<i4").tobytes())
    return path


def _parse_rows(path: Path) -> np.ndarray:
    """``(rows, 4)`` float64 from a 3- or 4-column text file; confidence 1 where absent; NaN where garbled."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) not in (3, 4):
            raise DataFormatError(
                f"{path}: line {number} has {len(tokens)} columns, expected 4 (x y z c) or 3. "
                f"Received: {line.strip()[:60]!r}"
            )
        rows.append(tokens)
    if not rows:
        raise DataFormatError(f"{path}: file is empty (no skeleton rows)")
    n_short = sum(len(r) == 3 for r in rows)
    if n_short:
        log.warning("%s: %d rows have 3 columns (no confidence), confidence set to 1", path, n_short)
        rows = [r if len(r) == 4 else [*r, "1"] for r in rows]
    try:
        values = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        for number, r in enumerate(rows, 1):
            try:
                np.array(r, dtype=np.float64)
            except (ValueError, TypeError, OverflowError):
                raise DataFormatError(f"{path}: non-numeric value in skeleton row {number}. "
                                      f"Received: {' '.join(r)[:60]!r}") from None
        raise DataFormatError(f"{path}: non-numeric values") from None
    return values


def _invalid_rows(values: np.ndarray) -> np.ndarray:
    """``(..., 4)`` rows -> ``(...)`` bool: a coordinate not finite, of magnitude >= 1e9, or z/d <= 0."""
    xyz = values[..., :3]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(xyz).all(axis=-1) | (np.abs(xyz) >= INVALID_MAGNITUDE).any(axis=-1)
        bad |= ~(xyz[..., 2] > 0)
    return bad


def _read_skeleton(path: Path) -> tuple[np.ndarray, np.ndarray]:
    values = _parse_rows(path)
    n_rows = len(values)
    frames = n_rows // NUM_JOINTS
    if frames == 0:
        raise DataFormatError(f"{path}: {n_rows} skeleton rows, fewer than one frame of {NUM_JOINTS} joints")
    if n_rows % NUM_JOINTS:
        log.warning("%s: %d rows is not a multiple of %d, incomplete last frame (%d rows) dropped",
                    path, n_rows, NUM_JOINTS, n_rows % NUM_JOINTS)
    values = values[: frames * NUM_JOINTS].reshape(frames, NUM_JOINTS, 4)
    bad = _invalid_rows(values)
    if bad.any():
        log.warning("%s: %d of %d joint rows invalid (NaN or ~2.1e9), read as NaN",
                    path, int(bad.sum()), bad.size)
    coords = np.where(bad[..., None], np.nan, values[..., :3]).astype(np.float32)
    conf = np.clip(np.nan_to_num(values[..., 3], nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    conf = np.where(bad, 0.0, conf).astype(np.float32)
    return coords, conf


@_reader
def read_skeleton3d(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an MSR ``_skeleton3D.txt`` (real-world) skeleton file.

    Args:
        path: the text file.

    Returns:
        ``(joints_m, conf)``: ``(frames, 20, 3)`` float32 camera metres (x right, y up, z away),
        NaN for invalid rows; ``(frames, 20)`` float32 confidence in [0, 1], 0 for invalid rows.

    Raises:
        DataFormatError: empty, non-numeric, wrong column count or fewer than 20 rows.
        FileNotFoundError: no such file.
    """
    return _read_skeleton(path)


@_reader
def read_skeleton_screen(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an MSR ``_skeleton.txt`` (screen) skeleton file.

    Args:
        path: the text file.

    Returns:
        ``(uvd, conf)``: ``(frames, 20, 3)`` float32 of pixel column, pixel row and ``d = 250 z``,
        NaN for invalid rows (~2.1e9 in real files); ``(frames, 20)`` float32 confidence.

    Raises:
        DataFormatError: empty, non-numeric, wrong column count or fewer than 20 rows.
        FileNotFoundError: no such file.
    """
    return _read_skeleton(path)


def _write_skeleton(path: str | Path, coords: np.ndarray, conf: np.ndarray | None, invalid: str) -> Path:
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 3 or coords.shape[1:] != (NUM_JOINTS, 3) or len(coords) < 1:
        raise ValueError(f"joints must be (frames >= 1, {NUM_JOINTS}, 3). Received: shape={coords.shape}")
    frames = len(coords)
    if conf is None:
        conf = np.ones((frames, NUM_JOINTS), np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    if conf.shape != (frames, NUM_JOINTS):
        raise ValueError(f"conf must be ({frames}, {NUM_JOINTS}). Received: shape={conf.shape}")
    conf = np.clip(np.nan_to_num(conf, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    table = np.concatenate([coords, conf[..., None]], axis=-1).reshape(-1, 4).astype(np.float64)
    text = np.char.mod("%.6f", table).astype("<U64")  # wide enough for the invalid marker
    # validity is decided on what the reader will parse back, so that write -> read -> write is exact
    bad = _invalid_rows(text.astype(np.float64))
    text[bad, :3] = invalid
    text[bad, 3] = "0.000000"
    path = Path(path)
    path.write_text("".join(" ".join(row) + "\n" for row in text.tolist()), encoding="ascii", newline="\n")
    return path


def write_skeleton3d(path: str | Path, joints_m: np.ndarray, conf: np.ndarray | None = None) -> Path:
    """Write a ``_skeleton3D.txt`` file: ``x y z c`` with ``%.6f``, invalid rows as ``nan nan nan 0``.

    Args:
        path: the file to write (overwritten).
        joints_m: ``(frames, 20, 3)`` camera metres, NaN for missing joints.
        conf: ``(frames, 20)`` confidence (clipped to [0, 1]); 1 when None. Invalid rows get 0.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: wrong shapes.
    """
    return _write_skeleton(path, joints_m, conf, "nan")


def write_skeleton_screen(path: str | Path, uvd: np.ndarray, conf: np.ndarray | None = None) -> Path:
    """Write a ``_skeleton.txt`` file: ``u v d c`` with ``%.6f``, invalid rows as ``2147483648`` and c = 0.

    Args:
        path: the file to write (overwritten).
        uvd: ``(frames, 20, 3)`` pixel column, pixel row and ``d = 250 z``; NaN for missing joints.
        conf: ``(frames, 20)`` confidence (clipped to [0, 1]); 1 when None. Invalid rows get 0.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: wrong shapes.
    """
    return _write_skeleton(path, uvd, conf, f"{SCREEN_INVALID:.6f}")


def screen_to_camera(uvd: np.ndarray, intrinsics: Intrinsics = KINECT_V1) -> np.ndarray:
    """Screen skeleton ``(..., 3)`` of (u, v, d = 250 z) -> camera metres ``(..., 3)`` (NaN stays NaN)."""
    uvd = np.asarray(uvd, dtype=np.float64)
    uvz = np.concatenate([uvd[..., :2], uvd[..., 2:3] / SCREEN_D_PER_M], axis=-1)
    return intrinsics.unproject(uvz)


def camera_to_screen(joints_m: np.ndarray, intrinsics: Intrinsics = KINECT_V1) -> np.ndarray:
    """Camera metres ``(..., 3)`` -> screen ``(..., 3)`` of (u, v, d = 250 z); NaN where z <= 0 or missing."""
    uvz = intrinsics.project(joints_m)
    return np.concatenate([uvz[..., :2], uvz[..., 2:3] * SCREEN_D_PER_M], axis=-1)


# --- sequences ------------------------------------------------------------------------------------------------
def msr_paths(stem_path: str | Path) -> dict[str, Path]:
    """The existing files of the sequence ``DIR/aXX_sYY_eZZ``, keyed by kind.

    Exact names are tried first; when none exists the folder is searched ignoring case.
    """
    stem_path = Path(stem_path)
    folder, stem = stem_path.parent, stem_path.name
    found = {kind: folder / (stem + suffix) for kind, suffix in KIND_SUFFIXES.items()}
    found = {kind: p for kind, p in found.items() if p.is_file()}
    if not found and folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.name.lower().startswith(stem.lower() + "_") and p.is_file():
                try:
                    kind = parse_name(p).kind
                except DataFormatError:
                    continue
                if kind:
                    found.setdefault(kind, p)
    return found


def _screen_units(uvd: np.ndarray, path: Path) -> np.ndarray:
    """Bring a screen skeleton to (pixel u, pixel v, d = 250 z), whatever units the file used.

    Some copies of the data store u, v normalised to [0, 1] of the 320x240 map, and d in millimetres:
    detected from the value ranges (pixels span tens to hundreds; 4 mm units of a body at 1-5 m lie in
    250-1250, millimetres in 1000-5000), converted with a warning naming the file.
    """
    ok = np.all(np.isfinite(uvd), axis=-1)
    if not ok.any():
        return uvd
    uv, d = uvd[ok][:, :2], uvd[ok][:, 2]
    out = uvd.copy()
    if np.abs(uv).max() <= 1.5:
        log.warning("%s: u, v look normalised to [0, 1]: scaled to the 320x240 depth map", path)
        out[..., 0] *= KINECT_V1.width
        out[..., 1] *= KINECT_V1.height
    if np.median(d) > 1500:
        log.warning("%s: d looks like millimetres, not 4 mm units: converted (d = 250 z)", path)
        out[..., 2] *= SCREEN_D_PER_M / 1000.0
    return out


def load_msr_files(name: str, paths: dict[str, Path]) -> Sequence:
    """Build a ``Sequence`` from the files of one MSR sequence.

    Args:
        name: the stem, e.g. ``"a01_s01_e01"``: it gives label (action - 1), subject and episode.
        paths: ``{kind: path}`` for the kinds present (``"sdepth"``, ``"skeleton3D"``, ``"skeleton"``).
            The real-world skeleton is preferred; the screen one is used only without it
            (``z = d / 250``, then ``KINECT_V1.unproject``).

    Returns:
        The sequence. When depth and skeleton frame counts differ both are trimmed to the shorter,
        with a warning. Intrinsics are ``KINECT_V1`` scaled to the depth map size (320x240: unchanged).

    Raises:
        DataFormatError: a bad name or file.
        FileNotFoundError: no file at all.
    """
    parsed = parse_name(name)
    if not paths:
        raise FileNotFoundError(f"{name}: no _sdepth.bin, _skeleton3D.txt or _skeleton.txt file")
    depth = joints = None
    intrinsics = KINECT_V1
    if KIND_DEPTH in paths:
        depth = read_depth_bin(paths[KIND_DEPTH])
        if depth.shape[1:] != (KINECT_V1.height, KINECT_V1.width):
            intrinsics = KINECT_V1.scaled(depth.shape[2], depth.shape[1])
    if KIND_SKELETON3D in paths:
        joints = read_skeleton3d(paths[KIND_SKELETON3D])[0]
    elif KIND_SCREEN in paths:
        uvd = _screen_units(read_skeleton_screen(paths[KIND_SCREEN])[0], paths[KIND_SCREEN])
        joints = screen_to_camera(uvd).astype(np.float32)
    if depth is not None and joints is not None and len(depth) != len(joints):
        n = min(len(depth), len(joints))
        skel = paths.get(KIND_SKELETON3D, paths.get(KIND_SCREEN))
        log.warning("%s has %d depth frames but %s has %d skeleton frames: both trimmed to %d",
                    paths[KIND_DEPTH], len(depth), skel, len(joints), n)
        depth, joints = depth[:n], joints[:n]
    return Sequence(name=parsed.stem, depth_mm=depth, joints_m=joints, label=parsed.action - 1,
                    subject=parsed.subject, episode=parsed.episode, intrinsics=intrinsics)


def load_msr_sequence(stem_path: str | Path) -> Sequence:
    """Load whichever of ``STEM_sdepth.bin``, ``STEM_skeleton3D.txt``, ``STEM_skeleton.txt`` exist.

    Args:
        stem_path: e.g. ``DIR/a01_s01_e01``.

    Returns:
        A ``Sequence`` with label = action - 1, subject, episode, name = stem, ``depth_valid`` set
        (see ``load_msr_files``).

    Raises:
        DataFormatError: a bad stem name or a bad file.
        FileNotFoundError: none of the three files exists.
    """
    stem_path = Path(stem_path)
    parse_name(stem_path)
    paths = msr_paths(stem_path)
    if not paths:
        raise FileNotFoundError(f"{stem_path}: no _sdepth.bin, _skeleton3D.txt or _skeleton.txt file")
    return load_msr_files(stem_path.name, paths)


def write_msr_sequence(out_dir: str | Path, seq: Sequence) -> Path:
    """Write a sequence as MSR-Action3D files: ``_sdepth.bin``, ``_skeleton3D.txt`` and ``_skeleton.txt``.

    The name comes from ``seq.label + 1``, ``seq.subject`` and ``seq.episode``. The screen file is
    ``seq.intrinsics.project`` with ``d = 250 z``, in pixels of the 320x240 map whatever the depth size
    (the camera is scaled to 320x240, a no-op for 320x240 intrinsics); confidence is 1 for present
    joints, 0 for NaN ones.
    Files of a missing modality are not written.

    Args:
        out_dir: the folder (created if needed).
        seq: the sequence; label, subject and episode must be set.

    Returns:
        The stem path ``out_dir/aXX_sYY_eZZ``.

    Raises:
        ValueError: label, subject or episode missing or out of range; a sequence with no data.
    """
    if seq.label is None or seq.subject is None or seq.episode is None:
        raise ValueError(f"{seq.name}: label, subject and episode are needed for an MSR file name. "
                         f"Received: label={seq.label!r}, subject={seq.subject!r}, episode={seq.episode!r}")
    if seq.depth_mm is None and seq.joints_m is None:
        raise ValueError(f"{seq.name}: no depth and no joints to write")
    stem = format_name(int(seq.label) + 1, int(seq.subject), int(seq.episode), "")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if seq.depth_mm is not None:
        write_depth_bin(out_dir / (stem + KIND_SUFFIXES[KIND_DEPTH]), seq.depth_mm)
    if seq.joints_m is not None:
        joints = np.asarray(seq.joints_m, dtype=np.float32)
        conf = np.isfinite(joints).all(axis=-1).astype(np.float32)
        write_skeleton3d(out_dir / (stem + KIND_SUFFIXES[KIND_SKELETON3D]), joints, conf)
        write_skeleton_screen(out_dir / (stem + KIND_SUFFIXES[KIND_SCREEN]),
                              camera_to_screen(joints, seq.intrinsics.scaled(320, 240)).astype(np.float32), conf)
    return out_dir / stem
