"""An exported kerasdance model on the LiteRT interpreter.

The model contract (written by ``kerasdance export``): ``MODEL.tflite`` with one input, float32 or
int8 (with quantisation parameters), ``(1, T, S, S, C)`` depth windows (skeleton mode:
``(1, T, features)``); outputs recognised by their rank, not their names: rank 4 is the key-points
``(1, T, J, 3)`` in normalised crop coordinates, rank 2 the logits ``(1, classes)``. The sidecar
``MODEL.tflite.json`` (``kerasdance.modelmeta``) gives T, S, C, the class and joint names and the
training camera, and pins the model's SHA-256.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.config import DataConfig
from kerasdance.errors import ModelFileError
from kerasdance.modelmeta import ModelMeta, load_meta
from kerasdance.skeleton import FLIP_TEST_CAVEAT, flip_average, mirror_window

log = logging.getLogger("kerasdance.edge")


def interpreter_class():
    """The interpreter class: ``ai_edge_litert`` (LiteRT), else ``tflite_runtime``.

    Raises:
        ImportError: neither is installed (the message says what to install).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ImportError("no TFLite interpreter found: pip install kerasdance[edge] "
                              "(ai-edge-litert; tflite-runtime also works for float models)") from None
        log.info("ai_edge_litert not found; using tflite_runtime (float and int8 exports only)")
    return Interpreter


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
        Interpreter = interpreter_class()
        try:
            self._interp = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{self.path}: the interpreter cannot load this model ({e})") from None
        self._check_tensors()
        #: Milliseconds of the last ``predict``'s interpreter calls (quantisation included; two with the flip test).
        self.last_invoke_ms = 0.0

    # --- tensors --------------------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.data_config.frames

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The window shape ``predict`` takes (no batch axis): ``(T, S, S, C)`` or ``(T, features)``."""
        cfg = self.data_config
        if self.input_mode == "depth":
            return (cfg.frames, cfg.crop_size, cfg.crop_size, cfg.channels)
        return (cfg.frames, cfg.skeleton_features)

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    def _check_tensors(self) -> None:
        inputs = self._interp.get_input_details()
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input tensor. Received: {len(inputs)} inputs")
        self._input = inputs[0]
        want = (1, *self.input_shape)
        got = tuple(int(s) for s in self._input["shape"])
        if got != want:
            what = "(1, T, S, S, C)" if self.input_mode == "depth" else "(1, T, features)"
            raise ModelFileError(
                f"{self.path}: the model's input shape {got} does not match its sidecar's {what} = {want} "
                f"(T={self.data_config.frames}, S={self.data_config.crop_size}, C={self.data_config.channels}): "
                "model and sidecar do not belong together")
        self._keypoints = self._logits = None
        for d in self._interp.get_output_details():
            rank = len(d["shape"])
            if rank == 4 and self._keypoints is None:
                self._keypoints = d
            elif rank == 2 and self._logits is None:
                self._logits = d
        if self._logits is None:
            raise ModelFileError(f"{self.path}: no logits output (a rank-2 tensor (1, classes))")
        n = int(self._logits["shape"][-1])
        if n != len(self.class_names):
            raise ModelFileError(f"{self.path}: the model has {n} classes but its sidecar names "
                                 f"{len(self.class_names)}: {list(self.class_names)!r}")
        if self.input_mode == "depth":
            if self._keypoints is None:
                raise ModelFileError(f"{self.path}: a depth model needs a key-points output (1, T, J, 3)")
            kshape = tuple(int(s) for s in self._keypoints["shape"])
            if kshape != (1, self.frames, len(self.joint_names), 3):
                raise ModelFileError(f"{self.path}: key-points output {kshape} does not match the sidecar's "
                                     f"(1, {self.frames}, {len(self.joint_names)}, 3)")

    # --- inference ------------------------------------------------------------------------------------------
    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if dtype == np.float32:
            return x.astype(np.float32)
        scale, zero = self._input["quantization"]
        if not scale:
            raise ModelFileError(f"{self.path}: {dtype} input without quantisation parameters")
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)

    def _output(self, detail) -> np.ndarray:
        y = self._interp.get_tensor(detail["index"])
        if np.dtype(detail["dtype"]) in (np.int8, np.uint8, np.int16):
            scale, zero = detail["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

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
        t0 = time.perf_counter()
        kp, logits = self._invoke(x)
        if self.flip_test and kp is not None:
            kp = flip_average(kp, self._invoke(mirror_window(x))[0])
        self.last_invoke_ms = (time.perf_counter() - t0) * 1000.0
        return kp, _softmax(logits)

    def _invoke(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """One interpreter call on one window: ``(keypoints or None, logits)``."""
        # A fused LSTM keeps its h/c state in TFLite variable tensors that survive invoke(): every window
        # must start from zero state, as in training (a no-op for unrolled exports).
        self._interp.reset_all_variables()
        self._interp.set_tensor(self._input["index"], self._quantize(x)[None])
        self._interp.invoke()
        kp = self._output(self._keypoints)[0] if self._keypoints is not None else None
        return kp, self._output(self._logits)[0]

    def __repr__(self) -> str:
        return (f"EdgeModel({str(self.path)!r}, input={self.input_shape} {self.input_dtype}, "
                f"classes={len(self.class_names)}, quantization={self.meta.quantization!r})")
