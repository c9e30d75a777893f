"""Shared fixtures: tiny seeded configs and hand-made preprocessed data."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_prepared(n=12, size=32, classes=3, seed=0):
    """A ``Prepared`` set of ``n`` sequences whose class decides how a blob moves (learnable)."""
    from kerasdance.data.pipeline import Prepared

    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 20, n)
    off = np.concatenate([[0], np.cumsum(lengths)])
    crops = np.ones((off[-1], size, size), np.float16)
    joints = np.zeros((off[-1], 20, 3), np.float32)
    labels = np.arange(n) % classes
    for i in range(n):
        for k, f in enumerate(range(off[i], off[i + 1])):
            p = int(size / 2 + size / 4 * np.sin(k / 3 * (labels[i] + 1)))
            crops[f, p - 3 : p + 3, size // 3 : size // 2] = 0.0
            joints[f, :, 1] = p / size * 2 - 1
    return Prepared(
        names=[f"s{i}" for i in range(n)], labels=labels.astype(np.int64), subjects=(np.arange(n) % 4 + 1),
        offsets=off.astype(np.int64), crops=crops, joints_norm=joints, joint_mask=np.ones((off[-1], 20), np.float32),
        joints_m=np.full((off[-1], 20, 3), 2.5, np.float32),
        crop_params=np.tile([160.0, 120.0, 100.0, 0.0, 2.5], (n, 1)),
        intrinsics=np.tile([285.63, 285.63, 160.0, 120.0, 320.0, 240.0], (n, 1)))


@pytest.fixture
def prepared():
    return make_prepared()


@pytest.fixture
def prepared_factory():
    return make_prepared
