"""Fixtures and test doubles of the edge-runtime tests (``tests/test_edge_*.py``).

The tiny ``.tflite`` model is built by running this file as a script in a subprocess, so that
the test process itself never imports TensorFlow (the edge runtime must run without it)::

    python tests/edge_fixtures.py OUT_DIR

writes ``OUT_DIR/tiny.tflite`` (float32), ``OUT_DIR/tiny_int8.tflite`` (full int8, int8 in/out),
their sidecars, and ``OUT_DIR/keras_outputs.npz`` (a fixed input window and the Keras model's
outputs on it).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = ("sway", "spin", "jump")
FRAMES, CROP = 8, 32


class TinyModel(NamedTuple):
    path: Path  # float32 model
    int8_path: Path  # full-int8 model (int8 input and outputs)
    outputs: Path  # keras_outputs.npz: x, keypoints, logits (and the int8 model's calibration range)


def build(out_dir: Path) -> None:
    """Build, convert and save the tiny models (runs in a subprocess: imports TensorFlow)."""
    import kerasdance.keras_backend  # noqa: F401 - selects tf_keras before anything else imports keras
    from kerasdance import __version__
    from kerasdance.camera import KINECT_V1
    from kerasdance.config import DataConfig, ModelConfig
    from kerasdance.keras_backend import keras, tf
    from kerasdance.modelmeta import ModelMeta, file_sha256, save_meta
    from kerasdance.models.lstm_cnn import build_lstm_cnn
    from kerasdance.skeleton import JOINT_NAMES

    tf.random.set_seed(0)
    keras.utils.set_random_seed(0)
    data_cfg = DataConfig(frames=FRAMES, crop_size=CROP)
    model_cfg = ModelConfig(num_classes=len(CLASS_NAMES), stem_filters=(4, 4, 4, 4), lstm_units=8,
                            conv_filters=(8, 8, 8), unroll=True)
    model = build_lstm_cnn(model_cfg, data_cfg, batch_size=1)
    rng = np.random.default_rng(0)
    # Non-trivial batch-norm statistics, and output heads scaled so that key-points and logits are of order 1
    # (a freshly initialised model outputs ~1e-3, too small for a meaningful comparison).
    for layer in model.layers:
        w = layer.get_weights()
        if layer.name.endswith("_bn"):
            layer.set_weights([w[0], w[1], rng.normal(0, 0.1, w[2].shape), rng.uniform(0.5, 1.5, w[3].shape)])
        elif layer.name == "logits":
            layer.set_weights([w[0] * 30.0, *w[1:]])
        elif layer.name == "kp_out":  # heat-map logits (first 20 channels) peaked, depth maps of order 1
            scale = np.where(np.arange(w[0].shape[-1]) < 20, 30.0, 10.0)
            layer.set_weights([w[0] * scale, *w[1:]])
    shape = (1, FRAMES, CROP, CROP, data_cfg.channels)
    x = rng.uniform(-0.5, 1.0, shape).astype(np.float32)
    out = model(x, training=False)
    np.savez(out_dir / "keras_outputs.npz", x=x, keypoints=out["keypoints"].numpy(), logits=out["logits"].numpy())

    def write(name: str, quantization: str, converter) -> None:
        path = out_dir / name
        path.write_bytes(converter.convert())
        save_meta(path, ModelMeta(
            sha256=file_sha256(path), input_mode="depth", class_names=CLASS_NAMES, joint_names=JOINT_NAMES,
            data=data_cfg.to_dict(), intrinsics=KINECT_V1.to_dict(), quantization=quantization, unrolled=True,
            kerasdance_version=__version__))

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    write("tiny.tflite", "float32", conv)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-0.5, 1.0, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    write("tiny_int8.tflite", "int8", conv)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
    """The tiny LSTM-CNN (T=8, S=32, 3 classes) as ``.tflite`` + sidecar, built once per session."""
    # One fixed folder per session: every test module that imports this fixture shares the build.
    out = tmp_path_factory.getbasetemp() / "edge_model"
    model = TinyModel(out / "tiny.tflite", out / "tiny_int8.tflite", out / "keras_outputs.npz")
    if (out / "tiny_int8.tflite.json").exists():
        return model
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(Path(__file__)), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"building the tiny model failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return model


# --- depth frames ---------------------------------------------------------------------------------------------
def person_depth(num_frames: int, height: int = 240, width: int = 320, z_mm: int = 2500, seed: int = 0
                 ) -> np.ndarray:
    """``(frames, height, width)`` uint16: a box-shaped "dancer" swinging an arm in front of a wall.

    The body (about 1.7 m tall at ``z_mm``) sits at the image centre; the wall behind (4.5 m) fills
    the upper part of the image; everything else is 0 (no reading), as in MSR-Action3D.
    """
    rng = np.random.default_rng(seed)
    f = 285.63 * width / 320
    d = np.zeros((num_frames, height, width), np.uint16)
    d[:, : height // 3, :] = 4500
    px = lambda m: int(round(f * m / (z_mm / 1000)))  # noqa: E731 - metres at the body's depth -> pixels
    cu, cv = width // 2, height // 2
    top, bottom = cv - px(0.85), cv + px(0.85)
    for k in range(num_frames):
        d[k, top:bottom, cu - px(0.2) : cu + px(0.2)] = z_mm
        arm_v = cv - px(0.5) + int(px(0.4) * np.sin(k / 3))
        d[k, arm_v : arm_v + px(0.1), cu + px(0.2) : cu + px(0.7)] = z_mm - 150
        d[k, top - px(0.25) : top, cu - px(0.1) : cu + px(0.1)] = z_mm + 30
        noise = rng.integers(-10, 10, size=(height, width)).astype(np.int32)
        d[k] = np.where(d[k] > 0, np.clip(d[k].astype(np.int32) + noise, 1, 65535), 0).astype(np.uint16)
    return d


def write_bin(path: Path, depth_mm: np.ndarray) -> Path:
    """An MSR ``_sdepth.bin`` by hand: int32 frames, columns, rows, then int32 depth row-major, little-endian."""
    f, rows, cols = depth_mm.shape
    path.write_bytes(struct.pack("<3i", f, cols, rows) + depth_mm.astype("<i4").tobytes())
    return path


def write_npz_recording(path: Path, depth_mm: np.ndarray) -> Path:
    np.savez(path, depth_mm=depth_mm)
    return path


# --- test doubles ---------------------------------------------------------------------------------------------
class ArraySource:
    """A ``DepthSource`` over an in-memory ``(frames, H, W)`` array (no pacing)."""

    def __init__(self, depth_mm: np.ndarray, fps: float = 15.0, intrinsics=None):
        from kerasdance.camera import KINECT_V1

        self.depth_mm = depth_mm
        self.fps = fps
        self.intrinsics = intrinsics or KINECT_V1.scaled(depth_mm.shape[2], depth_mm.shape[1])
        self.reconnects = 0
        self.closed = False
        self.opened = False

    def __enter__(self):
        self.opened = True
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.closed = True

    def frames(self) -> Iterator:
        from kerasdance_edge.sources import Frame

        for i, d in enumerate(self.depth_mm):
            yield Frame(d, int(i * 1e6 / self.fps), i)


class FaultySource(ArraySource):
    """Injects faults into an ``ArraySource``.

    Args:
        drop: indices never delivered (index gaps).
        wrong_size: indices delivered at ``wrong_shape``.
        zero: indices delivered as all-zero frames.
        garbage: indices delivered as a 1-D array (unusable: must be skipped).
        interrupt_at: raise ``KeyboardInterrupt`` instead of delivering this index.
        delay_s: sleep before each frame (lets a test stop the run from outside).
    """

    def __init__(self, depth_mm, drop=(), wrong_size=(), zero=(), garbage=(), interrupt_at=None,
                 wrong_shape=(480, 640), delay_s=0.0, **kwargs):
        super().__init__(depth_mm, **kwargs)
        self.drop, self.wrong_size, self.zero, self.garbage = set(drop), set(wrong_size), set(zero), set(garbage)
        self.interrupt_at, self.wrong_shape, self.delay_s = interrupt_at, wrong_shape, delay_s

    def frames(self):
        for frame in super().frames():
            i = frame.index
            if self.delay_s:
                time.sleep(self.delay_s)
            if i == self.interrupt_at:
                raise KeyboardInterrupt
            if i in self.drop:
                continue
            d = frame.depth_mm
            if i in self.wrong_size:
                h, w = self.wrong_shape
                rows = np.arange(h) * d.shape[0] // h
                cols = np.arange(w) * d.shape[1] // w
                d = d[rows][:, cols]
            if i in self.zero:
                d = np.zeros_like(d)
            if i in self.garbage:
                d = np.zeros(7, np.uint16)
            yield frame._replace(depth_mm=d)


class RecordingSink:
    """Collects results; optionally fails on the first ``fail`` sends or raises ``KeyboardInterrupt``."""

    def __init__(self, fail: int = 0, interrupt_after: int | None = None):
        self.results, self.fail, self.interrupt_after = [], fail, interrupt_after
        self.attempts, self.closed = 0, False
        self.lock = threading.Lock()

    def send(self, result) -> None:
        self.attempts += 1
        if self.attempts <= self.fail:
            raise ConnectionRefusedError("receiver is gone")
        if self.interrupt_after is not None and len(self.results) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.results.append(result)

    def close(self) -> None:
        self.closed = True


# --- a fake pyrealsense2 --------------------------------------------------------------------------------------
class FakeRealSense:
    """A module-like stand-in for ``pyrealsense2``: a 640x480 camera that can be unplugged.

    ``unplug_after``: after this many delivered frames, ``wait_for_frames`` raises RuntimeError
    (``unplugged_waits`` times is irrelevant: once unplugged, it keeps raising until restarted) and
    ``pipeline.start`` fails ``failed_starts`` times before the camera is "plugged back".
    """

    def __init__(self, depth_units_m: float = 0.001, unplug_after: int | None = None, failed_starts: int = 0,
                 width: int = 640, height: int = 480):
        self.units, self.unplug_after, self.failed_starts = depth_units_m, unplug_after, failed_starts
        self.width, self.height = width, height
        self.delivered, self.starts, self.stops, self.unplugged = 0, 0, 0, False
        self.enabled: list = []
        fake = self
        self.stream = type("stream", (), {"depth": "depth"})
        self.format = type("format", (), {"z16": "z16"})
        self.frames_mm = person_depth(4, height, width)

        class config:
            def enable_stream(self, *args):
                fake.enabled.append(args)

            def enable_device(self, serial):
                fake.serial = serial

        class pipeline:
            def start(self, cfg):
                fake.starts += 1
                if fake.unplugged and fake.failed_starts > 0:
                    fake.failed_starts -= 1
                    raise RuntimeError("No device connected")
                fake.unplugged = False
                return _Profile(fake)

            def stop(self):
                fake.stops += 1

            def wait_for_frames(self, timeout_ms=5000):
                if fake.unplug_after is not None and fake.delivered == fake.unplug_after and not fake.unplugged:
                    fake.unplugged, fake.unplug_after = True, None
                if fake.unplugged:
                    raise RuntimeError("Frame didn't arrive within 5000")
                k = fake.delivered
                fake.delivered += 1
                raw = (fake.frames_mm[k % len(fake.frames_mm)] / (fake.units * 1000)).astype(np.uint16)
                return _Frameset(raw, k)

        self.config, self.pipeline = config, pipeline


class _Profile:
    def __init__(self, fake):
        self.fake = fake

    def get_device(self):
        units = self.fake.units
        sensor = type("sensor", (), {"get_depth_scale": lambda self: units})()
        return type("device", (), {"first_depth_sensor": lambda self: sensor})()

    def get_stream(self, kind):
        f = self.fake
        intr = type("intrinsics", (), dict(fx=571.26, fy=571.26, ppx=f.width / 2, ppy=f.height / 2,
                                           width=f.width, height=f.height))()
        video = type("video", (), {"get_intrinsics": lambda self: intr})()
        return type("stream_profile", (), {"as_video_stream_profile": lambda self: video})()


class _Frameset:
    def __init__(self, raw, k):
        self.raw, self.k = raw, k

    def get_depth_frame(self):
        raw, k = self.raw, self.k
        return type("depth_frame", (), {"get_data": lambda self: raw, "get_frame_number": lambda self: 1000 + k,
                                        "get_timestamp": lambda self: 33.3 * k, "__bool__": lambda self: True})()


if __name__ == "__main__":
    build(Path(sys.argv[1]))
