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
        intrinsics=np.tile([285.63, 285.63, 160.0, 120.0, 320.0, 240.0], (n, 1)),
        frame_stats=np.full((off[-1], 3), np.nan, np.float32))


@pytest.fixture
def prepared():
    return make_prepared()


@pytest.fixture
def prepared_factory():
    return make_prepared


def write_tiny_msr_folder(out, actions=3, subjects=4, seed=0):
    """A tiny MSR-Action3D-layout folder: blob dancers whose hand moves at an action-specific rate."""
    from kerasdance.camera import KINECT_V1
    from kerasdance.data.msr import write_msr_sequence
    from kerasdance.data.types import Sequence

    rng = np.random.default_rng(seed)
    base = np.zeros((20, 3))
    base[:, 1] = np.linspace(-0.8, 0.8, 20)
    base[:, 0] = np.tile([-0.2, 0.2], 10)
    yy, xx = np.mgrid[0:240, 0:320]
    for a in range(actions):
        for s in range(1, subjects + 1):
            n = 16 + int(rng.integers(0, 8))
            t = np.arange(n) / n
            j = np.tile(base, (n, 1, 1))
            j[..., 2] = 2.5 + 0.1 * s
            j[:, 11, 1] += 0.4 * np.sin(2 * np.pi * t * (a + 1))
            j[:, 12, 0] += 0.3 * np.cos(2 * np.pi * t * (a + 1))
            uv = KINECT_V1.project(j)
            d = np.zeros((n, 240, 320), np.uint16)
            for f in range(n):
                for k in range(20):
                    d[f][(xx - uv[f, k, 0]) ** 2 + (yy - uv[f, k, 1]) ** 2 < 64] = int(j[f, k, 2] * 1000)
            write_msr_sequence(out, Sequence(f"a{a + 1:02d}_s{s:02d}_e01", d, j.astype(np.float32), label=a,
                                             subject=s, episode=1))
    (out / "classes.txt").write_text("\n".join(f"move{i}" for i in range(actions)) + "\n")
    return out


TINY_CONFIG = {"data": {"frames": 8, "crop_size": 32},
               "model": {"stem_filters": [4, 8, 8, 8], "lstm_units": 8, "conv_filters": [8, 8, 8]},
               "train": {"epochs": 3, "batch_size": 4, "warmup_epochs": 1}}


@pytest.fixture(scope="session")
def tiny_msr(tmp_path_factory):
    return write_tiny_msr_folder(tmp_path_factory.mktemp("tiny_msr"))


@pytest.fixture
def tiny_config(tmp_path):
    import json

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path
