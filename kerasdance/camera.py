"""Pinhole depth-camera model (pure numpy, shared with the edge runtime).

Camera coordinates follow the Kinect v1 / MSR-Action3D convention: metres,
x to the right of the image, **y up**, z = distance from the sensor. Pixel
coordinates: u = column, v = row (row 0 at the top)::

    u = cx + fx * x / z        v = cy - fy * y / z
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Depth-camera intrinsics in pixels for a ``width x height`` depth map."""

    fx: float = 285.63
    fy: float = 285.63
    cx: float = 160.0
    cy: float = 120.0
    width: int = 320
    height: int = 240

    def __post_init__(self):
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"Focal lengths must be positive. Received: fx={self.fx!r}, fy={self.fy!r}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError(
                f"Image size must be positive. Received: width={self.width!r}, height={self.height!r}"
            )

    def project(self, xyz_m: np.ndarray) -> np.ndarray:
        """Camera metres ``(..., 3)`` -> ``(..., 3)`` of (u, v, z_m). NaN where z <= 0."""
        xyz = np.asarray(xyz_m, dtype=np.float64)
        z = np.where(xyz[..., 2] > 0, xyz[..., 2], np.nan)
        u = self.cx + self.fx * xyz[..., 0] / z
        v = self.cy - self.fy * xyz[..., 1] / z
        return np.stack([u, v, z], axis=-1)

    def outside(self, xyz_m: np.ndarray) -> np.ndarray:
        """Camera metres ``(..., 3)`` -> ``(...)`` bool: the point projects outside the image (or lies behind the
        camera). Missing (NaN) points are not outside."""
        xyz = np.asarray(xyz_m, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            u, v, _ = np.moveaxis(self.project(xyz), -1, 0)
            off = (u < 0) | (u >= self.width) | (v < 0) | (v >= self.height)
        return np.isfinite(xyz).all(axis=-1) & (off | (xyz[..., 2] <= 0))

    def unproject(self, uvz: np.ndarray) -> np.ndarray:
        """``(..., 3)`` of (u, v, z_m) -> camera metres ``(..., 3)``; exact inverse of ``project``."""
        uvz = np.asarray(uvz, dtype=np.float64)
        z = uvz[..., 2]
        x = (uvz[..., 0] - self.cx) * z / self.fx
        y = (self.cy - uvz[..., 1]) * z / self.fy
        return np.stack([x, y, z], axis=-1)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at another resolution (e.g. 640x480 -> 320x240)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Intrinsics:
        return cls(**d)


#: The Kinect v1 depth camera at 320x240 as used by MSR-Action3D.
KINECT_V1 = Intrinsics()

#: An Intel RealSense D435 depth stream at 848x480 (its best depth resolution at 30 fps). The datasheet gives a depth
#: field of view of 87 x 58 degrees (+-3); fx = fy = 425 is a typical factory calibration (each unit differs: read
#: yours with ``rs-enumerate-devices -c``), giving 90 x 59 degrees.
D435_848X480 = Intrinsics(fx=425.0, fy=425.0, cx=424.0, cy=240.0, width=848, height=480)
#: The D435 depth stream at 640x480; fx = fy = 385 is a typical factory calibration (a guess for any given unit).
D435_640X480 = Intrinsics(fx=385.0, fy=385.0, cx=320.0, cy=240.0, width=640, height=480)
