"""Find the performers in full depth frames: floor plane, background model, person blobs (numpy + scipy.ndimage).

A depth camera in a room sees the floor, walls, furniture and, somewhere, the dancers. The model was trained on
depth where everything but the dancer is 0, so before a frame reaches it this module keeps one person and zeroes
the rest. Used by the device (``kerasdance_edge.people``) and by training data preparation (``pipeline.prepare``
with a dataset's ``empty_room.npz``), so both see the same masks.

Per frame (``Segmenter.update``), on a point grid downsampled to about 160 columns (``SceneConfig.grid_width``):

1. **Floor.** A plane fitted by RANSAC on the grid's 3-D points (seeded; the consensus plane refitted on its
   inliers by least squares), accepted only when plausible: its normal within ``max_floor_tilt_deg`` of the
   camera's up axis and the camera ``0.3-4 m`` above it. Kept across frames and refitted every
   ``floor_refresh_frames`` frames (every ``floor_retry_frames`` while none is found). Points less than
   ``max(floor_margin_m, 4 sigma(z))`` above it are removed.
2. **Background.** Per grid pixel, the depth of the empty room: loaded from an empty-room capture (``Room``,
   ``kerasdance-edge calibrate``) or learned over the first ``learn_frames`` frames as the 80th percentile of
   each pixel's readings (the farther readings: a dancer in front of the wall only ever makes a pixel nearer,
   so a dancer already present who moves is not learned as background). After learning, a pixel that reads
   farther than its background for ``reveal_frames`` frames in a row takes the new reading (the room behind a
   dancer who stood still while it was learned), and background pixels follow slow drifts. A pixel is
   foreground when it reads nearer than its background by more than ``noise_k`` combined depth-noise sigmas
   (``sigma(z) = 1.5 mm * z^2``, z in metres, the Kinect v1 figure; at least ``min_margin_mm``). Holes (0)
   are unknown, never foreground; a pixel with no background (a hole all along) and a reading now is
   foreground. Until the background is learned, everything above the floor is foreground.
3. **Blobs.** Connected components (``scipy.ndimage.label``, 4-connectivity) of the foreground after a
   depth-discontinuity cut: of two neighbours whose depths differ by more than ``max(cut_mm, 6 sigma)``, the
   farther one is left out of the labelling, so a dancer in front of another (or of furniture) is a blob of
   their own. A blob is a person when its top is ``min_height_m-max_height_m`` above the floor (its vertical
   extent without a floor), it is at most ``max_width_m`` wide, its surface ``min_area_m2-max_area_m2`` and it
   does not touch both the left and the right image borders (a wall or a board close to the camera).
4. **Pick.** The plausible blobs ranked by ``pick``: ``largest`` (surface), ``nearest`` (centroid depth) or
   ``centre`` (angle from the optical axis); the first ``max_people`` are returned.

``Segmenter.masked_depth(depth, person)`` is the full-resolution frame with everything but that person set to
0: what the tracker and the model consume unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.errors import DataFormatError

log = logging.getLogger("kerasdance.scene")

PICKS = ("largest", "nearest", "centre")
LEARNING, READY = "learning", "ready"
#: Kinect v1 depth noise: sigma = NOISE_MM_PER_M2 * z^2 (z in metres).
NOISE_MM_PER_M2 = 1.5


def depth_sigma_mm(z_mm) -> np.ndarray:
    """The depth camera's noise sigma in mm at depth ``z_mm`` (``1.5 mm * z^2``, z in metres)."""
    z_m = np.asarray(z_mm, dtype=np.float32) / 1000.0
    return NOISE_MM_PER_M2 * z_m * z_m


def _ndimage():
    try:
        from scipy import ndimage
    except ImportError as e:  # pragma: no cover - scipy comes with the edge and train extras
        raise ImportError("person segmentation needs scipy: pip install 'kerasdance[edge]'") from e
    return ndimage


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """How people are found in a room (see the module docstring).

    Attributes:
        grid_width: columns of the point grid the segmentation works on (the frame is subsampled by
            ``round(width / grid_width)``).
        learn_frames: frames over which the background is learned when no room is loaded (3 s at 15 fps).
        reveal_frames: consecutive farther readings that replace a pixel's background.
        max_below_floor_share: a floor candidate with more of the frame's points than this under it is refused.
        min_room_share: a learned background known on less of the view than this is no room (a recording whose
            background is already 0): nothing is subtracted.
        noise_k: foreground threshold in combined noise sigmas.
        min_margin_mm: the smallest foreground margin in front of the background.
        floor_margin_m: points nearer the floor than this (or 4 sigma) are floor.
        max_floor_tilt_deg: the floor's normal may be at most this far from the camera's up axis.
        floor_refresh_frames: refit a found floor every so many frames; ``floor_retry_frames`` while none.
        ransac_iterations: RANSAC hypotheses per fit.
        cut_mm: the smallest depth step between neighbours that separates blobs.
        min_height_m / max_height_m: a person's top above the floor.
        max_width_m: a person's horizontal extent.
        min_area_m2 / max_area_m2: a person's visible surface.
        pick: ``largest``, ``nearest`` or ``centre``: how people are ranked.
        max_people: how many are returned.
        seed: RANSAC's seed.
    """

    grid_width: int = 160
    learn_frames: int = 45
    reveal_frames: int = 3
    min_room_share: float = 0.3
    max_below_floor_share: float = 0.02
    noise_k: float = 4.0
    min_margin_mm: float = 40.0
    floor_margin_m: float = 0.05
    max_floor_tilt_deg: float = 45.0
    floor_refresh_frames: int = 150
    floor_retry_frames: int = 15
    ransac_iterations: int = 64
    cut_mm: float = 250.0
    min_height_m: float = 0.8
    max_height_m: float = 2.3
    max_width_m: float = 2.2
    min_area_m2: float = 0.08
    max_area_m2: float = 2.5
    pick: str = "largest"
    max_people: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {PICKS}. Received: pick={self.pick!r}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1. Received: max_people={self.max_people!r}")
        if self.grid_width < 8 or self.learn_frames < 1:
            raise ValueError(f"grid_width must be >= 8 and learn_frames >= 1. Received: "
                             f"grid_width={self.grid_width!r}, learn_frames={self.learn_frames!r}")
        if not 0 < self.min_height_m < self.max_height_m:
            raise ValueError(f"Need 0 < min_height_m < max_height_m. Received: {self.min_height_m!r}, "
                             f"{self.max_height_m!r}")


class Plane(NamedTuple):
    """A plane ``normal . p + offset = 0`` in camera metres, ``normal`` a unit vector pointing up (towards the
    camera's side): ``height(p) = normal . p + offset`` is the height above it, ``offset`` the camera's."""

    normal: np.ndarray
    offset: float

    def height(self, points_m: np.ndarray) -> np.ndarray:
        return np.asarray(points_m) @ self.normal + self.offset

    def tilt_deg(self, up=(0.0, 1.0, 0.0)) -> float:
        """Angle between the normal and ``up`` (the camera's y axis) in degrees."""
        return float(np.degrees(np.arccos(np.clip(self.normal @ np.asarray(up, np.float64), -1.0, 1.0))))


def _plane_through(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planes through point triples ``(k, 3, 3)``: unit normals ``(k, 3)`` (zero for degenerate triples), offsets."""
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(norm > 1e-9, n / np.maximum(norm, 1e-12), 0.0)
    n *= np.where(n[:, 1:2] < 0, -1.0, 1.0)  # point up
    return n, -np.einsum("ij,ij->i", n, p[:, 0])


def _refit(points: np.ndarray, weights: np.ndarray) -> Plane:
    """Weighted least-squares plane through ``points`` (the smallest principal axis), normal pointing up."""
    w = weights / weights.sum()
    c = w @ points
    _, _, vt = np.linalg.svd((points - c) * np.sqrt(w)[:, None], full_matrices=False)
    n = vt[-1] * (1.0 if vt[-1][1] >= 0 else -1.0)
    return Plane(n, float(-n @ c))


def fit_floor(points_m: np.ndarray, rng: np.random.Generator, iterations: int = 64, inlier_m: float = 0.03,
              max_tilt_deg: float = 45.0, camera_height_m: tuple[float, float] = (0.3, 4.0),
              min_inliers: int = 50, min_share: float = 0.05) -> Plane | None:
    """The floor among ``(N, 3)`` camera-metre points by RANSAC, or None when no plausible plane is found.

    Hypotheses are planes through three random points; the plausible ones (normal within ``max_tilt_deg`` of
    the camera's up axis, camera ``camera_height_m`` above the plane) are scored by their inliers (within
    ``max(inlier_m, 3 sigma(z))``), and the best must hold ``min_share`` of the points (so that two edges, e.g.
    a wall's and a box's bottom, do not make a floor); it is refitted on its inliers by least squares weighted by
    the depth noise (``1 / sigma(z)^2``: near points count more), three times with a tightening band (3, 2, 1.5
    sigma).
    """
    pts = np.asarray(points_m, np.float64).reshape(-1, 3)
    min_inliers = max(min_inliers, int(min_share * len(pts)))
    if len(pts) < max(3, min_inliers):
        return None
    sigma_m = depth_sigma_mm(pts[:, 2] * 1000.0) / 1000.0
    tol = np.maximum(inlier_m, 3.0 * sigma_m)
    cos_max = np.cos(np.radians(max_tilt_deg))
    tri = pts[rng.integers(0, len(pts), (iterations, 3))]
    normals, offsets = _plane_through(tri)
    ok = (normals[:, 1] >= cos_max) & (offsets >= camera_height_m[0]) & (offsets <= camera_height_m[1])
    if not ok.any():
        return None
    normals, offsets = normals[ok], offsets[ok]
    counts = (np.abs(pts @ normals.T + offsets) <= tol[:, None]).sum(axis=0)
    best = int(np.argmax(counts))
    if counts[best] < min_inliers:
        return None
    plane = Plane(normals[best], float(offsets[best]))
    for k in (3.0, 2.0, 1.5):  # tightening: points of walls and furniture near the floor drop out
        inl = np.abs(plane.height(pts)) <= np.maximum(inlier_m / 3.0 * k, k * sigma_m)
        if inl.sum() < min_inliers:
            return None
        plane = _refit(pts[inl], 1.0 / np.maximum(sigma_m[inl], 1e-3) ** 2)
    if plane.tilt_deg() > max_tilt_deg or not camera_height_m[0] <= plane.offset <= camera_height_m[1]:
        return None
    return plane


class Person(NamedTuple):
    """One person blob in a frame.

    Attributes:
        label: the blob's label in ``Segmenter.labels`` (the grid's label image of the last frame).
        bbox: ``(v0, v1, u0, u1)`` full-resolution pixel box (rows v0:v1, columns u0:u1).
        z_min_mm / z_max_mm: its depth range.
        centroid_m: ``(3,)`` mean of its points, camera metres.
        height_m: its top above the floor (its vertical extent when no floor is known).
        width_m: its horizontal extent (camera x).
        area_m2: its visible surface.
        points: its grid points.
    """

    label: int
    bbox: tuple[int, int, int, int]
    z_min_mm: float
    z_max_mm: float
    centroid_m: np.ndarray
    height_m: float
    width_m: float
    area_m2: float
    points: int


def _resize_nearest(a: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = a.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return a[rows[:, None], cols[None, :]]


@dataclasses.dataclass
class Room:
    """An empty room as the camera sees it: the background depth (on a grid) and the floor plane.

    Attributes:
        background_mm: ``(gh, gw)`` float32 depth of the empty room per grid pixel, 0 where unknown (a hole).
        intrinsics: the camera of the full frames.
        floor: the floor plane, or None when none was found.
    """

    background_mm: np.ndarray
    intrinsics: Intrinsics
    floor: Plane | None = None

    @classmethod
    def from_frames(cls, depth_mm: np.ndarray, intrinsics: Intrinsics, config: SceneConfig | None = None) -> Room:
        """Learn a room from ``(F, H, W)`` depth frames of it (empty, or with people who move)."""
        seg = Segmenter(intrinsics, config or SceneConfig())
        frames = np.asarray(depth_mm)
        if frames.ndim != 3 or len(frames) == 0:
            raise ValueError(f"expected (frames, H, W) depth. Received: shape={frames.shape!r}")
        grids = np.stack([seg.grid(f) for f in frames]).astype(np.float32)
        seg.learn_from(grids)
        floor = seg.fit_floor_on(np.where(seg.background_mm > 0, seg.background_mm, 0))
        return cls(seg.background_mm, intrinsics, floor)

    def save(self, path: str | Path) -> None:
        """Write ``path`` (``.npz``: background_mm, intrinsics, floor normal and offset, NaN when none)."""
        floor = (np.full(4, np.nan) if self.floor is None
                 else np.concatenate([self.floor.normal, [self.floor.offset]]))
        it = self.intrinsics
        np.savez(path, background_mm=self.background_mm.astype(np.float32), floor=floor,
                 intrinsics=np.array([it.fx, it.fy, it.cx, it.cy, it.width, it.height], np.float64))

    @classmethod
    def load(cls, path: str | Path, config: SceneConfig | None = None) -> Room:
        """Read a room file (``save``'s format), or learn one from an ``.npz`` of empty-room frames
        (key ``depth_mm`` ``(F, H, W)``, with ``intrinsics`` ``[fx, fy, cx, cy, width, height]`` or the Kinect v1
        camera).

        Raises:
            FileNotFoundError, DataFormatError: a missing or unreadable file.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"room file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DataFormatError(f"{path}: not a room file ({e})") from None
        intr = Intrinsics()
        if "intrinsics" in d:
            fx, fy, cx, cy, w, h = (float(x) for x in np.asarray(d["intrinsics"]).reshape(6))
            intr = Intrinsics(fx, fy, cx, cy, int(w), int(h))
        if "background_mm" in d:
            floor = np.asarray(d.get("floor", np.full(4, np.nan)), np.float64).reshape(4)
            plane = None if not np.all(np.isfinite(floor)) else Plane(floor[:3], float(floor[3]))
            return cls(np.asarray(d["background_mm"], np.float32), intr, plane)
        if "depth_mm" in d:
            return cls.from_frames(d["depth_mm"], intr, config)
        raise DataFormatError(f"{path}: neither a room file (background_mm) nor empty-room frames (depth_mm); "
                              f"keys {sorted(d)!r}")


class Segmenter:
    """Finds people in the depth frames of one camera, frame after frame (see the module docstring).

    Args:
        intrinsics: the camera of the frames.
        config: the ``SceneConfig``.
        room: an empty-room capture (background and floor); None: learn the background over the first
            ``config.learn_frames`` frames and fit the floor on the frames.

    Attributes:
        state: ``"learning"`` (no background yet: everything above the floor is foreground) or ``"ready"``.
        floor: the current floor plane (None until found).
        labels: the grid's blob labels of the last frame.
    """

    def __init__(self, intrinsics: Intrinsics, config: SceneConfig | None = None, room: Room | None = None):
        self.config = config or SceneConfig()
        self.intrinsics = intrinsics
        c = self.config
        self.step = max(1, int(round(intrinsics.width / c.grid_width)))
        self._rng = np.random.default_rng(c.seed)
        h, w = intrinsics.height, intrinsics.width
        self._rows = np.arange(0, h, self.step)
        self._cols = np.arange(0, w, self.step)
        gh, gw = len(self._rows), len(self._cols)
        # Rays: a grid point at depth z is (rx * z, ry * z, z).
        self._rx = ((self._cols - intrinsics.cx) / intrinsics.fx).astype(np.float32)[None, :].repeat(gh, 0)
        self._ry = ((intrinsics.cy - self._rows) / intrinsics.fy).astype(np.float32)[:, None].repeat(gw, 1)
        self._pix_m = np.float32(self.step / intrinsics.fx)  # a grid pixel's side per metre of depth
        self.labels = np.zeros((gh, gw), np.int32)
        self._learn: list[np.ndarray] = []
        self._farther = np.zeros((gh, gw), np.uint8)
        self._frame = 0
        self._floor_due = 0
        self.floor: Plane | None = None
        self.background_mm: np.ndarray | None = None
        self._last_grid: np.ndarray | None = None
        self._floor_h: np.ndarray | None = None
        if room is not None:
            self.set_room(room)

    @property
    def state(self) -> str:
        return READY if self.background_mm is not None else LEARNING

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.labels.shape

    def set_room(self, room: Room) -> None:
        """Use an empty-room capture (resampled to this camera's grid when its size differs)."""
        it = room.intrinsics
        if abs(it.width / it.height - self.intrinsics.width / self.intrinsics.height) > 0.01:
            raise ValueError(f"the room was captured at {it.width}x{it.height}, the camera gives "
                             f"{self.intrinsics.width}x{self.intrinsics.height} (another aspect ratio)")
        bg = np.asarray(room.background_mm, np.float32)
        if bg.shape != self.grid_shape:
            bg = _resize_nearest(bg, *self.grid_shape)
        self.background_mm = bg.copy()
        self.floor = room.floor
        self._floor_due = self.config.floor_refresh_frames if room.floor is not None else 0
        self._learn = []

    def room(self) -> Room:
        """The learned room (background and floor) so far.

        Raises:
            ValueError: the background is not learned yet.
        """
        if self.background_mm is None:
            raise ValueError("the background is not learned yet")
        return Room(self.background_mm.copy(), self.intrinsics, self.floor)

    # --- pieces ---------------------------------------------------------------------------------------------
    def grid(self, depth_mm: np.ndarray) -> np.ndarray:
        """The grid subsample of a full ``(H, W)`` frame."""
        d = np.asarray(depth_mm)
        if d.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"expected a {self.intrinsics.height}x{self.intrinsics.width} frame (rows x columns). "
                             f"Received: shape={d.shape!r}")
        return d[:: self.step, :: self.step]

    def points(self, grid_mm: np.ndarray) -> np.ndarray:
        """``(gh, gw, 3)`` camera metres of a grid (0 where a hole)."""
        z = np.asarray(grid_mm, np.float32) / 1000.0
        return np.stack([self._rx * z, self._ry * z, z], axis=-1)

    def learn_from(self, grids: np.ndarray) -> None:
        """Set the background from ``(F, gh, gw)`` grid depth: per pixel the 80th percentile of its readings
        (0 where a pixel read nothing in more than half the frames)."""
        g = np.asarray(grids, np.float32)
        valid = g > 0
        # Percentile of the valid readings: sort with holes first, index into the valid tail.
        s = np.sort(g, axis=0)
        nvalid = valid.sum(axis=0)
        k = len(g) - nvalid + np.floor(0.8 * np.maximum(nvalid - 1, 0)).astype(np.int64)
        bg = np.take_along_axis(s, np.minimum(k, len(g) - 1)[None], axis=0)[0]
        self.background_mm = np.where(nvalid * 2 >= len(g), bg, 0.0).astype(np.float32)
        self._learn = []
        known = float((self.background_mm > 0).mean())
        if known < self.config.min_room_share:
            # No room behind the dancer: a recording whose background is already 0 (MSR-Action3D, a masked
            # capture). What was learned is the dancer, not a room: subtract nothing, as while learning.
            log.info("the first frames show no room (depth on %.0f%% of the view): nothing is subtracted", known * 100)
            self.background_mm[:] = 0.0

    def fit_floor_on(self, grid_mm: np.ndarray, baseline: int = 3) -> Plane | None:
        """RANSAC floor on a grid's points whose surface faces up (at most 3000 of them, seeded).

        A point's surface normal is the cross product of the differences to its neighbours ``baseline`` grid
        cells to the right and below (neither farther than 15% of the depth); only points whose normal is within
        ``max_floor_tilt_deg`` of the camera's up axis take part, so walls and the fronts of furniture never make
        a floor.
        """
        g = np.asarray(grid_mm, np.float32)
        p = self.points(g)
        k = baseline
        right, down = p[:-k, k:] - p[:-k, :-k], p[k:, :-k] - p[:-k, :-k]
        n = np.cross(right, down)
        ok = (g[:-k, :-k] > 0) & (g[:-k, k:] > 0) & (g[k:, :-k] > 0)
        near = 0.15 * p[:-k, :-k, 2] + 0.05  # neighbours across a depth step are not one surface
        ok &= (np.linalg.norm(right, axis=-1) <= near) & (np.linalg.norm(down, axis=-1) <= near)
        norm = np.linalg.norm(n, axis=-1)
        cos_up = np.abs(n[..., 1]) / np.maximum(norm, 1e-9)
        ok &= cos_up >= np.cos(np.radians(self.config.max_floor_tilt_deg))
        pts = p[:-k, :-k][ok]
        if len(pts) > 3000:
            pts = pts[self._rng.choice(len(pts), 3000, replace=False)]
        c = self.config
        plane = fit_floor(pts, self._rng, iterations=c.ransac_iterations, max_tilt_deg=c.max_floor_tilt_deg)
        if plane is not None:
            # Nothing is seen below a floor: a plane with many points under it is a body's or a table's top (a
            # recording without a room: the dancer's shoulders), not the floor.
            valid = g > 0
            h = plane.height(p[valid])
            below = h < -np.maximum(0.1, 3e-3 * depth_sigma_mm(g[valid]))
            if below.mean() > c.max_below_floor_share:
                return None
        return plane

    def foreground(self, grid_mm: np.ndarray) -> np.ndarray:
        """The grid's foreground mask (background model, floor), updating the background and floor state."""
        c = self.config
        g = np.asarray(grid_mm, np.float32)
        valid = g > 0
        if self._frame >= self._floor_due:
            src = g if self.background_mm is None else np.where(self.background_mm > 0, self.background_mm, g)
            plane = self.fit_floor_on(src)
            if plane is not None:
                self.floor = plane
            self._floor_due = self._frame + (c.floor_refresh_frames if self.floor is not None
                                             else c.floor_retry_frames)
        if self.background_mm is None:
            fg = valid.copy()
            self._learn.append(g.copy())
            if len(self._learn) >= c.learn_frames:
                self.learn_from(np.stack(self._learn))
                log.info("background learned over %d frames", c.learn_frames)
        else:
            bg = self.background_mm
            known = bg > 0
            sig = depth_sigma_mm(np.where(known, bg, g))
            margin = np.maximum(c.min_margin_mm, c.noise_k * np.float32(np.sqrt(2.0)) * sig)
            diff = bg - g  # > 0: nearer than the background
            fg = valid & (~known | (diff > margin))
            # The room revealed behind someone who stood still while it was learned; slow drifts elsewhere.
            farther = valid & known & (-diff > margin)
            self._farther = np.where(farther, np.minimum(self._farther + 1, 255), 0).astype(np.uint8)
            reveal = self._farther >= c.reveal_frames
            still = valid & known & (np.abs(diff) <= margin)
            bg[still] -= 0.05 * diff[still]
            bg[reveal] = g[reveal]
        if self.floor is not None:
            z = g / 1000.0
            h = (self.floor.normal[0] * self._rx + self.floor.normal[1] * self._ry + self.floor.normal[2]) * z
            h += self.floor.offset
            self._floor_h = h
            fg &= h > np.maximum(c.floor_margin_m, 4e-3 * depth_sigma_mm(g))
        else:
            self._floor_h = None
        return fg

    def blobs(self, grid_mm: np.ndarray, fg: np.ndarray) -> list[Person]:
        """Label the foreground's connected 3-D blobs (depth-discontinuity cut) and keep the plausible people,
        ranked by ``config.pick`` (all of them: ``update`` keeps ``max_people``)."""
        ndimage = _ndimage()
        c = self.config
        g = np.asarray(grid_mm, np.float32)
        cut_mm = np.maximum(c.cut_mm, 6.0 * depth_sigma_mm(g))
        keep = fg.copy()
        # Of two foreground neighbours with a depth step, the farther is left out of the labelling.
        for axis in (0, 1):
            a = [slice(None), slice(None)]
            b = [slice(None), slice(None)]
            a[axis], b[axis] = slice(None, -1), slice(1, None)
            a, b = tuple(a), tuple(b)
            both = fg[a] & fg[b]
            dz = g[b] - g[a]
            step = both & (np.abs(dz) > np.minimum(cut_mm[a], cut_mm[b]))
            keep[a] &= ~(step & (dz < 0))  # a is farther
            keep[b] &= ~(step & (dz > 0))
        labels, n = ndimage.label(keep)
        self.labels = labels
        if n == 0:
            return []
        flat = labels.ravel()
        z = g.ravel() / 1000.0
        area = np.bincount(flat, weights=(z * self._pix_m) ** 2, minlength=n + 1)
        cand = np.flatnonzero(area >= c.min_area_m2)
        cand = cand[cand > 0]
        if cand.size == 0:
            return []
        x, y = self._rx.ravel() * z, self._ry.ravel() * z
        cnt = np.bincount(flat, minlength=n + 1)
        sx = np.bincount(flat, weights=x, minlength=n + 1)
        sy = np.bincount(flat, weights=y, minlength=n + 1)
        sz = np.bincount(flat, weights=z, minlength=n + 1)
        # Per-label extremes with one sort of the labelled pixels (ndimage.minimum/maximum sort every call).
        idx = np.flatnonzero(flat > 0)
        idx = idx[np.argsort(flat[idx], kind="stable")]
        starts = np.searchsorted(flat[idx], np.arange(1, n + 1))  # every label 1..n has pixels

        def per_label(values: np.ndarray, ufunc) -> np.ndarray:
            return ufunc.reduceat(values.ravel()[idx], starts)[cand - 1]

        if self._floor_h is not None:
            top = per_label(self._floor_h, np.maximum)
        else:
            top = per_label(y, np.maximum) - per_label(y, np.minimum)
        xmin, xmax = per_label(x, np.minimum), per_label(x, np.maximum)
        zmin, zmax = per_label(g, np.minimum), per_label(g, np.maximum)
        slices = ndimage.find_objects(labels)
        gw = labels.shape[1]
        H, W = self.intrinsics.height, self.intrinsics.width
        people = []
        for i, k in enumerate(cand):
            sl = slices[k - 1]
            width = float(xmax[i] - xmin[i])
            height = float(np.asarray(top)[i])
            spans = sl[1].start == 0 and sl[1].stop == gw
            if not (c.min_height_m <= height <= c.max_height_m and width <= c.max_width_m
                    and area[k] <= c.max_area_m2 and not spans):
                continue
            s = self.step
            bbox = (sl[0].start * s, min(sl[0].stop * s, H), sl[1].start * s, min(sl[1].stop * s, W))
            centroid = np.array([sx[k], sy[k], sz[k]]) / cnt[k]
            people.append(Person(int(k), bbox, float(zmin[i]), float(zmax[i]), centroid, height, width,
                                 float(area[k]), int(cnt[k])))
        return rank(people, c.pick)

    def update(self, depth_mm: np.ndarray) -> list[Person]:
        """Segment one full ``(H, W)`` frame: the plausible people, best first by ``config.pick``, at most
        ``config.max_people``.

        Raises:
            ValueError: a frame of another size than the camera's.
        """
        g = self.grid(depth_mm)
        fg = self.foreground(g)
        self._frame += 1
        self._last_grid = g
        return self.blobs(g, fg)[: self.config.max_people]

    def mask(self, depth_mm: np.ndarray, person: Person) -> tuple[tuple[slice, slice], np.ndarray]:
        """The person's full-resolution pixels: ``(box, mask)`` where ``mask`` is bool over ``depth_mm[box]``.

        The blob's grid cells (grown by one cell) at full resolution, kept where the depth is valid, within the
        blob's depth range (plus ``cut_mm``) and above the floor.
        """
        ndimage = _ndimage()
        s, c = self.step, self.config
        H, W = self.intrinsics.height, self.intrinsics.width
        v0, v1, u0, u1 = person.bbox
        gv0, gv1 = max(v0 // s - 1, 0), min(-(-v1 // s) + 1, self.labels.shape[0])
        gu0, gu1 = max(u0 // s - 1, 0), min(-(-u1 // s) + 1, self.labels.shape[1])
        cells = ndimage.binary_dilation(self.labels[gv0:gv1, gu0:gu1] == person.label, iterations=1)
        up = np.repeat(np.repeat(cells, s, axis=0), s, axis=1)
        box = (slice(gv0 * s, min(gv1 * s, H)), slice(gu0 * s, min(gu1 * s, W)))
        up = up[: box[0].stop - box[0].start, : box[1].stop - box[1].start]
        d = np.asarray(depth_mm)[box].astype(np.float32)
        m = up & (d >= person.z_min_mm - c.cut_mm) & (d <= person.z_max_mm + c.cut_mm)
        if self.floor is not None:
            it = self.intrinsics
            rx = ((np.arange(box[1].start, box[1].stop) - it.cx) / it.fx)[None, :]
            ry = ((it.cy - np.arange(box[0].start, box[0].stop)) / it.fy)[:, None]
            n = self.floor.normal
            h = (n[0] * rx + n[1] * ry + n[2]) * (d / 1000.0) + self.floor.offset
            m &= h > np.maximum(c.floor_margin_m, 4e-3 * depth_sigma_mm(d))
        return box, m

    def masked_depth(self, depth_mm: np.ndarray, person: Person) -> np.ndarray:
        """``depth_mm`` with everything but ``person`` set to 0 (uint16, full resolution)."""
        d = np.asarray(depth_mm)
        box, m = self.mask(d, person)
        out = np.zeros(d.shape, np.uint16)
        out[box][m] = d[box][m]
        return out


def rank(people: list[Person], pick: str) -> list[Person]:
    """``people`` best first: ``largest`` surface, ``nearest`` centroid, or nearest the optical axis (``centre``)."""
    if pick == "largest":
        key = lambda p: -p.area_m2  # noqa: E731
    elif pick == "nearest":
        key = lambda p: p.centroid_m[2]  # noqa: E731
    elif pick == "centre":
        key = lambda p: abs(np.arctan2(p.centroid_m[0], p.centroid_m[2]))  # noqa: E731
    else:
        raise ValueError(f"pick must be one of {PICKS}. Received: pick={pick!r}")
    return sorted(people, key=key)


def mask_sequence(depth_mm: np.ndarray, intrinsics: Intrinsics, room: Room | None = None,
                  joints_m: np.ndarray | None = None, config: SceneConfig | None = None) -> np.ndarray:
    """A recording's ``(F, H, W)`` depth with everything but its dancer set to 0 (training data preparation).

    Each frame's dancer is the person blob whose centroid is nearest that frame's skeleton (``joints_m``
    ``(F, J, 3)`` camera metres, the labelled dancer when several are in view), else the first by
    ``config.pick``; a frame with no plausible person becomes all 0. ``room``: the empty room (None: learned
    from the recording itself, as the device does without a room file).
    """
    config = config or SceneConfig()
    seg = Segmenter(intrinsics, dataclasses.replace(config, max_people=max(config.max_people, 8)), room=room)
    frames = np.asarray(depth_mm)
    out = np.zeros(frames.shape, np.uint16)
    for i, frame in enumerate(frames):
        people = seg.update(frame)
        if not people:
            continue
        best = people[0]
        if joints_m is not None and i < len(joints_m) and np.isfinite(joints_m[i]).any():
            centre = np.nanmean(np.asarray(joints_m[i], np.float64), axis=0)
            best = min(people, key=lambda p: float(np.linalg.norm(p.centroid_m - centre)))
        out[i] = seg.masked_depth(frame, best)
    return out
