"""A depth camera standing in a room: its pose (height, pitch down, roll) and how its sensor corrupts depth.

Shared by the studio scenes (``kerasdance.data.scenes``, which documents where the sensors' numbers come from) and
the varied synthetic clips (``kerasdance.data.realism``). Numpy only: it imports no other generator.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kerasdance.camera import D435_640X480, D435_848X480, KINECT_V1, Intrinsics


# --- the camera's pose ---------------------------------------------------------------------------------------------
def camera_rotation(tilt_deg: float, roll_deg: float) -> np.ndarray:
    """``(3, 3)`` world -> camera rotation of a camera pitched down by ``tilt_deg`` and rolled by ``roll_deg``
    (world: y up, z the camera's horizontal heading; camera: x right, y up, z away)."""
    a, b = math.radians(roll_deg), -math.radians(tilt_deg)
    rz = np.zeros((3, 3))
    rz[0, 0], rz[0, 1], rz[1, 0], rz[1, 1], rz[2, 2] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a), 1
    rx = np.zeros((3, 3))
    rx[0, 0], rx[1, 1], rx[1, 2], rx[2, 1], rx[2, 2] = 1, np.cos(b), -np.sin(b), np.sin(b), np.cos(b)
    return rz @ rx


def floor_plane(height_m: float, tilt_deg: float, roll_deg: float) -> np.ndarray:
    """The floor in the camera frame: ``(4,)`` ``(nx, ny, nz, d)`` with ``n . p + d = 0`` on the floor, ``n`` the unit
    up direction (so ``n . p + d`` is a point's height above the floor) and ``d`` the camera height."""
    n = camera_rotation(tilt_deg, roll_deg) @ [0.0, 1.0, 0.0]
    return np.array([*n, height_m])


# --- the sensor ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SensorModel:
    """A depth sensor: image size, frame rate and how it corrupts a noise-free depth map (``apply_sensor``).

    Attributes:
        name: ``"kinect_v1"``, ``"d435"`` or ``"d435_640"``.
        intrinsics: the depth image's camera.
        fps: its frame rate (the default of a take).
        min_range_m: nearer surfaces read 0.
        max_range_m: farther surfaces read 0.
        noise_m_per_m2: depth noise sigma in metres at 1 m; it grows with z^2.
        baseline_m: projector-camera (Kinect) or stereo (D435) baseline: shadows next to near objects.
        disparity_step: the depth is quantised in steps of ``disparity_step`` in 1/z (1/m); 0 = millimetres only.
        left_band: a band along the image's left edge reads 0 (stereo: the second imager does not see it).
        edge_dropout: probability that a pixel at a depth edge reads 0.
        flying_pixels: probability that a remaining depth-edge pixel reads a depth between the two surfaces.
        speckle_rate: small holes (3x3 at most) started per pixel.
    """

    name: str
    intrinsics: Intrinsics
    fps: float
    min_range_m: float
    max_range_m: float
    noise_m_per_m2: float
    baseline_m: float
    disparity_step: float
    left_band: bool
    edge_dropout: float
    flying_pixels: float
    speckle_rate: float


def _d435(name: str, intrinsics: Intrinsics) -> SensorModel:
    return SensorModel(name, intrinsics, 30.0, 0.2, 10.0, 0.08 / (intrinsics.fx * 0.05), 0.05, 0.0, True, 0.5, 0.3,
                       0.001)


SENSORS: dict[str, SensorModel] = {
    "kinect_v1": SensorModel("kinect_v1", KINECT_V1, 15.0, 0.8, 6.0, 0.0015, 0.075, 0.125 / (580.0 * 0.075), False,
                             0.35, 0.0, 0.0003),
    "d435": _d435("d435", D435_848X480),
    "d435_640": _d435("d435_640", D435_640X480),
}


def sensor_model(sensor: str | SensorModel) -> SensorModel:
    """The ``SensorModel`` named ``sensor`` (one of ``SENSORS``); a ``SensorModel`` is returned as it is.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(sensor, SensorModel):
        return sensor
    if sensor not in SENSORS:
        raise ValueError(f"Unknown sensor. Received: sensor={sensor!r}; valid: {sorted(SENSORS)}")
    return SENSORS[sensor]


def apply_sensor(zbuf_m: np.ndarray, sensor: SensorModel, rng: np.random.Generator) -> np.ndarray:
    """A noise-free depth map -> what the sensor reads.

    Args:
        zbuf_m: ``(H, W)`` depth in metres, inf = nothing (the sensor's intrinsics' size).
        sensor: the sensor.
        rng: the random draws.

    Returns:
        ``(H, W)`` uint16 depth in millimetres, 0 = no reading (out of range, shadow, hole, lost edge).
    """
    z = np.asarray(zbuf_m, np.float32)
    H, W = z.shape
    finite = np.isfinite(z)
    zz = np.where(finite, z, np.float32(1e6))
    disp = np.float32(sensor.intrinsics.fx * sensor.baseline_m) / zz  # disparity in pixels (~0 for nothing)
    # Shadow: the surface at column u is hidden from the second viewpoint (projector or right imager) by a nearer
    # surface at u' > u when disp(u') - (u' - u) > disp(u).
    cols = np.arange(W, dtype=np.float32)
    key = disp - cols
    after = np.full((H, W), -np.inf, np.float32)
    after[:, :-1] = np.maximum.accumulate(key[:, :0:-1], axis=1)[:, ::-1]
    lost = after > key + 0.5
    if sensor.left_band:
        lost |= cols < disp
    # Depth edges: a 4-neighbour more than 4% nearer or farther (or nothing next to something). The farther
    # neighbour's depth is kept for flying pixels.
    edge = np.zeros((H, W), bool)
    far = zz.copy()
    for a, b in (((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                 ((slice(None), slice(1, None)), (slice(None), slice(None, -1)))):
        jump = np.abs(zz[a] - zz[b]) > 0.04 * np.minimum(zz[a], zz[b])
        edge[a] |= jump
        edge[b] |= jump
        np.maximum(far[a], np.where(jump & (zz[b] < 1e5), zz[b], 0), out=far[a])
        np.maximum(far[b], np.where(jump & (zz[a] < 1e5), zz[a], 0), out=far[b])
    noisy = zz + rng.standard_normal((H, W), dtype=np.float32) * np.float32(sensor.noise_m_per_m2) * zz * zz
    ev, eu = np.nonzero(edge & finite)
    u = rng.random(len(ev), dtype=np.float32)
    drop = u < sensor.edge_dropout
    fly = ~drop & (u < sensor.edge_dropout + (1 - sensor.edge_dropout) * sensor.flying_pixels)
    fv, fu = ev[fly], eu[fly]
    noisy[fv, fu] += rng.random(len(fv), dtype=np.float32) * (far[fv, fu] - zz[fv, fu])
    lost[ev[drop], eu[drop]] = True
    if sensor.disparity_step > 0:
        step = np.float32(sensor.disparity_step)
        inv = np.round(1.0 / np.maximum(noisy, np.float32(1e-3)) / step) * step
        noisy = 1.0 / np.maximum(inv, np.float32(1e-6))
    k = int(rng.binomial(H * W, sensor.speckle_rate))  # small holes: a seed and some of its 3x3 neighbours
    sv, su = rng.integers(0, H, k), rng.integers(0, W, k)
    grow = rng.random((k, 9)) < 0.5
    grow[:, 4] = True
    for i, (dv, du) in enumerate((dv, du) for dv in (-1, 0, 1) for du in (-1, 0, 1)):
        lost[np.clip(sv[grow[:, i]] + dv, 0, H - 1), np.clip(su[grow[:, i]] + du, 0, W - 1)] = True
    ok = finite & ~lost & (noisy >= sensor.min_range_m) & (noisy <= sensor.max_range_m)
    return np.where(ok, np.clip(np.round(noisy * 1000.0), 0, 65535), 0).astype(np.uint16)
