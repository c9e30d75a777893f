"""What a real depth-camera skeleton tracker outputs, made from clean joints: a seeded noise model (pure numpy).

The synthetic sets store the true joints plus ~12 mm jitter, on which skeleton input is trivially perfect. A real
Kinect v1 tracker (MSR-Action3D's skeleton files) loses joints and whole frames, freezes joints, swaps left and
right limbs when the performer turns side-on, puts feet through the floor or outside the body, and sometimes
jumps to another person. ``apply_tracker_noise`` adds all of these to ``(frames, 20, 3)`` camera-metre joints:

* **jitter**: temporally correlated (AR(1)) Gaussian noise whose standard deviation grows toward the
  extremities (``JITTER_WEIGHT``: torso 1, shoulders/hips 1.2, elbows/knees 1.6, wrists/ankles 2.2, hands/feet
  2.8) and with depth (``(z / jitter_ref_m) ** 2``, clipped to [0.5, 3]: the sensor's depth noise grows with z^2);
* **lost joints**: runs of frames where a joint is not tracked, either *lost* (NaN, what ``kerasdance.data.msr``
  reads from a row of NaN, zeros or ~2.1e9; ``lost="zeros"`` writes the raw Kinect convention, all-zero rows) or
  *inferred* (Kinect's "inferred" state: a valid-looking position, here the joint held rigidly to its parent at
  the offset it last had, so a limb hangs stiff while the body moves);
* **lost frames**: rare short runs of wholly invalid frames in every recording, and *bad recordings* (a share of
  the files) where a large share of the frames is lost in runs;
* **frozen joints**: a joint stuck at one value for several frames;
* **left/right swaps**: a limb pair (both arms from the elbow out, both legs from the knee out, or both) swapped
  for a few frames, far more often when the performer is side-on to the camera (the shoulder line along z);
* **foot errors**: a foot and its ankle pushed down through the floor or out sideways/forward for a few frames;
* **wrong person**: in a share of the recordings, the whole skeleton jumps for a few frames to another position
  (another body in the scene: offset sideways and in depth, in another pose).

Levels (``LEVELS``): ``clean`` changes nothing; ``kinect`` aims at a Kinect v1 tracker on MSR-Action3D-like
recordings; ``hard`` at a worse tracker or scene (side-on dancers, occlusions). Which parameters are measured
and which are guesses is written next to each in ``KINECT`` and ``HARD``. Rates are per second and durations in
seconds, so any frame rate (``fps``) gives the same noise per second of recording.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from kerasdance.skeleton import NUM_JOINTS
from kerasdance.skeleton import Joint as J

LEVELS = ("clean", "kinect", "hard")

#: Relative jitter (and loss / freeze rate) of each joint: the farther from the trunk, the worse (guesses shaped on
#: the Kinect v1 literature's "hands and feet jitter several times more than the torso").
JITTER_WEIGHT = np.ones(NUM_JOINTS)
JITTER_WEIGHT[[J.SHOULDER_LEFT, J.SHOULDER_RIGHT, J.HIP_LEFT, J.HIP_RIGHT]] = 1.2
JITTER_WEIGHT[[J.ELBOW_LEFT, J.ELBOW_RIGHT, J.KNEE_LEFT, J.KNEE_RIGHT]] = 1.6
JITTER_WEIGHT[[J.WRIST_LEFT, J.WRIST_RIGHT, J.ANKLE_LEFT, J.ANKLE_RIGHT]] = 2.2
JITTER_WEIGHT[[J.HAND_LEFT, J.HAND_RIGHT, J.FOOT_LEFT, J.FOOT_RIGHT]] = 2.8

#: Each joint's parent (toward the hip centre); the hip centre is its own.
PARENT = np.array([J.SHOULDER_CENTER, J.SHOULDER_CENTER, J.SPINE, J.HIP_CENTER, J.HIP_CENTER, J.HIP_CENTER,
                   J.HIP_CENTER, J.SHOULDER_LEFT, J.SHOULDER_RIGHT, J.ELBOW_LEFT, J.ELBOW_RIGHT, J.WRIST_LEFT,
                   J.WRIST_RIGHT, J.HIP_LEFT, J.HIP_RIGHT, J.KNEE_LEFT, J.KNEE_RIGHT, J.ANKLE_LEFT, J.ANKLE_RIGHT,
                   J.SHOULDER_CENTER])

#: Limb pairs a swap exchanges: (left joints, right joints), from the elbow / knee out.
ARMS = ((J.ELBOW_LEFT, J.WRIST_LEFT, J.HAND_LEFT), (J.ELBOW_RIGHT, J.WRIST_RIGHT, J.HAND_RIGHT))
LEGS = ((J.KNEE_LEFT, J.ANKLE_LEFT, J.FOOT_LEFT), (J.KNEE_RIGHT, J.ANKLE_RIGHT, J.FOOT_RIGHT))
FEET = ((J.ANKLE_LEFT, J.FOOT_LEFT), (J.ANKLE_RIGHT, J.FOOT_RIGHT))


@dataclasses.dataclass(frozen=True)
class TrackerNoise:
    """Parameters of ``apply_tracker_noise`` (rates in events per second, durations ``(min, max)`` in seconds).

    Attributes:
        jitter_m: jitter standard deviation of a torso joint at ``jitter_ref_m`` (metres, per coordinate).
        jitter_ref_m: depth at which ``jitter_m`` holds; it scales with ``(z / jitter_ref_m) ** 2``.
        jitter_corr: frame-to-frame correlation of the jitter (AR(1) coefficient, in [0, 1)).
        lost_joint_hz: rate of lost-joint runs per joint (times ``JITTER_WEIGHT``: extremities are lost more).
        lost_joint_s: duration of a lost-joint run.
        inferred_share: share of lost-joint runs shown as *inferred* (held to the parent) instead of invalid.
        lost_frame_hz: rate of runs of wholly lost frames, in every recording.
        lost_frame_s: duration of such a run.
        bad_recording_share: share of recordings with many lost frames.
        bad_recording_lost: ``(min, max)`` share of the frames lost in a bad recording (in runs of
            ``bad_run_s``).
        bad_run_s: duration of a run of lost frames in a bad recording.
        freeze_hz: rate of frozen-joint runs per joint (times ``JITTER_WEIGHT``).
        freeze_s: duration of a freeze.
        swap_hz: rate of left/right limb swaps when facing the camera ...
        swap_side_on_gain: ... times ``1 + swap_side_on_gain * side_on`` (side_on: 0 facing, 1 side-on).
        swap_s: duration of a swap.
        foot_hz: rate of foot errors per foot.
        foot_s: duration of a foot error.
        foot_offset_m: ``(min, max)`` displacement of a foot error (down through the floor, or out sideways /
            forward).
        wrong_person_share: share of recordings with one wrong-person episode.
        wrong_person_s: its duration.
        wrong_person_offset_m: ``(min, max)`` sideways jump of the skeleton (plus up to half of it in depth).
    """

    jitter_m: float = 0.0
    jitter_ref_m: float = 2.5
    jitter_corr: float = 0.6
    lost_joint_hz: float = 0.0
    lost_joint_s: tuple[float, float] = (0.1, 0.6)
    inferred_share: float = 0.5
    lost_frame_hz: float = 0.0
    lost_frame_s: tuple[float, float] = (0.07, 0.3)
    bad_recording_share: float = 0.0
    bad_recording_lost: tuple[float, float] = (0.05, 0.6)
    bad_run_s: tuple[float, float] = (0.2, 1.0)
    freeze_hz: float = 0.0
    freeze_s: tuple[float, float] = (0.2, 0.7)
    swap_hz: float = 0.0
    swap_side_on_gain: float = 6.0
    swap_s: tuple[float, float] = (0.2, 0.8)
    foot_hz: float = 0.0
    foot_s: tuple[float, float] = (0.2, 0.7)
    foot_offset_m: tuple[float, float] = (0.08, 0.3)
    wrong_person_share: float = 0.0
    wrong_person_s: tuple[float, float] = (0.1, 0.4)
    wrong_person_offset_m: tuple[float, float] = (0.7, 1.5)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            vals = v if isinstance(v, tuple) else (v,)
            if not all(np.isfinite(x) and x >= 0 for x in vals) or (isinstance(v, tuple) and v[0] > v[1]):
                raise ValueError(f"TrackerNoise.{f.name} must be >= 0 (a (min, max) pair with min <= max). "
                                 f"Received: {f.name}={v!r}")
        for name in ("jitter_corr", "inferred_share", "bad_recording_share", "wrong_person_share"):
            if getattr(self, name) > 1 or (name == "jitter_corr" and self.jitter_corr >= 1):
                raise ValueError(f"TrackerNoise.{name} must be in [0, 1]. Received: {name}={getattr(self, name)!r}")
        if self.bad_recording_lost[1] > 1:
            raise ValueError(f"bad_recording_lost must be shares in [0, 1]. Received: {self.bad_recording_lost!r}")

    @classmethod
    def level(cls, name: str) -> TrackerNoise:
        """The parameters of a level of ``LEVELS``.

        Raises:
            ValueError: an unknown level.
        """
        if name not in LEVELS:
            raise ValueError(f"Unknown tracker-noise level. Received: {name!r}; valid: {list(LEVELS)}")
        return {"clean": CLEAN, "kinect": KINECT, "hard": HARD}[name]


CLEAN = TrackerNoise()

#: A Kinect v1 tracker on MSR-Action3D-like recordings. Measured (from the issue, on real MSR-Action3D): 44 of the
#: 567 files have invalid rows, some of them 30-60% -> ``bad_recording_share`` 0.08 and ``bad_recording_lost``
#: (0.05, 0.6). Everything else is a guess: jitter ~1 cm on the torso and ~3 cm on hands/feet at 2.5 m (the
#: synthetic sets' own ~12 mm, doubled at the extremities, is of that order); a joint lost about every 25 s (hands
#: and feet every ~9 s); a swap every ~20 s facing the camera, every ~3 s side-on; a foot error every ~15 s; a wrong
#: person in 3% of the recordings.
KINECT = TrackerNoise(jitter_m=0.010, lost_joint_hz=0.04, lost_frame_hz=0.02, bad_recording_share=0.08,
                      freeze_hz=0.03, swap_hz=0.05, foot_hz=0.07, wrong_person_share=0.03)

#: A worse tracker or scene (every figure a guess): 1.6x the jitter, 3-4x the rates, a third of the recordings
#: with many lost frames, wrong persons in 12%, longer swaps.
HARD = TrackerNoise(jitter_m=0.016, lost_joint_hz=0.15, lost_frame_hz=0.08, bad_recording_share=0.3,
                    freeze_hz=0.1, swap_hz=0.2, swap_s=(0.3, 1.5), foot_hz=0.25, wrong_person_share=0.12,
                    wrong_person_s=(0.15, 0.7))


class NoiseEvents(NamedTuple):
    """Where ``apply_tracker_noise`` changed what (all bool).

    Attributes:
        lost: ``(frames, 20)`` joints made invalid (NaN or zeros), lost frames included.
        inferred: ``(frames, 20)`` joints held to their parent.
        frozen: ``(frames, 20)`` joints repeating the value of the freeze's first frame.
        swapped: ``(frames, 20)`` joints exchanged with their left/right counterpart.
        foot: ``(frames, 20)`` ankles and feet displaced.
        wrong_person: ``(frames,)`` frames where the whole skeleton is another person's.
        lost_frames: ``(frames,)`` wholly invalid frames.
    """

    lost: np.ndarray
    inferred: np.ndarray
    frozen: np.ndarray
    swapped: np.ndarray
    foot: np.ndarray
    wrong_person: np.ndarray
    lost_frames: np.ndarray


def _frames(span_s: tuple[float, float], fps: float, rng: np.random.Generator) -> int:
    return max(1, int(round(rng.uniform(*span_s) * fps)))


def _runs(rng: np.random.Generator, n: int, rate_per_frame: float, span_s, fps: float) -> list[tuple[int, int]]:
    """Runs ``(start, stop)`` of one track: starts with ``rate_per_frame`` per frame, durations from ``span_s``."""
    if rate_per_frame <= 0:
        return []
    starts = np.flatnonzero(rng.random(n) < min(rate_per_frame, 1.0))
    return [(int(s), min(n, int(s) + _frames(span_s, fps, rng))) for s in starts]


def side_on(joints_m: np.ndarray) -> np.ndarray:
    """``(frames,)`` in [0, 1]: 0 when the shoulder line is across the camera's view (facing it or its back), 1
    when it points at the camera (side-on). 0 where a shoulder is missing."""
    v = np.asarray(joints_m, np.float64)[:, J.SHOULDER_RIGHT] - np.asarray(joints_m, np.float64)[:, J.SHOULDER_LEFT]
    xz = np.hypot(v[:, 0], v[:, 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.abs(v[:, 2]) / xz
    return np.nan_to_num(out, nan=0.0)


def apply_tracker_noise(joints_m: np.ndarray, noise: TrackerNoise | str, rng: np.random.Generator,
                        fps: float = 15.0, lost: str = "nan", return_events: bool = False):
    """Turn clean joints into what a depth-camera tracker outputs (see the module's docstring).

    Args:
        joints_m: ``(frames, 20, 3)`` camera metres (y up, z away from the camera), clean; NaN rows stay NaN.
        noise: a ``TrackerNoise`` or a level name of ``LEVELS``.
        rng: the generator every draw comes from (same generator state, same output).
        fps: the recording's frame rate (rates and durations are per second).
        lost: how invalid joints are written: ``"nan"`` (what the MSR readers return) or ``"zeros"`` (the raw
            Kinect convention: an all-zero row).
        return_events: also return a ``NoiseEvents``.

    Returns:
        ``(frames, 20, 3)`` float32 joints (and the ``NoiseEvents`` with ``return_events``).

    Raises:
        ValueError: a wrong shape, an unknown level or ``lost`` value, a non-positive ``fps``.
    """
    p = TrackerNoise.level(noise) if isinstance(noise, str) else noise
    j = np.array(joints_m, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_m must be (frames, {NUM_JOINTS}, 3). Received: shape={j.shape!r}")
    if lost not in ("nan", "zeros"):
        raise ValueError(f"lost must be 'nan' or 'zeros'. Received: lost={lost!r}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number. Received: fps={fps!r}")
    n = j.shape[0]
    ev = NoiseEvents(*(np.zeros((n, NUM_JOINTS), bool) for _ in range(5)), np.zeros(n, bool), np.zeros(n, bool))
    if p == CLEAN or n == 0:
        out = j.astype(np.float32)
        return (out, ev) if return_events else out
    truth = j.copy()
    # Jitter: AR(1) in time, scaled per joint and by depth.
    if p.jitter_m > 0:
        e = rng.standard_normal(j.shape)
        c = p.jitter_corr
        for t in range(1, n):
            e[t] = c * e[t - 1] + np.sqrt(1 - c * c) * e[t]
        z = np.nan_to_num(truth[..., 2:3], nan=p.jitter_ref_m)
        scale = np.clip((z / p.jitter_ref_m) ** 2, 0.5, 3.0)
        j = j + e * p.jitter_m * JITTER_WEIGHT[None, :, None] * scale
    # Left/right limb swaps, likelier side-on.
    if p.swap_hz > 0:
        rate = p.swap_hz / fps * (1.0 + p.swap_side_on_gain * side_on(truth))
        for s in np.flatnonzero(rng.random(n) < np.minimum(rate, 1.0)):
            e_ = min(n, int(s) + _frames(p.swap_s, fps, rng))
            which = rng.choice(3)  # arms, legs, both
            pairs = [ARMS, LEGS, (ARMS[0] + LEGS[0], ARMS[1] + LEGS[1])][which]
            left, right = list(pairs[0]), list(pairs[1])
            rows = slice(int(s), e_)
            j[rows, left + right] = j[rows, right + left]
            ev.swapped[rows, left + right] = ~ev.swapped[rows, left + right]
    # Frozen joints: the value at the freeze's first frame repeats.
    for k in range(NUM_JOINTS):
        for s, e_ in _runs(rng, n, p.freeze_hz * JITTER_WEIGHT[k] / fps, p.freeze_s, fps):
            if ev.frozen[max(s - 1, 0) : e_ + 1, k].any():  # runs that meet merge into one freeze
                continue
            j[s:e_, k] = j[s, k]
            ev.frozen[s:e_, k] = True
    # Foot errors: through the floor (down) or out (sideways / forward).
    for ankle, foot in FEET:
        for s, e_ in _runs(rng, n, p.foot_hz / fps, p.foot_s, fps):
            d = rng.uniform(*p.foot_offset_m)
            if rng.random() < 0.5:
                off = np.array([0.0, -d, 0.0])
            else:
                a = rng.uniform(0, 2 * np.pi)
                off = np.array([d * np.cos(a), 0.0, d * np.sin(a)])
            j[s:e_, [ankle, foot]] += off
            ev.foot[s:e_, [ankle, foot]] = True
    # Lost joints: invalid, or inferred (held to the parent at the offset of the frame before the run).
    lost_mask = np.zeros((n, NUM_JOINTS), bool)
    for k in range(NUM_JOINTS):
        for s, e_ in _runs(rng, n, p.lost_joint_hz * JITTER_WEIGHT[k] / fps, p.lost_joint_s, fps):
            if k != J.HIP_CENTER and rng.random() < p.inferred_share:
                ref = max(s - 1, 0)
                j[s:e_, k] = j[s:e_, PARENT[k]] + (j[ref, k] - j[ref, PARENT[k]])
                ev.inferred[s:e_, k] = True
            else:
                lost_mask[s:e_, k] = True
    # A wrong person: the whole skeleton elsewhere, in another pose (this body's at another time).
    if p.wrong_person_share > 0 and rng.random() < p.wrong_person_share:
        s = int(rng.integers(0, n))
        e_ = min(n, s + _frames(p.wrong_person_s, fps, rng))
        d = rng.uniform(*p.wrong_person_offset_m) * rng.choice([-1.0, 1.0])
        off = np.array([d, 0.0, rng.uniform(-0.5, 0.5) * abs(d)])
        other = j[rng.integers(0, n, e_ - s)]
        root = np.nanmean(other[:, J.HIP_CENTER], axis=0)
        here = np.nanmean(j[s:e_, J.HIP_CENTER], axis=0)
        j[s:e_] = other - root + here + off
        ev.wrong_person[s:e_] = True
    # Lost frames: rare short runs everywhere, many in a bad recording.
    lost_frames = np.zeros(n, bool)
    for s, e_ in _runs(rng, n, p.lost_frame_hz / fps, p.lost_frame_s, fps):
        lost_frames[s:e_] = True
    if p.bad_recording_share > 0 and rng.random() < p.bad_recording_share:
        want = rng.uniform(*p.bad_recording_lost) * n
        for _ in range(10 * n):
            if lost_frames.sum() >= want:
                break
            s = int(rng.integers(0, n))
            lost_frames[s : s + _frames(p.bad_run_s, fps, rng)] = True
    lost_mask |= lost_frames[:, None]
    lost_mask |= ~np.isfinite(truth).all(axis=-1)
    j[lost_mask] = np.nan if lost == "nan" else 0.0
    ev.lost[:] = lost_mask
    ev.lost_frames[:] = lost_frames
    out = j.astype(np.float32)
    return (out, ev) if return_events else out


def apply_to_sequences(joints_m: np.ndarray, offsets: np.ndarray, noise: TrackerNoise | str, seed: int = 0,
                       fps: float = 15.0) -> np.ndarray:
    """``apply_tracker_noise`` to each sequence of ragged ``(total_frames, 20, 3)`` joints (sequence i owns the
    frames ``offsets[i]:offsets[i+1]``, as ``pipeline.Prepared``), sequence i drawing from
    ``SeedSequence([seed, i])``. Returns a new float32 array."""
    out = np.array(joints_m, np.float32, copy=True)
    offsets = np.asarray(offsets, np.int64)
    for i in range(len(offsets) - 1):
        s, e = int(offsets[i]), int(offsets[i + 1])
        if e > s:
            out[s:e] = apply_tracker_noise(out[s:e], noise, np.random.default_rng(np.random.SeedSequence([seed, i])),
                                           fps=fps)
    return out
