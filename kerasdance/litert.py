"""The one TFLite wrapper: an exported model on the LiteRT interpreter, numpy only (no TensorFlow).

Export verification (``kerasdance.export``) and the device (``kerasdance_edge``) both run their
``.tflite`` files through ``LiteModel``, so the export is checked with exactly what the device runs.

The model contract (written by ``kerasdance export``): one input, float32 or integer (with
quantisation parameters), ``(1, T, S, S, C)`` depth windows (skeleton mode: ``(1, T, features)``);
outputs recognised by their rank, not their names: rank 4 is the key-points ``(1, T, J, 3)`` in
normalised crop coordinates, rank 2 the logits ``(1, classes)``. ``check_against_meta`` checks
those shapes against the sidecar (``kerasdance.modelmeta``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from kerasdance.errors import ModelFileError
from kerasdance.modelmeta import ModelMeta

log = logging.getLogger("kerasdance.litert")

#: Output rank -> output name.
OUTPUT_RANKS = {4: "keypoints", 2: "logits"}


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


def degenerate_tensors(path: str | Path, min_scale: float = 1e-6) -> list[str]:
    """Names of the int8 tensors whose quantisation scale is below ``min_scale`` (a calibrated range of ~0).

    Such a tensor comes from a layer whose outputs were all (nearly) zero on every calibration window; the
    XNNPACK delegate that ai-edge-litert applies by default refuses the model then ("failed to prepare").
    Empty when the model cannot be read without delegates, or without ai-edge-litert.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (ImportError, ValueError, RuntimeError):
        return []
    out = []
    for d in interp.get_tensor_details():
        scale = d["quantization"][0]
        if np.dtype(d["dtype"]) == np.int8 and 0.0 < scale < min_scale:
            out.append(d["name"].split(";")[0])
    return out


class LiteModel:
    """A ``.tflite`` file on the interpreter, one window at a time, integer (de)quantisation handled.

    Args:
        path: the ``.tflite`` file.
        num_threads: interpreter threads.

    Raises:
        ModelFileError: a file the interpreter cannot load, not one input, no logits output.
        ImportError: no interpreter is installed.
    """

    def __init__(self, path: str | Path, num_threads: int = 1):
        self.path = Path(path)
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1. Received: num_threads={num_threads!r}")
        Interpreter = interpreter_class()
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            dead = degenerate_tensors(self.path)
            hint = (f"; int8 tensors with a calibrated range of ~0 (dead layers: all their outputs were 0 on the "
                    f"calibration windows), which XNNPACK refuses: {dead}") if dead else ""
            raise ModelFileError(f"{self.path}: the interpreter cannot load this model ({e}){hint}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input tensor. Received: {len(inputs)} inputs")
        self.input = inputs[0]
        self.outputs: dict[str, dict] = {}
        for d in self.interpreter.get_output_details():
            key = OUTPUT_RANKS.get(len(d["shape"]))
            if key is not None and key not in self.outputs:
                self.outputs[key] = d
        if "logits" not in self.outputs:
            raise ModelFileError(f"{self.path}: no logits output (a rank-2 tensor (1, classes))")
        #: Milliseconds of the last ``predict``'s interpreter call (input quantisation and output reads included).
        self.last_invoke_ms = 0.0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input tensor's shape, batch axis included: ``(1, T, S, S, C)`` or ``(1, T, features)``."""
        return tuple(int(s) for s in self.input["shape"])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input["dtype"])

    def output_shape(self, key: str) -> tuple[int, ...] | None:
        """The shape of output ``key`` (``"logits"`` or ``"keypoints"``), None when the model has none."""
        d = self.outputs.get(key)
        return None if d is None else tuple(int(s) for s in d["shape"])

    def _scale(self, detail: dict, what: str) -> tuple[float, int]:
        scale, zero = detail["quantization"]
        if not scale:
            raise ModelFileError(f"{self.path}: {np.dtype(detail['dtype'])} {what} without quantisation parameters")
        return scale, zero

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """A float window as the input tensor's dtype (integer inputs: with the tensor's scale and zero point)."""
        dtype = self.input_dtype
        if not np.issubdtype(dtype, np.integer):
            return np.asarray(x, dtype)
        scale, zero = self._scale(self.input, "input")
        info = np.iinfo(dtype)
        return np.clip(np.round(np.asarray(x, np.float32) / scale + zero), info.min, info.max).astype(dtype)

    def output(self, key: str) -> np.ndarray:
        """Output ``key`` of the last invocation as float32 (integer outputs dequantised), batch axis kept."""
        d = self.outputs[key]
        y = self.interpreter.get_tensor(d["index"])
        if np.issubdtype(y.dtype, np.integer):
            scale, zero = self._scale(d, f"output {key!r}")
            return (y.astype(np.float32) - zero) * np.float32(scale)
        return y.astype(np.float32)

    def predict(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """One window without batch axis -> ``{"logits": (classes,), "keypoints": (T, J, 3)?}`` float32.

        Every window starts from zero LSTM state: the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` keeps its hidden and
        cell state in variable tensors that survive an ``invoke`` (a second invoke on the same window differs
        from Keras), so they are reset first, as in Keras; unrolled exports have none and the reset is a no-op.
        """
        t0 = time.perf_counter()
        self.interpreter.reset_all_variables()
        self.interpreter.set_tensor(self.input["index"], self.quantize(window)[None])
        self.interpreter.invoke()
        out = {k: self.output(k)[0] for k in self.outputs}
        self.last_invoke_ms = (time.perf_counter() - t0) * 1000.0
        return out


def check_against_meta(model: LiteModel, meta: ModelMeta) -> None:
    """Check a loaded model's tensors against its sidecar: input ``(1, T, S, S, C)`` / ``(1, T, features)``,
    logits ``(1, classes)``, and for depth models key-points ``(1, T, J, 3)``.

    Raises:
        ModelFileError: naming what does not match (model and sidecar do not belong together).
    """
    cfg, path = meta.data_config, model.path
    if meta.input_mode == "depth":
        want, what = (1, cfg.frames, cfg.crop_size, cfg.crop_size, cfg.channels), "(1, T, S, S, C)"
    else:
        want, what = (1, cfg.frames, cfg.skeleton_features), "(1, T, features)"
    if model.input_shape != want:
        raise ModelFileError(
            f"{path}: the model's input shape {model.input_shape} does not match its sidecar's {what} = {want} "
            f"({meta.input_mode}, T={cfg.frames}, S={cfg.crop_size}, C={cfg.channels}): model and sidecar do not "
            "belong together")
    n = model.output_shape("logits")[-1]
    if n != len(meta.class_names):
        raise ModelFileError(f"{path}: the model has {n} classes but its sidecar names {len(meta.class_names)} "
                             f"class names: {list(meta.class_names)!r}")
    if meta.input_mode == "depth":
        kshape = model.output_shape("keypoints")
        if kshape is None:
            raise ModelFileError(f"{path}: a depth model needs a key-points output (1, T, J, 3)")
        if kshape != (1, cfg.frames, len(meta.joint_names), 3):
            raise ModelFileError(f"{path}: key-points output {kshape} does not match the sidecar's "
                                 f"(1, {cfg.frames}, {len(meta.joint_names)}, 3)")
