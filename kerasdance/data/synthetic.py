"""Synthetic depth dancers: procedural skeletons rendered to depth maps in the MSR-Action3D formats.

For tests, demos and pre-training, **not** for judging the method: nothing tuned on this set says
anything about real recordings. It is made hard on purpose (subject variation, tempo, handedness,
viewpoint, sensor noise, holes, jitter, confusable moves) so that a plain model lands below 100%.

* A kinematic skeleton in the canonical 20-joint layout (``kerasdance.skeleton``): limbs are chains
  of fixed-length bones whose directions are animated, so bone lengths are constant per subject.
* Subjects differ in size (+-10%), bone proportions, tempo (+-25%), amplitude, style noise, position,
  distance (2.0-3.5 m) and facing (+-20 deg); two of ten are left-handed. Episodes vary less.
* ``msr20``: the 20 MSR-Action3D actions, 10 subjects x 3 episodes minus 33 (567 sequences), 13-100
  frames at 15 fps. ``dance11``: 11 ballet / contemporary moves, 9 subjects, 99 sequences.
  Real confusions are kept: draw x / tick / circle trace different paths with the same arm in the same
  plane; forward vs side kick; high arm wave vs two hand wave; hammer vs forward punch.
* Renderer: capsules along the bones and a sphere head, z-buffered at the camera's intrinsics, depth in
  mm (uint16), background 0 (as MSR-Action3D) or a floor and back wall, noise growing with z^2,
  dropouts at silhouette edges. Stored joints get Kinect-like jitter, a few invalid (NaN) rows and rare
  all-zero depth frames.
* Continuous performances (``generate_performance``, ``write_performances``): one take by one performer
  (the clips' per-subject body, distance, tempo, handedness) chains a seeded random order of the set's
  moves with transitions (0.3-0.8 s, the pose blended from the end of one move to the start of the next)
  and sometimes a pause (0.5-2 s standing with slight sway), drifting sideways by a few tens of cm. Motion
  is defined in seconds, so any frame rate samples the same take. Per-frame labels: the move's class
  during a move, -1 in transitions and pauses. Written in the generic layout (``dataset.py``).

Deterministic: every sequence draws from ``np.random.SeedSequence([seed, set, label, subject, episode])``,
every performance from ``np.random.SeedSequence([seed, set, 5000 + subject, take, stream])``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data.tracker_noise import TrackerNoise, apply_tracker_noise
from kerasdance.data.types import Sequence
from kerasdance.skeleton import BONES, NUM_JOINTS
from kerasdance.skeleton import Joint as J

log = logging.getLogger("kerasdance.data")

FPS = 15.0
MSR20 = ("high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
         "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend", "forward kick", "side kick",
         "jogging", "tennis swing", "tennis serve", "golf swing", "pick up & throw")
DANCE11 = ("plie", "releve", "arabesque", "attitude", "grand battement", "pirouette", "port de bras", "jete",
           "chasse", "pas de bourree", "contraction")
SETS = {"msr20": {"classes": MSR20, "subjects": 10, "episodes": 3, "drop": 33},
        "dance11": {"classes": DANCE11, "subjects": 9, "episodes": 1, "drop": 0}}

DOWN, UP, FWD = np.array([0.0, -1, 0]), np.array([0.0, 1, 0]), np.array([0.0, 0, -1])  # body frame: -z faces camera


def class_names(set_name: str) -> tuple[str, ...]:
    """Class names of a synthetic set (label order)."""
    return SETS[_check_set(set_name)]["classes"]


def _check_set(set_name: str) -> str:
    if set_name not in SETS:
        raise ValueError(f"Unknown synthetic set. Received: set_name={set_name!r}; valid: {sorted(SETS)}")
    return set_name


def _v(x, y, z):
    return np.stack(np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)), -1)


def _bump(p, a=0.2, b=0.8):
    """0 -> 1 -> 0 over [a, b] (smooth), 0 outside."""
    t = np.clip((p - a) / (b - a), 0, 1)
    return np.sin(np.pi * t) ** 2


def _path(points, p):
    """Piecewise-linear path through 2-D ``points`` at phase ``p`` (arc-length uniform)."""
    pts = np.asarray(points, float)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)]) / seg.sum()
    return np.stack([np.interp(p, s, pts[:, 0]), np.interp(p, s, pts[:, 1])], -1)


# --- motions: phase (frames,) -> limb directions in the body frame ------------------------------------------
def _pose(p, **kw):
    n = p.shape[0]
    rest = {"ua_r": DOWN + [0.05, 0, 0], "fa_r": DOWN + [0.02, 0, -0.1], "ua_l": DOWN + [-0.05, 0, 0],
            "fa_l": DOWN + [-0.02, 0, -0.1], "th_r": DOWN, "sh_r": DOWN, "th_l": DOWN, "sh_l": DOWN}
    out = {k: np.broadcast_to(np.asarray(kw.get(k, v), float), (n, 3)).copy() for k, v in rest.items()}
    for k in ("bend", "twist", "hip_dy", "hip_dx", "lean"):
        out[k] = np.broadcast_to(np.asarray(kw.get(k, 0.0), float), (n,)).copy()
    return out


def _draw(p, pts):
    xy = _path(pts, p) * 0.45
    return _pose(p, ua_r=_v(0.25, 0.25, -1), fa_r=_v(xy[:, 0], xy[:, 1] + 0.2, -0.7))


def _msr20(label: int, p: np.ndarray, reps: float) -> dict:
    c = 2 * np.pi * reps * p
    b = _bump(p, 0.1, 0.9)
    if label == 0:  # high arm wave
        return _pose(p, ua_r=_v(0.45, 1, -0.1), fa_r=_v(0.7 * np.sin(c), 1, -0.1))
    if label == 1:  # horizontal arm wave
        return _pose(p, ua_r=_v(0.3, 0.1, -1), fa_r=_v(0.9 * np.sin(c), 0.1, -0.8))
    if label == 2:  # hammer
        return _pose(p, ua_r=_v(0.2, 0.3, -1), fa_r=_v(0.1, 0.9 * np.cos(c), -0.7))
    if label == 3:  # hand catch
        return _pose(p, ua_r=DOWN + b[:, None] * _v(0.3, 1.4, -1.2), fa_r=DOWN + b[:, None] * _v(0.2, 1.6, -1.0))
    if label == 4:  # forward punch
        e = _bump((p * reps) % 1.0, 0.2, 0.7)
        return _pose(p, ua_r=_v(0.1, 0.0, -1), fa_r=(1 - e)[:, None] * _v(0, 1, -0.2) + e[:, None] * _v(0, 0, -1),
                     ua_l=_v(-0.1, -0.3, -1), fa_l=_v(0, 1, -0.3))
    if label == 5:  # high throw
        a = np.interp(p, [0, 0.45, 0.7, 1], [0.0, 2.6, -0.2, -0.6])  # arm rotates back-up then over
        return _pose(p, ua_r=_v(0.15, np.sin(a) + 0.0 * a, -np.cos(a)) * np.where(a > 0, 1, 1)[:, None] +
                     _v(0, -0.3, 0), fa_r=_v(0.1, np.sin(a + 0.3), -np.cos(a + 0.3)))
    if label == 6:  # draw x
        return _draw(p, [(-1, 1), (1, -1), (1, 1), (-1, -1)])
    if label == 7:  # draw tick
        return _draw(p, [(-0.8, 0.1), (-0.2, -0.9), (1, 1)])
    if label == 8:  # draw circle
        t = np.linspace(0, 2 * np.pi, 24)
        return _draw(p, np.c_[np.sin(t), np.cos(t)])
    if label == 9:  # hand clap
        o = 0.5 + 0.5 * np.cos(c)
        return _pose(p, ua_r=_v(0.3, 0.1, -1), ua_l=_v(-0.3, 0.1, -1), fa_r=_v(-0.4 + 0.8 * o, 0.1, -1),
                     fa_l=_v(0.4 - 0.8 * o, 0.1, -1))
    if label == 10:  # two hand wave
        return _pose(p, ua_r=_v(0.45, 1, -0.1), fa_r=_v(0.7 * np.sin(c), 1, -0.1), ua_l=_v(-0.45, 1, -0.1),
                     fa_l=_v(-0.7 * np.sin(c), 1, -0.1))
    if label == 11:  # side-boxing
        e = 0.5 + 0.5 * np.sin(c)
        return _pose(p, ua_r=_v(1, 0.1, -0.3), fa_r=(1 - e)[:, None] * _v(0, 1, -0.5) + e[:, None] * _v(1, 0.1, 0),
                     ua_l=_v(-0.3, -0.2, -1), fa_l=_v(0, 1, -0.4), twist=-0.3 * e)
    if label == 12:  # bend
        return _pose(p, bend=1.2 * b, hip_dy=-0.05 * b)
    if label == 13:  # forward kick
        return _pose(p, th_r=DOWN + b[:, None] * _v(0, 0.9, -1.4), sh_r=DOWN + b[:, None] * _v(0, 1.2, -1.6))
    if label == 14:  # side kick
        return _pose(p, th_r=DOWN + b[:, None] * _v(1.3, 0.8, -0.2), sh_r=DOWN + b[:, None] * _v(1.5, 1.0, -0.2),
                     lean=-0.3 * b)
    if label == 15:  # jogging
        s = np.sin(c)
        return _pose(p, th_r=_v(0, -1, -0.5 * s), sh_r=_v(0, -1, 0.4 + 0.3 * s), th_l=_v(0, -1, 0.5 * s),
                     sh_l=_v(0, -1, 0.4 - 0.3 * s), ua_r=_v(0.1, -1, 0.5 * s), fa_r=_v(0, 0.2, -1),
                     ua_l=_v(-0.1, -1, -0.5 * s), fa_l=_v(0, 0.2, -1), hip_dy=0.04 * np.abs(np.cos(c)))
    if label == 16:  # tennis swing
        a = np.interp(p, [0, 0.35, 0.75, 1], [0.0, -1.4, 1.3, 0.3])
        return _pose(p, ua_r=_v(np.cos(a), -0.3, np.sin(a)), fa_r=_v(np.cos(a - 0.2), -0.1, np.sin(a - 0.2)),
                     twist=0.5 * a)
    if label == 17:  # tennis serve
        a = np.interp(p, [0, 0.3, 0.55, 0.8, 1], [-0.2, 2.8, 3.1, 0.4, -0.3])
        toss = _bump(p, 0.0, 0.5)
        return _pose(p, ua_r=_v(0.2, -np.cos(a), np.sin(a)), fa_r=_v(0.1, -np.cos(a + 0.4), np.sin(a + 0.4)),
                     ua_l=DOWN + toss[:, None] * _v(-0.2, 2, -0.5), fa_l=DOWN + toss[:, None] * _v(-0.1, 2, -0.4))
    if label == 18:  # golf swing
        a = np.interp(p, [0, 0.4, 0.7, 1], [0.0, -1.6, 1.4, 1.8])
        arm = _v(0.6 * np.sin(a), -np.cos(a) * 0.9, -0.5)
        return _pose(p, ua_r=arm + [0.1, 0, 0], fa_r=arm, ua_l=arm - [0.1, 0, 0], fa_l=arm, bend=0.35,
                     twist=0.4 * a)
    # 19 pick up & throw: bend and reach down, then throw
    bend = 1.1 * _bump(p, 0.0, 0.5)
    a = np.interp(p, [0, 0.5, 0.75, 1], [0.0, 0.0, 2.6, -0.4])
    return _pose(p, bend=bend, hip_dy=-0.1 * bend, ua_r=_v(0.15, -np.cos(a), np.sin(a) * 0.8 - 0.2),
                 fa_r=_v(0.1, -np.cos(a + 0.3), np.sin(a + 0.3) * 0.8 - 0.3))


def _dance11(label: int, p: np.ndarray, reps: float) -> dict:
    c = 2 * np.pi * reps * p
    b = _bump(p, 0.1, 0.9)
    rounded_r, rounded_l = _v(0.4, -0.4, -0.6), _v(-0.4, -0.4, -0.6)
    if label == 0:  # plie: knees open and bend
        d = 0.5 - 0.5 * np.cos(c)
        return _pose(p, th_r=_v(0.6 * d, -1, -0.3 * d), th_l=_v(-0.6 * d, -1, -0.3 * d), hip_dy=-0.18 * d,
                     ua_r=_v(0.8, -0.5, -0.3), ua_l=_v(-0.8, -0.5, -0.3), fa_r=_v(0.5, -0.3, -0.8),
                     fa_l=_v(-0.5, -0.3, -0.8))
    if label == 1:  # releve: rise on the toes, arms to fifth
        d = 0.5 - 0.5 * np.cos(c)
        return _pose(p, hip_dy=0.08 * d, ua_r=DOWN + d[:, None] * _v(0.3, 2, -0.3),
                     ua_l=DOWN + d[:, None] * _v(-0.3, 2, -0.3), fa_r=DOWN + d[:, None] * _v(-0.4, 2.1, -0.2),
                     fa_l=DOWN + d[:, None] * _v(0.4, 2.1, -0.2))
    if label == 2:  # arabesque: leg straight back, arms forward and side
        return _pose(p, th_l=DOWN + b[:, None] * _v(0, 1.2, 1.3), sh_l=DOWN + b[:, None] * _v(0, 1.2, 1.3),
                     ua_r=_v(0.2, 0.3, -1), fa_r=_v(0.1, 0.35, -1), ua_l=_v(-1, 0.1, 0.2), fa_l=_v(-1, 0.1, 0.2),
                     bend=0.35 * b)
    if label == 3:  # attitude: leg back, knee bent
        return _pose(p, th_l=DOWN + b[:, None] * _v(-0.4, 1.1, 1.2), sh_l=DOWN + b[:, None] * _v(0.6, 1.6, 0.4),
                     ua_l=_v(-0.3, 1, -0.1), fa_l=_v(0.3, 1, 0), ua_r=_v(1, 0.1, 0), fa_r=_v(1, 0.1, -0.2))
    if label == 4:  # grand battement: high straight kick, repeated
        e = _bump((p * reps) % 1.0, 0.15, 0.85)
        return _pose(p, th_r=DOWN + e[:, None] * _v(0, 1.9, -1.2), sh_r=DOWN + e[:, None] * _v(0, 1.9, -1.2),
                     ua_r=_v(1, 0.1, 0), ua_l=_v(-1, 0.1, 0), fa_r=_v(1, 0.1, 0), fa_l=_v(-1, 0.1, 0))
    if label == 5:  # pirouette: a full turn on one leg, arms rounded
        return _pose(p, twist=2 * np.pi * np.clip((p - 0.2) / 0.6, 0, 1), th_l=_v(-0.6, -0.3, -0.3),
                     sh_l=_v(0.5, -1, 0), ua_r=rounded_r, ua_l=rounded_l, fa_r=_v(-0.5, -0.1, -0.7),
                     fa_l=_v(0.5, -0.1, -0.7), hip_dy=0.05 * b)
    if label == 6:  # port de bras: arms travel down-front-up-side
        a = 2 * np.pi * p * reps * 0.5
        return _pose(p, ua_r=_v(0.5 + 0.3 * np.sin(a), -np.cos(a), -0.5), fa_r=_v(0.3 * np.sin(a), -np.cos(a), -0.4),
                     ua_l=_v(-0.5 - 0.3 * np.sin(a), -np.cos(a), -0.5),
                     fa_l=_v(-0.3 * np.sin(a), -np.cos(a), -0.4), lean=0.15 * np.sin(a))
    if label == 7:  # jete: a leap with legs split
        e = _bump(p, 0.3, 0.7)
        return _pose(p, hip_dy=0.35 * e, hip_dx=0.6 * (p - 0.5), th_r=DOWN + e[:, None] * _v(0, 0.9, -1.5),
                     sh_r=DOWN + e[:, None] * _v(0, 0.9, -1.5), th_l=DOWN + e[:, None] * _v(0, 0.9, 1.5),
                     sh_l=DOWN + e[:, None] * _v(0, 0.9, 1.5), ua_r=_v(0.6, 1, -0.4), ua_l=_v(-0.6, 1, -0.4))
    if label == 8:  # chasse: travelling sideways with a gallop
        s = np.sin(c)
        return _pose(p, hip_dx=0.9 * (p - 0.5), hip_dy=0.06 * np.abs(s), th_r=_v(0.4 * s, -1, 0),
                     th_l=_v(-0.2 * s, -1, 0), ua_r=_v(1, 0.2, 0), ua_l=_v(-1, 0.2, 0), fa_r=_v(1, 0.3, 0),
                     fa_l=_v(-1, 0.3, 0))
    if label == 9:  # pas de bourree: small quick steps, knees lifting alternately
        s = np.sin(2 * c)
        return _pose(p, hip_dx=0.25 * np.sin(c), th_r=_v(0, -1, -0.5 * np.clip(s, 0, 1)),
                     sh_r=_v(0, -1, 0.5 * np.clip(s, 0, 1)), th_l=_v(0, -1, -0.5 * np.clip(-s, 0, 1)),
                     sh_l=_v(0, -1, 0.5 * np.clip(-s, 0, 1)), ua_r=rounded_r, ua_l=rounded_l)
    # 10 contraction: the torso curls, arms round forward, knees soften
    return _pose(p, bend=0.6 * b, hip_dy=-0.08 * b, ua_r=DOWN + b[:, None] * _v(0.2, 1, -1.2),
                 ua_l=DOWN + b[:, None] * _v(-0.2, 1, -1.2), fa_r=DOWN + b[:, None] * _v(-0.4, 0.8, -1.0),
                 fa_l=DOWN + b[:, None] * _v(0.4, 0.8, -1.0), th_r=_v(0.1, -1, -0.25 * b), th_l=_v(-0.1, -1, -0.25 * b))


MOTIONS: dict[str, Callable] = {"msr20": _msr20, "dance11": _dance11}


# --- skeleton ---------------------------------------------------------------------------------------------
def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0], R[..., 0, 2], R[..., 1, 1], R[..., 2, 0], R[..., 2, 2] = c, s, 1, -s, c
    return R


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0], R[..., 1, 1], R[..., 1, 2], R[..., 2, 1], R[..., 2, 2] = 1, c, -s, s, c
    return R


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1
    return R


def _forward_kinematics(pose: dict, bones: dict) -> np.ndarray:
    """Body-frame joints ``(frames, 20, 3)`` from limb directions; hip centre at the origin."""
    n = pose["bend"].shape[0]
    j = np.zeros((n, NUM_JOINTS, 3))
    upper = _rot_z(pose["lean"]) @ _rot_x(pose["bend"])  # bend forward (towards -z) about the hips
    trunk = lambda v: np.einsum("nij,j->ni", upper, v)  # noqa: E731
    j[:, J.SPINE] = trunk([0, bones["spine"], 0])
    j[:, J.SHOULDER_CENTER] = trunk([0, bones["spine"] + bones["chest"], 0])
    j[:, J.HEAD] = trunk([0, bones["spine"] + bones["chest"] + bones["neck"], 0])
    for side, sx, sh, hip in (("r", 1, J.SHOULDER_RIGHT, J.HIP_RIGHT), ("l", -1, J.SHOULDER_LEFT, J.HIP_LEFT)):
        j[:, sh] = trunk([sx * bones["shoulder"], bones["spine"] + bones["chest"] - 0.02, 0])
        ua = np.einsum("nij,nj->ni", upper, _unit(pose[f"ua_{side}"]))
        fa = np.einsum("nij,nj->ni", upper, _unit(pose[f"fa_{side}"]))
        elbow, wrist, hand = ((J.ELBOW_RIGHT, J.WRIST_RIGHT, J.HAND_RIGHT) if side == "r" else
                              (J.ELBOW_LEFT, J.WRIST_LEFT, J.HAND_LEFT))
        j[:, elbow] = j[:, sh] + bones["upper_arm"] * ua
        j[:, wrist] = j[:, elbow] + bones["forearm"] * fa
        j[:, hand] = j[:, wrist] + bones["hand"] * fa
        j[:, hip] = [sx * bones["hip"], -0.03, 0]
        knee, ankle, foot = ((J.KNEE_RIGHT, J.ANKLE_RIGHT, J.FOOT_RIGHT) if side == "r" else
                             (J.KNEE_LEFT, J.ANKLE_LEFT, J.FOOT_LEFT))
        j[:, knee] = j[:, hip] + bones["thigh"] * _unit(pose[f"th_{side}"])
        j[:, ankle] = j[:, knee] + bones["shin"] * _unit(pose[f"sh_{side}"])
        j[:, foot] = j[:, ankle] + bones["foot"] * _unit(_unit(pose[f"sh_{side}"]) * 0.3 + FWD)
    twist = _rot_y(pose["twist"])
    j = np.einsum("nij,nkj->nki", twist, j)
    j[..., 0] += pose["hip_dx"][:, None]
    j[..., 1] += pose["hip_dy"][:, None]
    return j


_BONES = {"spine": 0.22, "chest": 0.27, "neck": 0.2, "shoulder": 0.18, "upper_arm": 0.29, "forearm": 0.26,
          "hand": 0.08, "hip": 0.1, "thigh": 0.44, "shin": 0.42, "foot": 0.13}
_RADII = {"torso": 0.14, "upper_arm": 0.05, "forearm": 0.04, "hand": 0.035, "thigh": 0.075, "shin": 0.055,
          "foot": 0.04, "shoulder": 0.06, "hip": 0.08, "head": 0.11}


def _subject(set_name: str, subject: int, seed: int) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(SETS).index(set_name), 1000 + subject]))
    size = rng.uniform(0.9, 1.1)
    return {
        "bones": {k: v * size * rng.uniform(0.93, 1.07) for k, v in _BONES.items()},
        "girth": rng.uniform(0.85, 1.2),
        "tempo": rng.uniform(0.75, 1.25),
        "amplitude": rng.uniform(0.8, 1.15),
        "style": rng.uniform(0.05, 0.2),
        "x_m": rng.uniform(-0.4, 0.4),
        "z_m": rng.uniform(2.0, 3.5),
        "yaw": rng.uniform(-0.35, 0.35),
        "left_handed": subject in (4, 7) if set_name == "msr20" else False,
        "cam_height": rng.uniform(0.7, 1.0),
    }


def _smooth_noise(rng, n, dims, scale, knots=4):
    """Low-frequency noise ``(n, dims)``: random knots, linearly interpolated."""
    k = rng.normal(0, scale, (knots, dims))
    x = np.linspace(0, knots - 1, n)
    return np.stack([np.interp(x, np.arange(knots), k[:, d]) for d in range(dims)], -1)


def _mirror_pose(pose: dict) -> dict:
    out = dict(pose)
    for a, b in (("ua_r", "ua_l"), ("fa_r", "fa_l"), ("th_r", "th_l"), ("sh_r", "sh_l")):
        out[a], out[b] = pose[b] * [-1, 1, 1], pose[a] * [-1, 1, 1]
    out["twist"], out["lean"], out["hip_dx"] = -pose["twist"], -pose["lean"], -pose["hip_dx"]
    return out


def _dropped(set_name: str, seed: int) -> set:
    spec = SETS[set_name]
    if not spec["drop"]:
        return set()
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(SETS).index(set_name), 77]))
    combos = [(c, s, e) for c in range(len(spec["classes"])) for s in range(1, spec["subjects"] + 1)
              for e in range(2, spec["episodes"] + 1)]  # episode 1 always exists
    return {combos[i] for i in rng.choice(len(combos), spec["drop"], replace=False)}


# --- renderer ---------------------------------------------------------------------------------------------
def _capsules(joints: np.ndarray, girth: float) -> list[tuple[int, int, float]]:
    return [(a, b, r) for a, b, kind, r in _capsule_parts(girth) if kind != "head"]


def _capsule_parts(girth: float) -> list[tuple[int, int, str, float]]:
    """The plain body: ``(joint a, joint b, kind, radius m)`` per capsule, the head sphere last."""
    caps = []
    for a, b in BONES:
        name = _bone_kind(a, b)
        caps.append((a, b, name, _RADII[name] * (girth if name in ("torso", "thigh", "hip") else 1.0)))
    caps.append((J.HIP_CENTER, J.SHOULDER_CENTER, "torso", _RADII["torso"] * girth))
    caps.append((J.HIP_LEFT, J.SHOULDER_LEFT, "side", 0.07 * girth))
    caps.append((J.HIP_RIGHT, J.SHOULDER_RIGHT, "side", 0.07 * girth))
    caps.append((J.HEAD, J.HEAD, "head", _RADII["head"]))
    return caps


def _bone_kind(a: int, b: int) -> str:
    names = {J.SPINE: "torso", J.SHOULDER_CENTER: "torso", J.HEAD: "torso", J.SHOULDER_LEFT: "shoulder",
             J.SHOULDER_RIGHT: "shoulder", J.ELBOW_LEFT: "upper_arm", J.ELBOW_RIGHT: "upper_arm",
             J.WRIST_LEFT: "forearm", J.WRIST_RIGHT: "forearm", J.HAND_LEFT: "hand", J.HAND_RIGHT: "hand",
             J.HIP_LEFT: "hip", J.HIP_RIGHT: "hip", J.KNEE_LEFT: "thigh", J.KNEE_RIGHT: "thigh",
             J.ANKLE_LEFT: "shin", J.ANKLE_RIGHT: "shin", J.FOOT_LEFT: "foot", J.FOOT_RIGHT: "foot"}
    return names[b]


def render_frame(joints_m: np.ndarray, intrinsics: Intrinsics, girth: float = 1.0,
                 capsules: list[tuple[int, int, float]] | None = None) -> np.ndarray:
    """Noise-free z-buffer ``(H, W)`` float32 in metres (inf = nothing) of the capsule body of one skeleton.

    ``capsules``: ``(joint a, joint b, radius m)`` to draw instead of the plain body of ``girth`` (head included;
    ``realism.BodyShape.capsules``)."""
    H, W = intrinsics.height, intrinsics.width
    zbuf = np.full((H, W), np.inf, np.float32)
    uvz = intrinsics.project(joints_m)
    if capsules is None:
        capsules = _capsules(joints_m, girth) + [(J.HEAD, J.HEAD, _RADII["head"])]
    for a, b, r in capsules:
        pa, pb = uvz[a], uvz[b]
        if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pb))):
            continue
        rpx = intrinsics.fx * r / min(pa[2], pb[2])
        u0 = int(max(np.floor(min(pa[0], pb[0]) - rpx), 0))
        u1 = int(min(np.ceil(max(pa[0], pb[0]) + rpx), W - 1))
        v0 = int(max(np.floor(min(pa[1], pb[1]) - rpx), 0))
        v1 = int(min(np.ceil(max(pa[1], pb[1]) + rpx), H - 1))
        if u1 < u0 or v1 < v0:
            continue
        vv, uu = np.mgrid[v0 : v1 + 1, u0 : u1 + 1]
        d = pb[:2] - pa[:2]
        L2 = float(d @ d)
        t = np.clip(((uu - pa[0]) * d[0] + (vv - pa[1]) * d[1]) / L2, 0, 1) if L2 > 1e-9 else np.zeros(uu.shape)
        cu, cv = pa[0] + t * d[0], pa[1] + t * d[1]
        z = pa[2] + t * (pb[2] - pa[2])
        dist = np.hypot(uu - cu, vv - cv)
        rad = intrinsics.fx * r / z
        inside = dist < rad
        depth = z - r * np.sqrt(np.clip(1 - (dist / rad) ** 2, 0, 1))
        sub = zbuf[v0 : v1 + 1, u0 : u1 + 1]
        np.minimum(sub, np.where(inside, depth, np.inf), out=sub)
    return zbuf


def _sensor(zbuf: np.ndarray, rng, intrinsics: Intrinsics, background: bool, cam_height: float) -> np.ndarray:
    """Background, Kinect-like noise (sigma ~ 1.5 mm z^2), edge dropouts, mm quantisation -> uint16."""
    z = zbuf.copy()
    if background:
        H, W = z.shape
        vv = np.arange(H)[:, None]
        ry = (intrinsics.cy - vv) / intrinsics.fy  # ray's y per unit z
        floor = np.where(ry < 0, cam_height / np.maximum(-ry, 1e-6), np.inf) * np.ones((1, W))
        z = np.minimum(z, np.minimum(floor, 4.5))
    fg = np.isfinite(z)
    noisy = z + rng.normal(0, 1, z.shape) * 0.0015 * np.where(fg, z, 0) ** 2
    edge = np.zeros_like(fg)
    edge[1:-1, 1:-1] = (fg[1:-1, 1:-1] & ~(fg[:-2, 1:-1] & fg[2:, 1:-1] & fg[1:-1, :-2] & fg[1:-1, 2:]))
    drop = edge & (rng.random(z.shape) < 0.35)
    out = np.where(fg & ~drop, np.round(noisy * 1000.0), 0)
    return np.clip(out, 0, 65535).astype(np.uint16)


def generate_sequence(set_name: str, label: int, subject: int, episode: int, seed: int = 0,
                      intrinsics: Intrinsics = KINECT_V1, background: bool = False,
                      skeleton_noise: str = "clean", realism: str | None = None) -> Sequence:
    """One synthetic recording.

    ``realism`` "varied": the camera pitched, rolled and 0.8-1.8 m high (joints and depth in its frame), body shapes
    and clothing volume per subject, and a Kinect v1 sensor model with flying pixels and holes in thin parts
    (``kerasdance.data.realism``); None: the plain clips (level camera, one girth factor, simple noise).

    ``skeleton_noise`` "kinect" or "hard": the stored joints are what a real tracker outputs
    (``tracker_noise.apply_tracker_noise`` of the true joints, drawn from a stream of their own); the depth is the
    same as with "clean".

    Returns:
        A ``Sequence`` with ``depth_mm`` ``(F, H, W)`` uint16, ``joints_m`` ``(F, 20, 3)`` float32 camera metres
        (with jitter and the odd NaN row, or the tracker noise), label, subject, episode and name ``aXX_sYY_eZZ``.
    """
    spec = SETS[_check_set(set_name)]
    if realism is not None:
        from kerasdance.data import realism as realism_mod

        realism_mod.check_realism(realism)
    if not 0 <= label < len(spec["classes"]):
        raise ValueError(f"label out of range for {set_name}. Received: label={label!r}")
    subj = _subject(set_name, subject, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(SETS).index(set_name), label, subject, episode]))
    reps = rng.choice([1.5, 2.0, 2.5, 3.0])
    base_frames = 42 if set_name == "msr20" else 48
    n_move = int(np.clip(base_frames * reps / 2 / (subj["tempo"] * rng.uniform(0.85, 1.15)), 10, 90))
    lead, tail = rng.integers(1, 6), rng.integers(1, 6)
    n = int(np.clip(n_move + lead + tail, 13, 100))
    p = np.clip((np.arange(n) - lead) / max(n_move - 1, 1), 0, 1)
    pose = MOTIONS[set_name](label, p, reps)
    amp = subj["amplitude"] * rng.uniform(0.9, 1.1)
    for k in ("ua_r", "fa_r", "ua_l", "fa_l", "th_r", "sh_r", "th_l", "sh_l"):
        pose[k] = DOWN + amp * (pose[k] - DOWN) + _smooth_noise(rng, n, 3, subj["style"])
    for k in ("bend", "twist", "lean"):
        pose[k] = amp * pose[k] + _smooth_noise(rng, n, 1, 0.04)[:, 0]
    if subj["left_handed"]:
        pose = _mirror_pose(pose)
    body = _forward_kinematics(pose, subj["bones"])
    yaw = subj["yaw"] + rng.uniform(-0.1, 0.1)
    joints = np.einsum("ij,nkj->nki", _rot_y(yaw), body)  # body -z (front) faces the camera; left = smaller x
    floor_y = -subj["cam_height"]
    leg = subj["bones"]["thigh"] + subj["bones"]["shin"] + 0.05
    x, z = subj["x_m"] + rng.uniform(-0.1, 0.1), subj["z_m"] + rng.uniform(-0.15, 0.15)
    if realism is None:
        joints += [x, floor_y + leg, z]
        depth = np.stack([_sensor(render_frame(f, intrinsics, subj["girth"]), rng, intrinsics, background,
                                  subj["cam_height"]) for f in joints])
    else:
        joints, depth = _varied_clip(joints, x, z, leg, subj, intrinsics, background,
                                     [seed, list(SETS).index(set_name), label, subject, episode])
    # Kinect-like tracker output: jitter (worse at the extremities), the odd invalid row, rare lost frames.
    jitter = rng.normal(0, 0.012, joints.shape)
    ends = [J.HAND_LEFT, J.HAND_RIGHT, J.FOOT_LEFT, J.FOOT_RIGHT, J.WRIST_LEFT, J.WRIST_RIGHT]
    jitter[:, ends] *= 2.0
    stored = (joints + jitter).astype(np.float32)
    if rng.random() < 0.1:
        rows = rng.integers(0, n, 2)
        stored[rows[:, None], rng.integers(0, NUM_JOINTS, (2, 3))] = np.nan
    if rng.random() < 0.03:
        depth[rng.integers(0, n)] = 0
    if skeleton_noise != "clean":
        noise_rng = np.random.default_rng(np.random.SeedSequence([seed, list(SETS).index(set_name), label, subject,
                                                                  episode, 1]))
        stored = apply_tracker_noise(joints, skeleton_noise, noise_rng, fps=FPS)
    return Sequence(name=f"a{label + 1:02d}_s{subject:02d}_e{episode:02d}", depth_mm=depth, joints_m=stored,
                    label=int(label), subject=int(subject), episode=int(episode), intrinsics=intrinsics)


def _varied_clip(body: np.ndarray, x: float, z: float, leg: float, subj: dict, intrinsics: Intrinsics,
                 background: bool, key: list) -> tuple[np.ndarray, np.ndarray]:
    """``generate_sequence(realism="varied")``'s camera-frame joints and depth (``realism`` module) of a clip."""
    from kerasdance.data import realism as R

    look = R.subject_look(key[1], key[3], key[0])
    clip_rng = np.random.default_rng(np.random.SeedSequence(key + [2]))
    top = leg + subj["bones"]["spine"] + subj["bones"]["chest"] + subj["bones"]["neck"] + _RADII["head"]
    camera, z = R.frame_camera(R.clip_camera(look, clip_rng), z, top, intrinsics)
    return _render_varied(body + [x, leg, z], camera, look.body.jittered(clip_rng), subj["girth"], intrinsics,
                          background, np.random.default_rng(np.random.SeedSequence(key + [3])),
                          wall_m=max(4.5, z + 1.0))


def _render_varied(joints_world: np.ndarray, camera, body, girth: float, intrinsics: Intrinsics, background: bool,
                   rng: np.random.Generator, wall_m: float = 4.5) -> tuple[np.ndarray, np.ndarray]:
    """A clip seen by a pitched and rolled camera (``realism.CameraPose``) with a ``realism.BodyShape``.

    ``joints_world`` ``(F, 20, 3)``: metres, floor at y = 0, y up, z the camera's horizontal heading, the camera
    above the origin. ``background``: the floor and a back wall at world ``z = wall_m`` (else 0 around the body).
    Returns ``(joints (F, 20, 3) float64 metres in the camera frame, depth (F, H, W) uint16 mm)``.
    """
    from kerasdance.data import realism as R

    joints = R.to_camera(camera, joints_world)
    room = R.room_depth(camera, intrinsics, wall_m) if background else None
    caps = body.capsules(_capsule_parts(girth))
    frames = []
    for f in joints:
        zb = render_frame(f, intrinsics, girth, capsules=caps)
        person = np.isfinite(zb)
        z = zb if room is None else np.where(person & (zb < room), zb, room)
        frames.append(R.sense(z, person, intrinsics, rng))
    return joints, np.stack(frames)


def iter_sequences(set_name: str, seed: int = 0, subjects=None, limit_per_class: int | None = None,
                   **kw) -> Iterator[Sequence]:
    """Every sequence of a set in a fixed order (class, subject, episode).

    ``limit_per_class`` keeps the first ones per class in an order that alternates odd and even subjects,
    so that both sides of the cross-subject split stay populated.
    """
    spec = SETS[_check_set(set_name)]
    dropped = _dropped(set_name, seed)
    subs = list(subjects) if subjects is not None else list(range(1, spec["subjects"] + 1))
    for label in range(len(spec["classes"])):
        combos = [(s, e) for e in range(1, spec["episodes"] + 1) for s in subs if (label, s, e) not in dropped]
        if limit_per_class is not None:
            odd = [c for c in combos if c[0] % 2]
            even = [c for c in combos if not c[0] % 2]
            mixed = [c for pair in zip(odd, even) for c in pair] + odd[len(even):] + even[len(odd):]
            combos = sorted(mixed[:limit_per_class])
        for s, e in sorted(combos):
            yield generate_sequence(set_name, label, s, e, seed=seed, **kw)


def count_sequences(set_name: str, seed: int = 0, subjects=None, limit_per_class: int | None = None) -> int:
    spec = SETS[_check_set(set_name)]
    dropped = _dropped(set_name, seed)
    subs = list(subjects) if subjects is not None else list(range(1, spec["subjects"] + 1))
    per = [sum((c, s, e) not in dropped for s in subs for e in range(1, spec["episodes"] + 1))
           for c in range(len(spec["classes"]))]
    return sum(min(k, limit_per_class) if limit_per_class is not None else k for k in per)


def write_set(set_name: str, out_dir: str | Path, seed: int = 0, subjects=None, limit_per_class: int | None = None,
              background: bool = False, progress: Callable[[int, int], None] | None = None,
              skeleton_noise: str = "clean", realism: str | None = None) -> int:
    """Render a set into ``out_dir`` in the MSR-Action3D layout, plus ``classes.txt``. Returns the count.

    ``skeleton_noise``: the stored joints' tracker noise (``generate_sequence``); both skeleton files carry it.
    ``realism``: ``generate_sequence``'s (None or "varied")."""
    TrackerNoise.level(skeleton_noise)  # an unknown level fails before anything is written
    if realism is not None:
        from kerasdance.data.realism import check_realism

        check_realism(realism)
    from kerasdance.data.msr import write_msr_sequence

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = count_sequences(set_name, seed, subjects, limit_per_class)
    n = 0
    extra = {} if realism is None else {"realism": realism}
    for seq in iter_sequences(set_name, seed, subjects, limit_per_class, background=background,
                              skeleton_noise=skeleton_noise, **extra):
        write_msr_sequence(out, seq)
        n += 1
        if progress:
            progress(n - 1, total)
    (out / "classes.txt").write_text("\n".join(class_names(set_name)) + "\n")
    log.info("wrote %d %s sequences to %s", n, set_name, out)
    return n


# --- continuous performances ----------------------------------------------------------------------------------
_LIMBS = ("ua_r", "fa_r", "ua_l", "fa_l", "th_r", "sh_r", "th_l", "sh_l")
_ANGLES = ("bend", "twist", "lean")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One part of a continuous performance (``performance_segments``).

    Attributes:
        kind: ``"move"``, ``"transition"`` (the pose blended from the end of the segment before to the
            start of the one after) or ``"pause"`` (standing still with slight sway).
        label: the move's class index; -1 for transitions and pauses.
        start_s: start in seconds from the take's first frame.
        end_s: end in seconds (the next segment's start).
    """

    kind: str
    label: int
    start_s: float
    end_s: float


def _check_performance_args(set_name: str, subject: int, take: int, fps: float, moves: int) -> None:
    _check_set(set_name)
    for key, value in (("subject", subject), ("take", take), ("moves", moves)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1. Received: {key}={value!r}")
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.floating) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number. Received: fps={fps!r}")


def _performance_rng(set_name: str, subject: int, take: int, seed: int, stream: int):
    return np.random.default_rng(
        np.random.SeedSequence([seed, list(SETS).index(set_name), 5000 + subject, take, stream]))


def _plan(set_name: str, subject: int, take: int, seed: int, moves: int) -> list[tuple[Segment, dict]]:
    """The take's segments with each one's parameters; independent of the frame rate."""
    subj = _subject(set_name, subject, seed)
    rng = _performance_rng(set_name, subject, take, seed, 0)
    n_cls = len(SETS[set_name]["classes"])
    order: list[int] = []
    while len(order) < moves:  # permutations of the set, no move twice in a row
        perm = [int(c) for c in rng.permutation(n_cls)]
        if order and perm[0] == order[-1] and n_cls > 1:
            perm[0], perm[-1] = perm[-1], perm[0]
        order += perm
    base_frames = 42 if set_name == "msr20" else 48
    items: list[tuple[str, int, float, dict]] = []
    x = 0.0  # body-frame hip_dx where the performer stands now (travelling moves carry it along)

    def transition(x_from: float, x_to: float) -> None:
        items.append(("transition", -1, max(rng.uniform(0.3, 0.8), abs(x_to - x_from) / 0.9), {}))

    def pause(lo: float, hi: float) -> None:
        items.append(("pause", -1, rng.uniform(lo, hi), {"x": x, "period": rng.uniform(2.0, 3.5),
                                                          "phase": rng.uniform(0, 2 * np.pi)}))

    pause(0.3, 1.0)  # the take starts standing
    for k, label in enumerate(order[:moves]):
        reps = float(rng.choice([1.5, 2.0, 2.5, 3.0]))
        dur = float(np.clip(base_frames * reps / 2 / (subj["tempo"] * rng.uniform(0.85, 1.15)), 10, 90)) / FPS
        amp = subj["amplitude"] * rng.uniform(0.9, 1.1)
        ends = MOTIONS[set_name](label, np.array([0.0, 1.0]), reps)["hip_dx"]
        flip = bool(ends[0] * x < 0)  # a travelling move starts on the side where the performer is
        ends = -ends if flip else ends
        if k > 0 and rng.random() < 0.3:
            transition(x, x)
            pause(0.5, 2.0)
        transition(x, float(ends[0]))
        items.append(("move", label, dur, {"reps": reps, "amp": amp, "flip": flip}))
        x = float(ends[1])
    transition(x, x)
    pause(0.3, 1.0)  # and ends standing
    plan, t = [], 0.0
    for kind, label, dur, params in items:
        plan.append((Segment(kind, int(label), t, t + dur), params))
        t += dur
    return plan


def performance_segments(set_name: str, subject: int, take: int, seed: int = 0, moves: int = 6) -> list[Segment]:
    """The segments (moves, transitions, pauses) of the take ``generate_performance`` renders, in seconds.

    A segment covers the frames ``round(start_s * fps) .. round(end_s * fps) - 1`` (at very low frame rates
    each keeps at least one frame, a move two).
    """
    _check_performance_args(set_name, subject, take, FPS, moves)
    return [seg for seg, _ in _plan(set_name, subject, take, seed, moves)]


def _frame_bounds(segments: list[Segment], fps: float) -> list[int]:
    bounds = [0]
    for seg in segments:
        bounds.append(max(int(round(seg.end_s * fps)), bounds[-1] + (2 if seg.kind == "move" else 1)))
    return bounds


def _time_noise(rng, t: np.ndarray, duration_s: float, dims: int, scale: float, spacing_s: float) -> np.ndarray:
    """Low-frequency noise ``(len(t), dims)`` defined in seconds: random knots every ``spacing_s``, interpolated."""
    m = int(np.ceil(duration_s / spacing_s)) + 2
    k = rng.normal(0, scale, (m, dims))
    return np.stack([np.interp(t / spacing_s, np.arange(m), k[:, d]) for d in range(dims)], -1)


def _travel(rng, t: np.ndarray, duration_s: float, x0: float) -> np.ndarray:
    """Slow sideways drift in metres: a bounded random walk (+-25 cm, keeping |x0 + drift| <= 0.5 m), 0 at t = 0."""
    spacing = 2.0
    m = int(np.ceil(duration_s / spacing)) + 2
    lo, hi = max(-0.25, -0.5 - x0), min(0.25, 0.5 - x0)
    walk = np.zeros(m)
    for i in range(1, m):
        walk[i] = np.clip(walk[i - 1] + rng.normal(0, 0.1), lo, hi)
    x = np.clip(t / spacing, 0, m - 1 - 1e-9)
    i = np.floor(x).astype(int)
    f = 0.5 - 0.5 * np.cos(np.pi * (x - i))  # smooth from knot to knot
    return walk[i] * (1 - f) + walk[i + 1] * f


@dataclasses.dataclass(frozen=True)
class PerformanceMotion:
    """The motion of one continuous take (``performance_motion``), before it is placed in front of a camera.

    Attributes:
        body_m: ``(frames, 20, 3)`` float64 joints in metres in a frame with y up and the performer facing -z
            (the camera) turned by the take's yaw; the hip centre's rest position at the origin (travelling moves
            and sway move it), noise-free.
        drift_m: ``(frames,)`` the take's slow sideways drift in metres (add it to x).
        x_m: the performer's spot, sideways (metres).
        z_m: the performer's distance from the clips' camera (metres).
        leg_m: hip-centre height above the floor at rest (metres; add it to y to stand on a floor at y = 0).
        cam_height_m: the clips' camera height above the floor (metres).
        girth: the body's girth factor for ``render_frame``.
        frame_labels: ``(frames,)`` int64, the move's class during a move, -1 in transitions and pauses.
        fps: frames per second.
    """

    body_m: np.ndarray
    drift_m: np.ndarray
    x_m: float
    z_m: float
    leg_m: float
    cam_height_m: float
    girth: float
    frame_labels: np.ndarray
    fps: float

    def on_floor(self) -> np.ndarray:
        """``(frames, 20, 3)`` joints in metres standing on a floor at y = 0, drift included, x/z around 0."""
        j = self.body_m.copy()
        j[..., 0] += self.drift_m[:, None]
        j[..., 1] += self.leg_m
        return j


def performance_motion(set_name: str, subject: int, take: int, seed: int = 0, fps: float = FPS,
                       moves: int = 6) -> PerformanceMotion:
    """The noise-free motion of the take ``generate_performance`` renders (same arguments, same draws).

    Used to place the same performers in other scenes (``kerasdance.data.scenes``).

    Raises:
        ValueError: as ``generate_performance``.
    """
    _check_performance_args(set_name, subject, take, fps, moves)
    fps = float(fps)
    subj = _subject(set_name, subject, seed)
    plan = _plan(set_name, subject, take, seed, moves)
    bounds = _frame_bounds([seg for seg, _ in plan], fps)
    n = bounds[-1]
    duration = plan[-1][0].end_s
    t = np.arange(n) / fps
    pose = _pose(np.zeros(n))
    rest = _pose(np.zeros(1))
    labels = np.full(n, -1, np.int64)
    for (seg, prm), s, e in zip(plan, bounds[:-1], bounds[1:]):
        if seg.kind == "move":
            labels[s:e] = seg.label
            m = MOTIONS[set_name](seg.label, np.arange(e - s) / (e - s - 1), prm["reps"])  # phase 0 -> 1 by time
            for k in _LIMBS:
                pose[k][s:e] = DOWN + prm["amp"] * (m[k] - DOWN)
            for k in _ANGLES:
                pose[k][s:e] = prm["amp"] * m[k]
            pose["hip_dy"][s:e] = m["hip_dy"]
            pose["hip_dx"][s:e] = -m["hip_dx"] if prm["flip"] else m["hip_dx"]
        elif seg.kind == "pause":
            sway = np.sin(2 * np.pi * (t[s:e] - seg.start_s) / prm["period"] + prm["phase"])
            for k in _LIMBS:
                pose[k][s:e] = DOWN + subj["amplitude"] * (rest[k][0] - DOWN)
            pose["lean"][s:e] = 0.025 * sway
            pose["hip_dx"][s:e] = prm["x"] + 0.012 * sway
    for (seg, _), s, e in zip(plan, bounds[:-1], bounds[1:]):
        if seg.kind != "transition":
            continue
        a, b = s - 1, e  # the last frame before, the first after (a take starts and ends with a pause)
        w = 0.5 - 0.5 * np.cos(np.pi * (t[s:e] - t[a]) / (t[b] - t[a]))
        for k in _LIMBS:
            u, v = _unit(pose[k][a]), _unit(pose[k][b])
            pose[k][s:e] = (1 - w)[:, None] * u + w[:, None] * v
            if u @ v < -0.5:  # near-opposite directions: swing through the front rather than through the body
                pose[k][s:e] += 0.6 * np.sin(np.pi * w)[:, None] * FWD
        for k in ("bend", "lean", "hip_dy", "hip_dx"):
            pose[k][s:e] = (1 - w) * pose[k][a] + w * pose[k][b]
        twist_from = pose["twist"][b] + (pose["twist"][a] - pose["twist"][b] + np.pi) % (2 * np.pi) - np.pi
        pose["twist"][s:e] = (1 - w) * twist_from + w * pose["twist"][b]  # the short way round after a turn
    style = _performance_rng(set_name, subject, take, seed, 1)
    x0 = subj["x_m"] + style.uniform(-0.1, 0.1)
    z0 = subj["z_m"] + style.uniform(-0.15, 0.15)
    yaw0 = subj["yaw"] + style.uniform(-0.1, 0.1)
    for k in _LIMBS:
        pose[k] = pose[k] + _time_noise(style, t, duration, 3, subj["style"], 1.2)
    for k in _ANGLES:
        pose[k] = pose[k] + _time_noise(style, t, duration, 1, 0.04, 1.2)[:, 0]
    drift = _travel(style, t, duration, x0)
    yaw = yaw0 + _time_noise(style, t, duration, 1, 0.05, 3.0)[:, 0]
    if subj["left_handed"]:
        pose = _mirror_pose(pose)
    body = _forward_kinematics(pose, subj["bones"])
    joints = np.einsum("nij,nkj->nki", _rot_y(yaw), body)
    leg = subj["bones"]["thigh"] + subj["bones"]["shin"] + 0.05
    return PerformanceMotion(body_m=joints, drift_m=drift, x_m=float(x0), z_m=float(z0), leg_m=float(leg),
                             cam_height_m=float(subj["cam_height"]), girth=float(subj["girth"]),
                             frame_labels=labels, fps=fps)


def generate_performance(set_name: str, subject: int, take: int, seed: int = 0, fps: float = FPS, moves: int = 6,
                         intrinsics: Intrinsics = KINECT_V1, background: bool = False,
                         realism: str | None = None) -> Sequence:
    """One continuous take: ``moves`` moves of the set by one synthetic performer, with per-frame labels.

    The performer is the clips' subject ``subject`` (body, distance, tempo, amplitude, handedness); the moves
    come in a seeded random order (no move twice in a row), each rendered with the set's motion and the clips'
    amplitude and style noise, chained by transitions and sometimes a pause, and the take starts and ends
    standing (``performance_segments`` lists the segments). Motion is defined in seconds: at ``fps=30`` the
    same take has twice the frames of ``fps=15``. ``realism`` "varied": the subject's camera pose, body shape and
    sensor model of ``generate_sequence(realism="varied")`` (jittered per take); the motion is the same.

    Returns:
        A ``Sequence`` named ``perf_sSS_tTT`` with ``depth_mm`` ``(F, H, W)`` uint16, ``joints_m`` ``(F, 20, 3)``
        float32 camera metres (jitter, the odd NaN row), ``frame_labels`` ``(F,)`` int64 (the move's class during
        a move, -1 in transitions and pauses), ``label`` None, ``subject``, ``episode`` = ``take`` and ``fps``.

    Raises:
        ValueError: unknown set; subject, take or moves not an integer >= 1; fps not a positive finite number;
            an unknown realism.
    """
    if realism is not None:
        from kerasdance.data import realism as realism_mod

        realism_mod.check_realism(realism)
    motion = performance_motion(set_name, subject, take, seed, fps, moves)
    fps, n, labels = motion.fps, len(motion.frame_labels), motion.frame_labels
    joints = motion.body_m.copy()
    joints[..., 0] += motion.x_m + motion.drift_m[:, None]
    rng = _performance_rng(set_name, subject, take, seed, 2)  # per-frame draws: these depend on the frame rate
    if realism is None:
        joints[..., 1] += -motion.cam_height_m + motion.leg_m
        joints[..., 2] += motion.z_m
        depth = np.stack([_sensor(render_frame(f, intrinsics, motion.girth), rng, intrinsics, background,
                                  motion.cam_height_m) for f in joints])
    else:
        subj = _subject(set_name, subject, seed)
        joints, depth = _varied_clip(joints, 0.0, motion.z_m, motion.leg_m, subj, intrinsics, background,
                                     [seed, list(SETS).index(set_name), 5000 + subject, subject, take])
    jitter = rng.normal(0, 0.012, joints.shape)
    jitter[:, [J.HAND_LEFT, J.HAND_RIGHT, J.FOOT_LEFT, J.FOOT_RIGHT, J.WRIST_LEFT, J.WRIST_RIGHT]] *= 2.0
    stored = (joints + jitter).astype(np.float32)
    for row in np.flatnonzero(rng.random(n) < 0.004):  # the odd invalid row (about as often as in the clips)
        stored[row, rng.integers(0, NUM_JOINTS, 3)] = np.nan
    depth[rng.random(n) < 0.0006] = 0  # rare lost frames
    return Sequence(name=f"perf_s{subject:02d}_t{take:02d}", depth_mm=depth, joints_m=stored, label=None,
                    subject=int(subject), episode=int(take), intrinsics=intrinsics, fps=fps, frame_labels=labels)


def write_performances(set_name: str, out_dir: str | Path, seed: int = 0, subjects=None, takes: int = 2,
                       fps: float = FPS, moves: int = 6, background: bool = False,
                       progress: Callable[[int, int], None] | None = None,
                       intrinsics: Intrinsics = KINECT_V1, realism: str | None = None) -> int:
    """Render continuous performances into ``out_dir`` in the generic layout (``dataset.json`` + one ``.npz`` per
    take with ``frame_labels``; the set's class names; ``fps``). One take per (subject, take): takes
    ``1 .. takes`` of every subject of the set, or of ``subjects``; ``realism`` as ``generate_performance``.
    Returns the count."""
    from kerasdance.data.dataset import write_generic

    spec = SETS[_check_set(set_name)]
    subs = list(subjects) if subjects is not None else list(range(1, spec["subjects"] + 1))
    if isinstance(takes, bool) or not isinstance(takes, int) or takes < 1:
        raise ValueError(f"takes must be an integer >= 1. Received: takes={takes!r}")
    if not subs:
        raise ValueError("subjects is empty")
    combos = [(s, k) for s in subs for k in range(1, takes + 1)]
    for s, k in combos:
        _check_performance_args(set_name, s, k, fps, moves)
    extra = {}
    if realism is not None:
        from kerasdance.data.realism import check_realism

        extra["realism"] = check_realism(realism)

    def sequences():
        for i, (s, k) in enumerate(combos):
            yield generate_performance(set_name, s, k, seed=seed, fps=fps, moves=moves, intrinsics=intrinsics,
                                       background=background, **extra)
            if progress:
                progress(i, len(combos))

    write_generic(out_dir, sequences(), class_names(set_name), intrinsics, fps=float(fps))
    log.info("wrote %d %s performances to %s", len(combos), set_name, out_dir)
    return len(combos)
