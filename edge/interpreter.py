"""An exported kerasdance model and its sidecar, as the device runs it.

``EdgeModel`` = ``kerasdance.litert.LiteModel`` (the one TFLite wrapper, shared with export
verification) + the verified sidecar ``MODEL.tflite.json`` (``kerasdance.modelmeta``: T, S, C,
class and joint names, training camera, SHA-256 of the model bytes) + softmax and the optional
flip test.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.config import DataConfig
from kerasdance.errors import ModelFileError
from kerasdance.litert import LiteModel, check_against_meta
from kerasdance.modelmeta import ModelMeta, load_meta
from kerasdance.skeleton import FLIP_TEST_CAVEAT, flip_average, mirror_window

log = logging.getLogger("kerasdance.edge")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max())
    return (z / z.sum()).astype(np.float32)


class EdgeModel:
    """A ``.tflite`` model and its verified sidecar, ready to predict one window at a time.

    Args:
        model_path: ``MODEL.tflite``; ``MODEL.tflite.json`` must lie beside it.
        num_threads: interpreter threads.
        flip_test: ``predict`` averages the key-points with those of the mirrored window (two invocations,
            ``kerasdance.skeleton.flip_average``); the class probabilities stay the window's own. Depth models only.

    Raises:
        ModelFileError: missing model or sidecar, sidecar of other model bytes, a file the
            interpreter cannot load, or a model whose tensors do not match its sidecar.
        ImportError: no interpreter is installed.
    """

    def __init__(self, model_path: str | Path, num_threads: int = 1, flip_test: bool = False):
        self.path = Path(model_path)
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1. Received: num_threads={num_threads!r}")
        self.meta: ModelMeta = load_meta(self.path)
        if flip_test and self.meta.input_mode != "depth":
            raise ModelFileError(f"{self.path} takes skeletons and predicts no key-points: the flip test does not "
                                 "apply")
        self.flip_test = flip_test
        if flip_test and not self.meta.extra.get("mirror_augment", False):  # False or not recorded (older exports)
            log.warning(FLIP_TEST_CAVEAT.format(what=self.path))
        self.data_config: DataConfig = self.meta.data_config
        self.intrinsics: Intrinsics = self.meta.camera
        self.class_names: tuple[str, ...] = tuple(self.meta.class_names)
        self.joint_names: tuple[str, ...] = tuple(self.meta.joint_names)
        self.input_mode: str = self.meta.input_mode
        self.lite = LiteModel(self.path, num_threads)
        check_against_meta(self.lite, self.meta)
        #: Milliseconds of the last ``predict``'s interpreter calls (quantisation included; two with the flip test).
        self.last_invoke_ms = 0.0

    @property
    def frames(self) -> int:
        return self.data_config.frames

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The window shape ``predict`` takes (no batch axis): ``(T, S, S, C)`` or ``(T, features)``."""
        return self.lite.input_shape[1:]

    @property
    def input_dtype(self) -> np.dtype:
        return self.lite.input_dtype

    def predict(self, window: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Run one window.

        Args:
            window: ``(T, S, S, C)`` (depth) or ``(T, features)`` (skeleton) float, with or without a batch axis of 1.

        Returns:
            ``(keypoints, probs)``: ``(T, J, 3)`` float32 key-points in normalised crop coordinates (None for a
            skeleton model) and ``(classes,)`` float32 softmax probabilities.

        Raises:
            ValueError: a window of the wrong shape.
        """
        x = np.asarray(window, dtype=np.float32)
        if x.shape == (1, *self.input_shape):
            x = x[0]
        if x.shape != self.input_shape:
            raise ValueError(f"window must be {self.input_shape}. Received: shape={x.shape}")
        out = self.lite.predict(x)
        kp, invoke_ms = out.get("keypoints"), self.lite.last_invoke_ms
        if self.flip_test and kp is not None:
            kp = flip_average(kp, self.lite.predict(mirror_window(x))["keypoints"])
            invoke_ms += self.lite.last_invoke_ms
        self.last_invoke_ms = invoke_ms
        return kp, _softmax(out["logits"])

    def __repr__(self) -> str:
        return (f"EdgeModel({str(self.path)!r}, input={self.input_shape} {self.input_dtype}, "
                f"classes={len(self.class_names)}, quantization={self.meta.quantization!r})")
