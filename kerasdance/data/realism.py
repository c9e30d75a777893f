"""Synthetic clips that vary like real recordings: ``synthetic.generate_sequence(..., realism="varied")``.

The plain clips (``realism=None``) see every performer through a level camera 0.7-1.0 m high, as capsules of one
girth factor, with a simple noise model. ``"varied"`` changes three things, each drawn per subject (one camera set-up
and one set of clothes per performer, as in a recording session) and jittered per clip:

* Camera pose: the camera stands 0.8-1.8 m high, pitched down 0-10 deg and rolled +-3 deg; depth, stored joints and
  the floor are all in **its** frame, as in ``scenes.StudioScene`` (x right, y up, z away). The pitch is kept where
  the performer's feet and head stay in view at its distance (a person setting up a camera aims it at the
  stage); where no pitch in 0-10 deg does that, the performer stands farther back (up to 4.2 m).
* Body shape: per-segment girths (arms, legs, hands, feet, shoulders, head), a torso width and a hip width, and
  clothing volume: a loose top thickens the torso and upper arms, loose trousers or a skirt the thighs (and shins).
* Sensor: ``depth_sensor.apply_sensor`` with the ``kinect_v1`` model at the clip's resolution (noise 1.5 mm z^2,
  disparity quantisation in 1/8-pixel steps, projector shadows, 35% of depth-edge pixels lost), plus mixed
  ("flying") pixels between surfaces at depth edges and holes in thin parts (hands, forearms far away).

Where the numbers come from (D = datasheet or a published measurement, via ``scenes``; G = a guess that looks
plausible, not fitted to any recording):

* camera height 0.8-1.8 m, pitch 0-10 deg, roll +-3 deg (G, from the issue's ranges; the studio scenes' real-room
  composites had 1.15-1.5 m and 0-5 deg); per clip +-3 cm, +-1 deg, +-0.5 deg (G); 3 deg framing margin (G).
* girth multipliers 0.85-1.2 per limb segment, 0.92-1.08 head, torso width 0.85-1.25, hip width 0.85-1.2 (G);
  a loose top in 40% of subjects adds 1-4 cm to the torso radius and 0.5-2 cm to the upper arms, loose trousers in
  30% add 1.5-3.5 cm to the thighs and 1-2.5 cm to the shins, a skirt in 10% adds 4-8 cm to the thighs; tight
  clothes add 0-0.5 cm (G); per clip +-5% on every radius (G).
* noise sigma, disparity step, shadow baseline, 35% edge loss: ``depth_sensor.SENSORS["kinect_v1"]`` (D, except the
  35%: G). 15% of the remaining edge pixels fly between the two surfaces (G). Thin parts: body pixels that a 5x5
  pixel opening (at 320x240; scaled with the image, none below 3 px) removes, i.e. parts under ~5 px across, read
  0 with probability 0.5 (G: structured light matches ~9x9 windows at 640x480 and loses what is narrower).

Nothing here is checked against real recordings: held-out synthetic subjects are all it is measured on.

Deterministic: a subject's camera and body draw from ``np.random.SeedSequence([seed, set, 1000 + subject, 1])``, a
clip's jitter from ``[seed, set, label, subject, episode, 2]`` and its sensor noise from ``[..., episode, 3]``;
the plain clips' streams are untouched, so ``realism=None`` output stays byte-identical.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.data import depth_sensor
from kerasdance.data.depth_sensor import SENSORS, apply_sensor, camera_rotation
from kerasdance.skeleton import Joint as J

#: The values ``generate_sequence``'s ``realism`` and ``kerasdance synth --realism`` accept (None = the plain clips).
REALISM_LEVELS = ("varied",)

_SEGMENTS = ("upper_arm", "forearm", "hand", "thigh", "shin", "foot", "shoulder")
_PITCH_MAX, _ROLL_MAX, _HEIGHT = 10.0, 3.0, (0.8, 1.8)
_MARGIN_DEG = 3.0
_MAX_Z = 4.2
_FLYING, _THIN_DROP, _THIN_PX = 0.15, 0.5, 5


def check_realism(realism: str | None) -> str | None:
    """``realism`` if it is None or one of ``REALISM_LEVELS``.

    Raises:
        ValueError: anything else.
    """
    if realism is not None and realism not in REALISM_LEVELS:
        raise ValueError(f"Unknown realism level. Received: realism={realism!r}; valid: None, "
                         f"{', '.join(map(repr, REALISM_LEVELS))}")
    return realism


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """How one performer's capsules differ from the plain body (``synthetic._RADII`` times the subject's girth).

    Attributes:
        segments: radius multiplier per limb segment kind (``upper_arm``, ``forearm``, ``hand``, ``thigh``,
            ``shin``, ``foot``, ``shoulder``) and ``head``.
        torso_width: multiplier of the torso and the two side capsules (hip to shoulder).
        hip_width: multiplier of the hip capsules.
        clothing_m: metres added to a kind's radius by clothes (``torso``, ``upper_arm``, ``thigh``, ``shin``).
        top: ``"tight"`` or ``"loose"``.
        bottom: ``"tight"``, ``"loose"`` (trousers) or ``"skirt"``.
    """

    segments: dict
    torso_width: float
    hip_width: float
    clothing_m: dict
    top: str
    bottom: str

    def jittered(self, rng: np.random.Generator) -> BodyShape:
        """The same body and clothes with every radius within +-5% (a clip's fit of the clothes, posture)."""
        seg = {k: v * rng.uniform(0.95, 1.05) for k, v in self.segments.items()}
        return dataclasses.replace(self, segments=seg, torso_width=self.torso_width * rng.uniform(0.95, 1.05),
                                   hip_width=self.hip_width * rng.uniform(0.95, 1.05))

    def capsules(self, parts: list[tuple[int, int, str, float]]) -> list[tuple[int, int, float]]:
        """The plain body's capsules reshaped: ``parts`` ``(joint a, joint b, kind, radius m)`` (the plain body,
        ``synthetic._capsule_parts``; kinds ``torso``, ``side``, ``hip``, ``head`` and the limb segments) ->
        ``(joint a, joint b, radius m)`` for ``synthetic.render_frame``'s ``capsules``."""
        cloth = self.clothing_m
        caps = []
        for a, b, kind, r in parts:
            if kind == "torso" and b == J.HEAD:  # the neck
                pass
            elif kind in ("torso", "side"):
                r = r * self.torso_width + cloth["torso"]
            elif kind == "hip":
                r = r * self.hip_width
            else:
                r = r * self.segments[kind] + cloth.get(kind, 0.0)
            caps.append((a, b, r))
        return caps


@dataclasses.dataclass(frozen=True)
class CameraPose:
    """A level-floor camera: height above the floor, pitch down and roll (``scenes.StudioScene``'s convention)."""

    height_m: float
    tilt_deg: float
    roll_deg: float


@dataclasses.dataclass(frozen=True)
class SubjectLook:
    """One performer's recording set-up (``subject_look``): camera pose and body shape, before a clip's jitter."""

    camera: CameraPose
    body: BodyShape


def _subject_rng(set_index: int, subject: int, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, set_index, 1000 + subject, 1]))


def subject_look(set_index: int, subject: int, seed: int) -> SubjectLook:
    """A subject's seeded camera set-up and body shape (the same for every clip of the subject)."""
    rng = _subject_rng(set_index, subject, seed)
    cam = CameraPose(float(rng.uniform(*_HEIGHT)), float(rng.uniform(0.0, _PITCH_MAX)),
                     float(rng.uniform(-_ROLL_MAX, _ROLL_MAX)))
    seg = {k: float(rng.uniform(0.85, 1.2)) for k in _SEGMENTS}
    seg["head"] = float(rng.uniform(0.92, 1.08))
    torso_width, hip_width = float(rng.uniform(0.85, 1.25)), float(rng.uniform(0.85, 1.2))
    u_top, u_bottom = rng.random(), rng.random()
    top = "loose" if u_top < 0.4 else "tight"
    bottom = "loose" if u_bottom < 0.3 else "skirt" if u_bottom < 0.4 else "tight"
    tight = lambda: float(rng.uniform(0.0, 0.005))  # noqa: E731
    cloth = {"torso": float(rng.uniform(0.01, 0.04)) if top == "loose" else tight()}
    cloth["upper_arm"] = float(rng.uniform(0.005, 0.02)) if top == "loose" else tight()
    if bottom == "loose":
        cloth["thigh"], cloth["shin"] = float(rng.uniform(0.015, 0.035)), float(rng.uniform(0.01, 0.025))
    elif bottom == "skirt":
        cloth["thigh"], cloth["shin"] = float(rng.uniform(0.04, 0.08)), tight()
    else:
        cloth["thigh"], cloth["shin"] = tight(), tight()
    return SubjectLook(cam, BodyShape(seg, torso_width, hip_width, cloth, top, bottom))


def frame_camera(camera: CameraPose, z_m: float, top_m: float, intrinsics: Intrinsics) -> tuple[CameraPose, float]:
    """The camera's pitch clamped so that a performer ``top_m`` tall standing ``z_m`` away shows feet and head.

    Returns ``(camera, z_m)``: the pitch moved into the band that frames the performer (within 0-10 deg); where no
    pitch does, the performer moved back (at most to 4.2 m) and the pitch set to the band's nearest value.
    """
    half = math.degrees(math.atan(intrinsics.cy / intrinsics.fy)) - _MARGIN_DEG
    h = camera.height_m

    def band(z: float) -> tuple[float, float]:
        lo = math.degrees(math.atan(h / z)) - half  # feet in view
        hi = half - math.degrees(math.atan((top_m - h) / z))  # head in view
        return max(lo, 0.0), min(hi, _PITCH_MAX)

    lo, hi = band(z_m)
    while lo > hi and z_m < _MAX_Z:
        z_m = min(z_m + 0.05, _MAX_Z)
        lo, hi = band(z_m)
    tilt = float(np.clip(camera.tilt_deg, lo, hi)) if lo <= hi else float(np.clip(0.5 * (lo + hi), 0, _PITCH_MAX))
    return dataclasses.replace(camera, tilt_deg=tilt), float(z_m)


def clip_camera(look: SubjectLook, rng: np.random.Generator) -> CameraPose:
    """The subject's camera with a clip's jitter: height +-3 cm, pitch +-1 deg, roll +-0.5 deg (within range)."""
    c = look.camera
    return CameraPose(float(np.clip(c.height_m + rng.uniform(-0.03, 0.03), *_HEIGHT)),
                      float(np.clip(c.tilt_deg + rng.uniform(-1, 1), 0.0, _PITCH_MAX)),
                      float(np.clip(c.roll_deg + rng.uniform(-0.5, 0.5), -_ROLL_MAX, _ROLL_MAX)))


def kinect_sensor(intrinsics: Intrinsics):
    """``depth_sensor.SENSORS["kinect_v1"]`` at ``intrinsics``, with flying pixels at depth edges."""
    return dataclasses.replace(SENSORS["kinect_v1"], intrinsics=intrinsics, flying_pixels=_FLYING)


def thin_parts(body: np.ndarray, size_px: int) -> np.ndarray:
    """``(H, W)`` bool: pixels of ``body`` that a ``size_px`` x ``size_px`` opening removes (parts narrower than it)."""
    if size_px < 2:
        return np.zeros_like(body, bool)
    r0, r1 = (size_px - 1) // 2, size_px // 2
    H, W = body.shape
    pad = np.pad(body, ((r0, r1), (r0, r1)), constant_values=False)
    eroded = np.ones((H, W), bool)
    for dv in range(size_px):
        for du in range(size_px):
            eroded &= pad[dv : dv + H, du : du + W]
    pad = np.pad(eroded, ((r1, r0), (r1, r0)), constant_values=False)
    opened = np.zeros((H, W), bool)
    for dv in range(size_px):
        for du in range(size_px):
            opened |= pad[dv : dv + H, du : du + W]
    return body & ~opened


def sense(zbuf_m: np.ndarray, body: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator) -> np.ndarray:
    """A noise-free scene -> Kinect v1 depth (``kinect_sensor``, ``depth_sensor.apply_sensor``), holes in thin parts.

    Args:
        zbuf_m: ``(H, W)`` float depth in metres, inf = nothing.
        body: ``(H, W)`` bool, the performer's pixels (thin parts of it may read 0).
        intrinsics: the image's camera.
        rng: the random draws.

    Returns:
        ``(H, W)`` uint16 millimetres, 0 = no reading.
    """
    depth = apply_sensor(zbuf_m, kinect_sensor(intrinsics), rng)
    size = int(round(_THIN_PX * intrinsics.width / 320))
    thin = thin_parts(body, size if size >= 3 else 0)
    depth[thin & (rng.random(thin.shape) < _THIN_DROP)] = 0
    return depth


def to_camera(camera: CameraPose, points_world: np.ndarray) -> np.ndarray:
    """World metres ``(..., 3)`` (floor at y = 0, y up, z the camera's horizontal heading, the camera above the
    origin) -> the camera's frame (``depth_sensor.camera_rotation``, as ``scenes.StudioScene.to_camera``)."""
    p = np.asarray(points_world, np.float64) - [0.0, camera.height_m, 0.0]
    return p @ camera_rotation(camera.tilt_deg, camera.roll_deg).T


def floor_plane(camera: CameraPose) -> np.ndarray:
    """The floor in the camera frame: ``(nx, ny, nz, d)``, ``n . p + d`` a point's height above the floor."""
    return depth_sensor.floor_plane(camera.height_m, camera.tilt_deg, camera.roll_deg)


def room_depth(camera: CameraPose, intrinsics: Intrinsics, wall_m: float) -> np.ndarray:
    """The noise-free floor and a back wall at world ``z = wall_m``: ``(H, W)`` float32 metres (inf = nothing)."""
    H, W = intrinsics.height, intrinsics.width
    vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
    d_cam = np.stack([(uu - intrinsics.cx) / intrinsics.fx, (intrinsics.cy - vv) / intrinsics.fy, np.ones_like(uu)],
                     -1)
    d = d_cam @ camera_rotation(camera.tilt_deg, camera.roll_deg)  # world rays whose camera z is 1
    z = np.full((H, W), np.inf)
    for axis, value in ((1, -camera.height_m), (2, wall_m)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = value / d[..., axis]
        z = np.where((t > 0) & (t < z), t, z)
    return z.astype(np.float32)
