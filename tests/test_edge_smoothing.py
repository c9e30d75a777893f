"""One-Euro filter on hand-computed cases."""

import math

import numpy as np
import pytest

from kerasdance_edge.smoothing import OneEuroFilter, smoothing_factor


def test_smoothing_factor_by_hand():
    # tau = 1 / (2 pi 1 Hz); alpha = 1 / (1 + tau / dt) with dt = 1 s = 2 pi / (2 pi + 1).
    assert smoothing_factor(1.0, 1.0) == pytest.approx(2 * math.pi / (2 * math.pi + 1))
    assert smoothing_factor(1.0, 0.1) == pytest.approx(1 / (1 + 1 / (2 * math.pi * 0.1)))


def test_first_sample_passes_through_then_low_pass():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert f(np.array([0.0]), 0.0) == pytest.approx([0.0])
    a = 2 * math.pi / (2 * math.pi + 1)  # 0.8627
    y1 = f(np.array([1.0]), 1.0)
    assert y1 == pytest.approx([a])
    y2 = f(np.array([1.0]), 2.0)
    assert y2 == pytest.approx([a * 1.0 + (1 - a) * a])


def test_beta_raises_the_cutoff_with_speed():
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0, d_cutoff=1.0)
    f(0.0, 0.0)
    # dx = 1 / 1 s; dx_hat = a_d * 1 = 2 pi / (2 pi + 1); cutoff = 1 + dx_hat; x_hat = alpha(cutoff, 1) * 1.
    dx_hat = 2 * math.pi / (2 * math.pi + 1)
    expected = 1 / (1 + 1 / (2 * math.pi * (1 + dx_hat)))
    assert float(f(1.0, 1.0)) == pytest.approx(expected)
    assert expected > 2 * math.pi / (2 * math.pi + 1)  # less lag than without beta


def test_vectorised_over_joints_each_value_on_its_own():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    singles = [OneEuroFilter(min_cutoff=1.0, beta=0.5) for _ in range(6)]
    rng = np.random.default_rng(0)
    for k in range(5):
        x = rng.normal(size=(2, 3))
        t = k / 15
        y = f(x, t)
        y_single = [g(v, t) for g, v in zip(singles, x.ravel())]
        np.testing.assert_allclose(y.ravel(), np.ravel(y_single), rtol=1e-12)


def test_missing_values_pass_through_and_restart():
    f = OneEuroFilter()
    f(np.array([0.0, 0.0]), 0.0)
    y = f(np.array([np.nan, 1.0]), 1.0)
    assert np.isnan(y[0]) and 0 < y[1] < 1
    y = f(np.array([5.0, 1.0]), 2.0)
    assert y[0] == 5.0  # restarted: the first value after a gap passes through


def test_repeated_timestamp_and_bad_arguments():
    f = OneEuroFilter()
    f(np.array([0.0]), 1.0)
    assert f(np.array([3.0]), 1.0) == pytest.approx([0.0])
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
