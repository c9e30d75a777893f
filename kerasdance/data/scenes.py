"""Synthetic studio scenes: the continuous performances of ``synthetic`` placed in a room seen by a real sensor.

Every other synthetic frame has a background of 0. Here a depth camera stands in a studio: a floor (and a ceiling),
a back wall, side walls when the room is narrow enough to show them, furniture beside and behind the stage
(tables, sideboards, cabinets, chairs: boxes), sometimes a static person-sized figure (a mannequin, a coat stand),
one to four dancers each performing a continuous take (``synthetic.performance_motion``) at their own stage spot,
and optionally a passer-by walking through. People occlude each other and the room through one z-buffer
(``synthetic.render_frame`` per person), and the sensor model adds noise, shadows and holes.

World frame: metres, origin on the floor below the camera, y up, z the camera's horizontal heading, x to the
right. The camera stands at height ``camera_height_m``, pitched down by ``tilt_deg`` and rolled by ``roll_deg``;
depth frames, joints and the floor plane are all in **its** frame (``kerasdance.camera``: x right, y up, z away).

Where the numbers come from (D = datasheet or a published measurement, G = a guess that looks plausible):

* Room (G): camera 1.0-1.6 m high, tilted down 0-8 deg (at least enough to see the floor in the lower quarter of
  a Kinect v1 image), roll +-2 deg; back wall 3.2-5.0 m away; room 3.6-7 m wide; ceiling 2.6-3.2 m; 2-5 pieces of
  furniture (table 0.72-0.78 m, sideboard 0.8-0.9 m, cabinet 1.6-2.0 m, chair seat 0.45 m / back 0.9 m high); a
  static figure in 40% of rooms. These follow the issue's real-room composites (camera 1.15-1.5 m, 0-5 deg, wall
  3.4-4.5 m), widened.
* ``kinect_v1`` (320x240 at 15 fps as MSR-Action3D stored it): intrinsics of ``KINECT_V1``; noise sigma
  1.5 mm * z^2 (D: Khoshelham & Elberink 2012, random error up to ~4 cm at 5 m); depth quantised in 1/8-pixel
  disparity steps of the 580 px / 7.5 cm projector-camera pair (D: same paper, ~2.9 mm * z^2 steps); projector
  shadows on the left of near objects (baseline D, side G); range 0.8-6 m (the SDK's default mode stops at 4 m (D),
  OpenNI/libfreenect report further (G)); 35% of depth-edge pixels lost (G, as ``synthetic``); a few speckle holes
  (G).
* ``d435`` (848x480) / ``d435_640`` (640x480), 30 fps: intrinsics of ``camera.D435_848X480`` / ``D435_640X480``
  (FOV D, focal lengths typical calibrations); noise sigma = z^2 * 0.08 px / (f * 50 mm) (Intel's RMS-error
  formula from its tuning white paper (D), 0.08 px subpixel accuracy (G, it depends on texture)) = 3.8 mm * z^2
  at 848x480; stereo occlusion: background next to the left of a near object and a band along the image's left
  edge read 0 (D: Intel documents both; widths from the 50 mm baseline); range 0.2-10 m (D: min-Z ~0.2-0.3 m);
  50% of depth-edge pixels lost and 30% of the rest "flying" between the two surfaces (G); more speckle holes
  than the Kinect (G).

Deterministic: a room draws from ``np.random.SeedSequence([seed, 9000])`` (the same room for every take of a
seed, whatever the sensor), a take from ``[seed, 9001, set, subject, take, stream]``, the empty-room frames from
``[seed, 9002]``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kerasdance.camera import KINECT_V1
from kerasdance.data import synthetic as syn
from kerasdance.data.depth_sensor import SENSORS as SENSORS  # re-exported: scenes.SENSORS as before
from kerasdance.data.depth_sensor import SensorModel, apply_sensor, camera_rotation, floor_plane, sensor_model
from kerasdance.data.types import Sequence
from kerasdance.skeleton import NUM_JOINTS

log = logging.getLogger("kerasdance.data")

#: File written beside ``dataset.json`` by ``write_studio_takes``: the empty room (see ``write_empty_room``).
EMPTY_ROOM_NPZ = "empty_room.npz"
ROLE_DANCER, ROLE_PASSERBY = "dancer", "passerby"
MAX_PEOPLE = 4


# --- the room --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Box:
    """A piece of furniture (or a part of one): a box standing in the world.

    Attributes:
        kind: what it belongs to (``"table"``, ``"sideboard"``, ``"cabinet"``, ``"chair"``).
        center_m: ``(x, y, z)`` world metres.
        half_size_m: half extents along the box's own x, y, z.
        yaw: turn about the vertical in radians.
    """

    kind: str
    center_m: tuple[float, float, float]
    half_size_m: tuple[float, float, float]
    yaw: float = 0.0

    def corners(self) -> np.ndarray:
        """``(8, 3)`` world metres."""
        s = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float) * self.half_size_m
        return s @ syn._rot_y(self.yaw).T + self.center_m


_rotation = camera_rotation  # the name this module used before depth_sensor held it


@dataclasses.dataclass(frozen=True, eq=False)
class StudioScene:
    """A room and the camera in it (``StudioScene.draw``): everything that does not move.

    Attributes:
        sensor: the depth sensor.
        camera_height_m: the camera's height above the floor.
        tilt_deg: pitch down (0 = level).
        roll_deg: roll about the optical axis (positive: the image turns anticlockwise).
        back_wall_m: the back wall's distance (world z).
        half_width_m: the side walls stand at world x = +-half_width_m.
        ceiling_m: the ceiling's height.
        boxes: the furniture.
        figure_m: ``(20, 3)`` world joints of a static person-sized figure, or None.
        figure_girth: its girth factor.
    """

    sensor: SensorModel
    camera_height_m: float
    tilt_deg: float
    roll_deg: float
    back_wall_m: float
    half_width_m: float
    ceiling_m: float
    boxes: tuple[Box, ...] = ()
    figure_m: np.ndarray | None = None
    figure_girth: float = 1.0

    @classmethod
    def draw(cls, seed: int = 0, sensor: str | SensorModel = "kinect_v1") -> StudioScene:
        """A seeded random room; the same ``seed`` gives the same room (and camera pose) for every sensor."""
        sensor = sensor_model(sensor)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 9000]))
        wall = rng.uniform(3.2, 5.0)
        height = rng.uniform(1.0, 1.6)
        low_ray = math.atan(0.5 * KINECT_V1.cy / KINECT_V1.fy)  # 3/4 down the narrowest sensor's image
        need = math.degrees(math.atan(height / (wall - 0.3)) - low_ray)  # that ray meets the floor before the wall
        tilt = rng.uniform(min(max(need, 0.0), 8.0), 8.0)
        roll = rng.uniform(-2.0, 2.0)
        half_width = rng.uniform(1.8, 3.5)
        ceiling = rng.uniform(2.6, 3.2)
        boxes: list[Box] = []
        for _ in range(int(rng.integers(2, 6))):
            boxes += _furniture(rng, wall, half_width)
        figure, girth = None, 1.0
        if rng.random() < 0.4:
            subj = syn._subject("msr20", int(rng.integers(1, 11)), seed)
            body = syn._forward_kinematics(syn._pose(np.zeros(1)), subj["bones"])[0]
            side = rng.choice([-1.0, 1.0])
            x = side * min(rng.uniform(1.2, 2.0), half_width - 0.4)
            z = rng.uniform(2.2, wall - 0.4)
            leg = subj["bones"]["thigh"] + subj["bones"]["shin"] + 0.05
            figure = body @ syn._rot_y(rng.uniform(-0.6, 0.6)).T + [x, leg, z]
            girth = float(subj["girth"])
        return cls(sensor, float(height), float(tilt), float(roll), float(wall), float(half_width), float(ceiling),
                   tuple(boxes), figure, girth)

    def rotation(self) -> np.ndarray:
        """``(3, 3)`` world -> camera rotation."""
        return _rotation(self.tilt_deg, self.roll_deg)

    def to_camera(self, points_m: np.ndarray) -> np.ndarray:
        """World metres ``(..., 3)`` -> camera metres ``(..., 3)`` (NaN stays NaN)."""
        p = np.asarray(points_m, np.float64) - [0.0, self.camera_height_m, 0.0]
        return p @ self.rotation().T

    def floor_plane(self) -> np.ndarray:
        """The floor in camera coordinates: ``(4,)`` ``(nx, ny, nz, d)`` with ``n . p + d = 0`` on the floor, ``n``
        the unit up direction (so ``n . p + d`` is a point's height above the floor) and ``d`` the camera height."""
        return floor_plane(self.camera_height_m, self.tilt_deg, self.roll_deg)

    def render(self) -> np.ndarray:
        """The empty room without noise: ``(H, W)`` float32 depth in metres (the figure and furniture included)."""
        intr = self.sensor.intrinsics
        H, W = intr.height, intr.width
        vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
        d_cam = np.stack([(uu - intr.cx) / intr.fx, (intr.cy - vv) / intr.fy, np.ones_like(uu)], -1)
        d = d_cam @ self.rotation()  # world ray directions whose camera z is 1: the ray parameter is the depth
        origin = np.array([0.0, self.camera_height_m, 0.0])
        z = np.full((H, W), np.inf)
        for axis, value in ((1, 0.0), (1, self.ceiling_m), (2, self.back_wall_m), (0, self.half_width_m),
                            (0, -self.half_width_m)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (value - origin[axis]) / d[..., axis]
            z = np.where((t > 0) & (t < z), t, z)
        for box in self.boxes:
            _render_box(box, self, origin, d, z)
        if self.figure_m is not None:
            z = np.minimum(z, syn.render_frame(self.to_camera(self.figure_m), intr, self.figure_girth))
        return z.astype(np.float32)


def _furniture(rng, wall: float, half_width: float) -> list[Box]:
    """One piece of furniture beside the stage (|x| >= 1.3 m) or along the back wall, as boxes."""
    kind = str(rng.choice(["table", "sideboard", "cabinet", "chair"]))
    yaw = rng.normal(0, 0.12)
    if kind == "table":
        w, d, h = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9), rng.uniform(0.72, 0.78)
    elif kind == "sideboard":
        w, d, h = rng.uniform(1.2, 2.0), 0.45, rng.uniform(0.8, 0.9)
    elif kind == "cabinet":
        w, d, h = rng.uniform(0.8, 1.0), 0.45, rng.uniform(1.6, 2.0)
    else:
        w, d, h = 0.45, 0.45, 0.9
    if rng.random() < 0.35:  # along the back wall, behind the stage
        x = rng.uniform(-half_width + w / 2 + 0.1, half_width - w / 2 - 0.1)
        z = wall - d / 2 - rng.uniform(0.02, 0.15)
    else:  # beside the stage
        side = rng.choice([-1.0, 1.0])
        x = side * rng.uniform(1.3 + w / 2, max(1.3 + w / 2, half_width - w / 2 - 0.05) + 1e-6)
        z = rng.uniform(1.8, max(1.8, wall - d / 2 - 0.05) + 1e-6)
    rot = syn._rot_y(yaw)

    def part(dx, y, dz, hx, hy, hz) -> Box:
        c = rot @ [dx, 0.0, dz]
        return Box(kind, (float(x + c[0]), float(y), float(z + c[2])), (float(hx), float(hy), float(hz)), float(yaw))

    if kind == "table":
        top = 0.02
        parts = [part(0, h - top, 0, w / 2, top, d / 2)]
        parts += [part(sx * (w / 2 - 0.05), (h - 2 * top) / 2, sz * (d / 2 - 0.05), 0.025, (h - 2 * top) / 2, 0.025)
                  for sx in (-1, 1) for sz in (-1, 1)]
        return parts
    if kind == "chair":
        seat = 0.45
        parts = [part(0, seat, 0, w / 2, 0.025, d / 2), part(0, (seat + h) / 2, d / 2 - 0.02, w / 2, (h - seat) / 2,
                                                             0.02)]
        parts += [part(sx * (w / 2 - 0.03), seat / 2, sz * (d / 2 - 0.03), 0.02, seat / 2, 0.02)
                  for sx in (-1, 1) for sz in (-1, 1)]
        return parts
    return [part(0, h / 2, 0, w / 2, h / 2, d / 2)]


def _render_box(box: Box, scene: StudioScene, origin: np.ndarray, d: np.ndarray, z: np.ndarray) -> None:
    """Ray-box intersection (slabs) inside the box's projected rectangle; updates the z-buffer ``z`` in place."""
    intr = scene.sensor.intrinsics
    cam = scene.to_camera(box.corners())
    if np.all(cam[:, 2] <= 0):
        return
    if np.all(cam[:, 2] > 0):
        uvz = intr.project(cam)
        u0, u1 = int(max(np.floor(uvz[:, 0].min()), 0)), int(min(np.ceil(uvz[:, 0].max()), intr.width - 1))
        v0, v1 = int(max(np.floor(uvz[:, 1].min()), 0)), int(min(np.ceil(uvz[:, 1].max()), intr.height - 1))
        if u1 < u0 or v1 < v0:
            return
    else:
        u0, u1, v0, v1 = 0, intr.width - 1, 0, intr.height - 1
    inv = syn._rot_y(-box.yaw)
    o = inv @ (origin - box.center_m)
    dd = d[v0 : v1 + 1, u0 : u1 + 1] @ inv.T
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = (-np.asarray(box.half_size_m) - o) / dd
        hi = (np.asarray(box.half_size_m) - o) / dd
    lo, hi = np.nan_to_num(np.minimum(lo, hi), nan=-np.inf), np.nan_to_num(np.maximum(lo, hi), nan=np.inf)
    t_near, t_far = lo.max(-1), hi.min(-1)
    hit = (t_near <= t_far) & (t_near > 0)
    sub = z[v0 : v1 + 1, u0 : u1 + 1]
    np.minimum(sub, np.where(hit, t_near, np.inf), out=sub)


def render_empty_room(scene: StudioScene, frames: int = 30, seed: int = 0) -> np.ndarray:
    """``frames`` sensor frames of the empty room (for learning the background): ``(frames, H, W)`` uint16 mm.

    Raises:
        ValueError: ``frames`` not an integer >= 1.
    """
    if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1. Received: frames={frames!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9002]))
    z = scene.render()
    return np.stack([apply_sensor(z, scene.sensor, rng) for _ in range(frames)])


# --- people ----------------------------------------------------------------------------------------------------
def _walk(bones: dict, t: np.ndarray, speed: float) -> np.ndarray:
    """A simple walking skeleton ``(len(t), 20, 3)`` in the body frame (facing -z, hips at the origin)."""
    c = 2 * np.pi * (speed / 1.45) * t  # one stride (two steps) per 1.45 m
    s, k = np.sin(c), np.clip(np.cos(c), 0, None)
    pose = syn._pose(np.zeros(len(t)),
                     th_r=syn._v(0, -1, -0.45 * s), th_l=syn._v(0, -1, 0.45 * s),
                     sh_r=syn._v(0, -1, -0.45 * s + 0.6 * k), sh_l=syn._v(0, -1, 0.45 * s + 0.6 * np.clip(-np.cos(c), 0,
                                                                                                          None)),
                     ua_r=syn._v(0.05, -1, 0.35 * s), ua_l=syn._v(-0.05, -1, -0.35 * s),
                     fa_r=syn._v(0.03, -1, 0.35 * s - 0.3), fa_l=syn._v(-0.03, -1, -0.35 * s - 0.3),
                     hip_dy=0.02 * np.cos(2 * c))
    return syn._forward_kinematics(pose, bones)


@dataclasses.dataclass(eq=False)
class StudioTake:
    """One take in a studio (``generate_studio_take``).

    Attributes:
        name: ``studio_sSS_tTT``.
        scene: the room and camera.
        fps: frames per second.
        depth_mm: ``(F, H, W)`` uint16 depth of the whole scene in millimetres, 0 = no reading.
        joints_m: ``(P, F, 20, 3)`` float32 noise-free joints of every person in the camera frame (metres), NaN
            where the person is not in the scene (a passer-by before and after the walk); dancers first.
        frame_labels: ``(P, F)`` int64 move class per person and frame (-1: no move, and always for a passer-by).
        person_mask: ``(F, H, W)`` int8: which person's surface each pixel shows, -1 = the room (the static figure
            is room). From the noise-free scene: a person's pixel may still read 0 (a hole).
        empty_room_mm: ``(E, H, W)`` uint16 frames of the same room without people (own sensor noise).
        roles: ``(P,)`` ``"dancer"`` or ``"passerby"``.
        subjects: ``(P,)`` the dancers' synthetic subjects (-1 for a passer-by).
        girths: ``(P,)`` the bodies' girth factors (``synthetic.render_frame``).
        set_name: the synthetic set of the moves.
        subject: the main dancer's (person 0's) subject.
        take: the take number.
    """

    name: str
    scene: StudioScene
    fps: float
    depth_mm: np.ndarray
    joints_m: np.ndarray
    frame_labels: np.ndarray
    person_mask: np.ndarray
    empty_room_mm: np.ndarray
    roles: tuple[str, ...]
    subjects: tuple[int, ...]
    girths: tuple[float, ...]
    set_name: str
    subject: int
    take: int

    @property
    def num_frames(self) -> int:
        return int(self.depth_mm.shape[0])

    def to_sequence(self) -> Sequence:
        """The take as a ``Sequence`` whose joints and frame labels are the main dancer's (person 0)."""
        return Sequence(name=self.name, depth_mm=self.depth_mm, joints_m=self.joints_m[0],
                        label=None, subject=self.subject, episode=self.take, intrinsics=self.scene.sensor.intrinsics,
                        fps=self.fps, frame_labels=self.frame_labels[0])

    def extra_arrays(self, mask: bool = True) -> dict[str, np.ndarray]:
        """The per-person arrays written beside the sequence's own (``write_studio_takes``)."""
        out = {"people_joints_m": self.joints_m, "people_frame_labels": self.frame_labels,
               "people_roles": np.array(self.roles), "people_subjects": np.array(self.subjects, np.int64)}
        if mask:
            out["person_mask"] = self.person_mask
        return out


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo or (hi is not None and
                                                                                           value > hi):
        rng = f"{lo} .. {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}. Received: {name}={value!r}")


def _stage_z_range(scene: StudioScene, rng) -> tuple[float, float]:
    """Dancer distances: far enough to show the feet where the room allows, in front of the back wall."""
    intr = scene.sensor.intrinsics
    half_vfov = math.atan(intr.cy / intr.fy)
    feet = scene.camera_height_m / math.tan(half_vfov + math.radians(scene.tilt_deg)) + 0.3
    hi = scene.back_wall_m - 0.7
    lo = min(max(feet, 2.0), hi - 0.3)
    return lo, max(hi, lo + 0.3)


def generate_studio_take(set_name: str, subject: int, take: int, seed: int = 0, people: int = 1,
                         passerby: bool = False, sensor: str | SensorModel = "kinect_v1", fps: float | None = None,
                         moves: int = 6, cross: bool | None = None, max_frames: int | None = None,
                         empty_frames: int = 30, scene: StudioScene | None = None) -> StudioTake:
    """One take in a studio: ``people`` dancers performing continuous takes, maybe a passer-by, the room, the sensor.

    Person 0 is subject ``subject``'s take ``take`` (``synthetic.generate_performance``'s motion); dancer ``k``
    is the next subject's (``subject + k``, wrapping) same take. Dancers stand at their own stage spots, spread
    sideways, each at its own distance; each still drifts and travels as in its take. With two or more dancers,
    dancer 1 crosses the stage once (in front of or behind dancer 0, occluding or occluded) when ``cross`` is True
    (None: in half of the takes, seeded). A dancer whose take ends first stands still for the rest (labels -1).
    A passer-by walks across the whole room once, in front of or behind the dancers, at some time in the take.

    Args:
        set_name: the synthetic set of the moves (``msr20``, ``dance11``).
        subject: the main dancer's synthetic subject (>= 1).
        take: the take number (>= 1).
        seed: the seed of the room (``StudioScene.draw(seed)``) and of the take.
        people: dancers, 1 .. 4.
        passerby: add a passer-by (the last person).
        sensor: ``"kinect_v1"``, ``"d435"``, ``"d435_640"`` or a ``SensorModel``.
        fps: frames per second (default: the sensor's, 15 or 30).
        moves: moves per dancer.
        cross: whether dancer 1 crosses the stage (None: seeded).
        max_frames: keep only the first frames (for previews and tests): the same frames as the whole take's.
        empty_frames: frames of the empty room (``render_empty_room``).
        scene: the room (its sensor replaces ``sensor``); default ``StudioScene.draw(seed, sensor)``.

    Returns:
        A ``StudioTake``; its main dancer's joints and labels are ``to_sequence()``'s.

    Raises:
        ValueError: unknown set or sensor; subject, take, moves, empty_frames or max_frames not an integer >= 1;
            people not in 1 .. 4; fps not a positive finite number.
    """
    syn._check_set(set_name)
    _check_int("people", people, 1, MAX_PEOPLE)
    _check_int("empty_frames", empty_frames, 1)
    if max_frames is not None:
        _check_int("max_frames", max_frames, 1)
    sensor = sensor_model(sensor) if scene is None else scene.sensor
    fps = sensor.fps if fps is None else fps
    syn._check_performance_args(set_name, subject, take, fps, moves)
    fps = float(fps)
    scene = StudioScene.draw(seed, sensor) if scene is None else scene
    intr = sensor.intrinsics
    n_subjects = syn.SETS[set_name]["subjects"]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9001, list(syn.SETS).index(set_name), subject, take,
                                                        0]))
    subjects = [(subject - 1 + k) % n_subjects + 1 for k in range(people)]
    motions = [syn.performance_motion(set_name, s, take, seed, fps, moves) for s in subjects]
    full = len(motions[0].frame_labels)  # timings follow the whole take: max_frames keeps a prefix of it
    n = full if max_frames is None else min(max_frames, full)
    t = np.arange(n) / fps
    t_end = (full - 1) / fps
    z_lo, z_hi = _stage_z_range(scene, rng)
    spread = 0.55 * (people - 1)
    xs = np.linspace(-spread, spread, people) + rng.uniform(-0.15, 0.15, people)
    zs = rng.uniform(z_lo, z_hi, people)
    crossing = people >= 2 and (rng.random() < 0.5 if cross is None else bool(cross))
    if people >= 2 and abs(zs[1] - zs[0]) < 0.4:  # two dancers at one depth would walk through each other
        zs[1] = zs[0] + 0.4 if zs[0] + 0.4 <= z_hi + 0.2 else zs[0] - 0.4
    world = np.full((people + int(passerby), n, NUM_JOINTS, 3), np.nan)
    labels = np.full((people + int(passerby), n), -1, np.int64)
    for k, m in enumerate(motions):
        j = m.on_floor()
        f = min(n, len(j))
        world[k, :f] = j[:f]
        world[k, f:] = j[-1]  # stands still once its take is over
        labels[k, :f] = m.frame_labels[:f]
        world[k, ..., 0] += xs[k]
        world[k, ..., 2] += zs[k]
    if crossing:  # dancer 1 walks over to the other side of dancer 0 (and stays there)
        dur = rng.uniform(2.0, 4.0)
        start = rng.uniform(0.15, 0.6) * max(t_end - dur, 0.0)
        w = np.clip((t - start) / dur, 0, 1)
        w = 0.5 - 0.5 * np.cos(np.pi * w)
        target = xs[0] - np.sign(xs[1] - xs[0]) * abs(xs[1] - xs[0])
        world[1, ..., 0] += (w * (target - xs[1]))[:, None]
    girths = [m.girth for m in motions]
    roles = [ROLE_DANCER] * people
    subj_ids = list(subjects)
    if passerby:
        body = syn._subject(set_name, (subject + people - 1) % n_subjects + 1, seed + 1)
        speed = rng.uniform(1.0, 1.5)
        front = rng.random() < 0.5 and zs.min() - 0.6 >= 1.4
        z_pass = rng.uniform(1.4, zs.min() - 0.6) if front else rng.uniform(min(zs.max() + 0.6, scene.back_wall_m
                                                                                 - 0.4), scene.back_wall_m - 0.35)
        half = z_pass * intr.cx / intr.fx + 0.8  # starts and ends out of view
        direction = rng.choice([-1.0, 1.0])
        dur = 2 * half / speed
        mid = rng.uniform(0.2, 0.8) * t_end
        t0 = mid - dur / 2
        on = (t >= t0) & (t <= t0 + dur)
        walk = _walk(body["bones"], t[on] - t0, speed)
        walk = walk @ syn._rot_y(-direction * np.pi / 2).T  # face the way it walks
        walk[..., 0] += (direction * (-half + speed * (t[on] - t0)))[:, None]
        walk[..., 1] += body["bones"]["thigh"] + body["bones"]["shin"] + 0.05
        walk[..., 2] += z_pass
        world[people, on] = walk
        girths.append(float(body["girth"]))
        roles.append(ROLE_PASSERBY)
        subj_ids.append(-1)
    joints = scene.to_camera(world).astype(np.float32)  # rendered as stored: the mask matches the joints
    room = scene.render()
    noise = np.random.default_rng(np.random.SeedSequence([seed, 9001, list(syn.SETS).index(set_name), subject, take,
                                                          1]))
    depth = np.empty((n, intr.height, intr.width), np.uint16)
    mask = np.empty((n, intr.height, intr.width), np.int8)
    for f in range(n):
        z = room.copy()
        owner = np.full(z.shape, -1, np.int8)
        for p in range(len(roles)):
            if np.isnan(joints[p, f]).any():
                continue
            zp = syn.render_frame(joints[p, f], intr, girths[p])
            nearer = zp < z
            z[nearer] = zp[nearer]
            owner[nearer] = p
        depth[f] = apply_sensor(z, sensor, noise)
        mask[f] = owner
    empty = render_empty_room(scene, empty_frames, seed)
    return StudioTake(name=f"studio_s{subject:02d}_t{take:02d}", scene=scene, fps=fps, depth_mm=depth,
                      joints_m=joints, frame_labels=labels, person_mask=mask,
                      empty_room_mm=empty, roles=tuple(roles), subjects=tuple(subj_ids),
                      girths=tuple(float(g) for g in girths), set_name=set_name, subject=int(subject), take=int(take))


# --- writing ---------------------------------------------------------------------------------------------------
def write_empty_room(out_dir: str | Path, scene: StudioScene, depth_mm: np.ndarray) -> Path:
    """Write ``empty_room.npz`` into ``out_dir``: ``depth_mm`` ``(E, H, W)`` uint16 frames of the empty room, and
    the room's truth: ``floor_plane`` ``(4,)`` (``StudioScene.floor_plane``), ``camera_height_m``, ``tilt_deg``,
    ``roll_deg`` (0-d float64). Returns the path."""
    path = Path(out_dir) / EMPTY_ROOM_NPZ
    np.savez_compressed(path, depth_mm=np.asarray(depth_mm, np.uint16), floor_plane=scene.floor_plane(),
                        camera_height_m=np.float64(scene.camera_height_m), tilt_deg=np.float64(scene.tilt_deg),
                        roll_deg=np.float64(scene.roll_deg))
    return path


def write_studio_takes(set_name: str, out_dir: str | Path, seed: int = 0, subjects=None, takes: int = 2,
                       fps: float | None = None, moves: int = 6, people: int = 1, passerby: bool = False,
                       sensor: str = "kinect_v1", mask: bool = True, empty_frames: int = 30,
                       max_frames: int | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """Render studio takes (``generate_studio_take``) into ``out_dir`` in the generic layout.

    One take per (subject, take) as in ``synthetic.write_performances``, all in the one room of ``seed``. Each
    ``.npz`` holds the main dancer's ``joints_m`` and ``frame_labels`` (so every reader and ``kerasdance-edge
    eval`` use it as it is) and the optional per-person arrays ``people_joints_m``, ``people_frame_labels``,
    ``people_roles``, ``people_subjects`` and (unless ``mask`` is False) ``person_mask``; ``empty_room.npz``
    (``write_empty_room``) sits beside ``dataset.json``. ``max_frames`` keeps the first frames of each take (for
    previews and tests). Returns the count of takes.

    Raises:
        ValueError: as ``generate_studio_take``; takes not an integer >= 1; no subjects.
    """
    from kerasdance.data.dataset import write_generic

    spec = syn.SETS[syn._check_set(set_name)]
    sensor_m = sensor_model(sensor)
    fps = sensor_m.fps if fps is None else fps
    subs = list(subjects) if subjects is not None else list(range(1, spec["subjects"] + 1))
    _check_int("takes", takes, 1)
    if not subs:
        raise ValueError("subjects is empty")
    combos = [(s, k) for s in subs for k in range(1, takes + 1)]
    for s, k in combos:
        syn._check_performance_args(set_name, s, k, fps, moves)
    _check_int("people", people, 1, MAX_PEOPLE)
    _check_int("empty_frames", empty_frames, 1)
    scene = StudioScene.draw(seed, sensor_m)
    extras: dict[str, dict[str, np.ndarray]] = {}
    out = Path(out_dir)

    def sequences():
        for i, (s, k) in enumerate(combos):
            st = generate_studio_take(set_name, s, k, seed=seed, people=people, passerby=passerby, fps=fps,
                                      moves=moves, empty_frames=empty_frames if i == 0 else 1, scene=scene,
                                      max_frames=max_frames)
            if i == 0:
                out.mkdir(parents=True, exist_ok=True)
                write_empty_room(out, scene, st.empty_room_mm)
            extras[st.name] = st.extra_arrays(mask)
            yield st.to_sequence()
            if progress:
                progress(i, len(combos))

    write_generic(out_dir, sequences(), syn.class_names(set_name), sensor_m.intrinsics, fps=float(fps),
                  extra_arrays=lambda seq: extras.pop(seq.name))
    log.info("wrote %d %s studio takes to %s", len(combos), set_name, out_dir)
    return len(combos)
