"""The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012), vectorised over joints.

A low-pass filter whose cutoff rises with speed: still joints are steady (``min_cutoff``), fast ones
follow with little lag (``beta``). Per sample, with ``dt`` the time since the previous one::

    alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))
    dx  = (x - x_prev_hat) / dt;   dx_hat = alpha(d_cutoff) dx + (1 - alpha(d_cutoff)) dx_prev_hat
    fc  = min_cutoff + beta |dx_hat|
    x_hat = alpha(fc) x + (1 - alpha(fc)) x_prev_hat
"""

from __future__ import annotations

import numpy as np


def smoothing_factor(cutoff_hz, dt_s):
    """``alpha = 1 / (1 + tau / dt)`` with ``tau = 1 / (2 pi cutoff)``."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz, np.float64))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One-Euro filter of arrays of any fixed shape (e.g. ``(J, 3)`` joints, each value filtered on its own).

    Args:
        min_cutoff: cutoff frequency at rest, Hz (lower: steadier, more lag).
        beta: speed coefficient (higher: less lag on fast motion).
        d_cutoff: cutoff for the derivative, Hz.

    NaN values (missing joints) pass through and restart the filter of that value.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"Need min_cutoff > 0, d_cutoff > 0, beta >= 0. Received: min_cutoff={min_cutoff!r}, "
                             f"beta={beta!r}, d_cutoff={d_cutoff!r}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x = self._dx = None
        self._t: float | None = None

    def __call__(self, x, t_s: float) -> np.ndarray:
        """Filter one sample ``x`` taken at ``t_s`` seconds; returns the filtered array (float64)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t_s)
            return x.copy()
        dt = float(t_s) - self._t
        if dt <= 0:  # a repeated or out-of-order timestamp: nothing to integrate
            return np.where(np.isfinite(x), self._x, x)
        fresh = ~np.isfinite(self._x)  # restart values that were missing
        prev = np.where(fresh, x, self._x)
        dx = np.where(fresh, 0.0, (x - prev) / dt)
        a_d = smoothing_factor(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * np.where(fresh, 0.0, self._dx)
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(dx_hat), dt)
        x_hat = a * x + (1.0 - a) * prev
        self._x, self._dx, self._t = x_hat, np.where(np.isfinite(dx_hat), dx_hat, 0.0), float(t_s)
        return x_hat.copy()
