"""SavedModel -> ``.tflite`` with builtin ops only, run in a child process.

::

    python -m kerasdance.export.convert SAVED_MODEL OUT.tflite --format int8 --calibration windows.npy

The converter is given ``TFLITE_BUILTINS`` (plus ``TFLITE_BUILTINS_INT8`` for int8) and nothing else,
so a model that would need a Flex or custom op fails here, loudly, instead of producing a file that no
edge interpreter can run. Full-integer calibration can crash the whole converter process (SIGSEGV),
so ``convert_in_subprocess`` runs the conversion in a child and turns a
crash, an error or a timeout into a ``ConversionError`` naming the format and the reason.

Formats:
    ``float32``: no optimisation. ``float16``: float16 weights (dequantised at load).
    ``dynamic``: int8 weights, float activations (dynamic-range quantisation).
    ``int8``: full integer with int8 input and output, calibrated on representative windows.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kerasdance.errors import KerasdanceError

log = logging.getLogger("kerasdance.export")

FORMATS = ("float32", "float16", "dynamic", "int8")
#: The child writes its one-line error summary after this marker on stderr.
ERROR_MARK = "kerasdance-convert-error: "
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the kerasdance package


class ConversionError(KerasdanceError):
    """The TFLite converter refused the model, crashed or did not finish."""


# --- in the child ---------------------------------------------------------------------------------------------
def convert_saved_model(saved_model_dir: str | Path, fmt: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert a fixed-shape SavedModel (its ``serve``/default signature) in this process.

    Args:
        saved_model_dir: a SavedModel with one fixed-shape signature (batch 1).
        fmt: one of ``FORMATS``.
        calibration: int8 only: representative inputs ``(n, *input_shape_without_batch)``.

    Returns:
        The ``.tflite`` flatbuffer.

    Raises:
        ValueError: unknown format, or int8 without calibration windows.
        ConversionError: the model contains ops outside the TFLite builtins.
        Exception: whatever the converter raises (``ConverterError``).
    """
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ValueError(f"Unknown format. Received: format={fmt!r}; valid: {list(FORMATS)}")
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if fmt != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if fmt == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 conversion needs representative windows (calibration is empty)")
        windows = np.asarray(calibration, np.float32)
        conv.representative_dataset = lambda: ([w[None]] for w in windows)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    conv.target_spec.supported_ops = ops
    content = conv.convert()
    bad = non_builtin_ops(content)
    if bad:
        raise ConversionError(f"the converted model contains non-builtin ops {bad}: no edge interpreter can run it")
    return content


def model_ops(content: bytes) -> dict[str, int]:
    """The operators of a ``.tflite`` flatbuffer: ``{name: highest version}`` (custom ops by their code)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out: dict[str, int] = {}
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            name = "CUSTOM:" + (oc.CustomCode() or b"?").decode()
        else:
            name = names.get(code, f"BUILTIN_{code}")
        out[name] = max(out.get(name, 0), int(oc.Version()))
    return dict(sorted(out.items()))


def non_builtin_ops(content: bytes) -> list[str]:
    """Custom (e.g. ``Flex...``) operators of a flatbuffer; empty for a builtin-only model."""
    return [name for name in model_ops(content) if name.startswith("CUSTOM:")]


def summarize_converter_error(text: str) -> str:
    """One line out of the converter's MLIR diagnostics: the ops it could not map, or its first errors."""
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)))
    if ops:
        return (f"the model uses ops outside the TFLite builtins: {', '.join(ops)} (kerasdance converts with "
                "TFLITE_BUILTINS only, because a Flex/custom op would fail on the device)")
    errors = []
    for line in text.splitlines():
        if "error:" in line:
            msg = line.rsplit("error:", 1)[1].strip()
            if msg and msg not in errors:
                errors.append(msg)
    first = text.strip().splitlines()[0] if text.strip() else "no message"
    return "; ".join(errors[:3])[:600] if errors else first[:600]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child: convert, write the file atomically, exit 0; or print the error and exit 2."""
    p = argparse.ArgumentParser(prog="python -m kerasdance.export.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("saved_model", help="fixed-shape SavedModel folder")
    p.add_argument("out", help="the .tflite file to write")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--calibration", default=None, help=".npy of representative windows (int8)")
    a = p.parse_args(argv)
    try:
        calibration = np.load(a.calibration, allow_pickle=False) if a.calibration else None
        content = convert_saved_model(a.saved_model, a.format, calibration)
        tmp = Path(a.out + ".partial")
        tmp.write_bytes(content)
        os.replace(tmp, a.out)
    except Exception as e:  # noqa: BLE001 - the parent turns this line into a ConversionError
        text = str(e)
        summary = text if isinstance(e, ConversionError | ValueError) else summarize_converter_error(text)
        sys.stderr.write("\n" + ERROR_MARK + f"{type(e).__name__}: {summary}".replace("\n", " ") + "\n")
        return 2
    return 0


# --- in the parent --------------------------------------------------------------------------------------------
def save_fixed_signature(model, saved_model_dir: str | Path, batch_size: int = 1) -> Path:
    """Save a Keras model as a SavedModel whose one signature is its inference pass on a fixed batch.

    Like ``Model.export`` but silent and with the batch dimension fixed to ``batch_size`` (an LSTM with a
    dynamic batch does not convert); tf-keras' LSTM keeps its ``api_implements`` marker, so the converter
    still fuses it into ``UNIDIRECTIONAL_SEQUENCE_LSTM`` when it is not unrolled.
    """
    import tensorflow as tf

    specs = [tf.TensorSpec((batch_size, *t.shape[1:]), t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    if any(d is None for s in specs for d in s.shape):
        raise ValueError(f"the export model needs a fully fixed input shape. Received: {[s.shape for s in specs]}")
    serve = tf.function(lambda *xs: model(xs[0] if len(xs) == 1 else list(xs), training=False),
                        input_signature=specs)
    module = tf.Module()
    module.weights = list(model.weights)  # track the variables only: saving the Keras object graph is slow
    module.serve = serve
    tf.saved_model.save(module, str(saved_model_dir), signatures={"serving_default": serve.get_concrete_function()})
    return Path(saved_model_dir)


def _child_command(args: list[str]) -> list[str]:
    """The child's command line (a seam for tests that simulate a crashing converter)."""
    return [sys.executable, "-m", "kerasdance.export.convert", *args]


def _tail(text: str, lines: int = 4) -> str:
    keep = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(keep[-lines:])[-800:] if keep else "(no output)"


def convert_in_subprocess(saved_model_dir: str | Path, out_path: str | Path, fmt: str,
                          calibration: np.ndarray | None = None, timeout_s: float = 1800.0) -> Path:
    """Convert in a child process; the previous ``out_path`` (if any) is only replaced on success.

    Args:
        saved_model_dir: fixed-shape SavedModel (batch 1).
        out_path: the ``.tflite`` file to write.
        fmt: one of ``FORMATS``.
        calibration: int8 only: representative inputs ``(n, *input_shape_without_batch)``.
        timeout_s: give up after this many seconds.

    Returns:
        ``out_path``.

    Raises:
        ValueError: unknown format.
        ConversionError: the converter refused the model (the message names the reason, e.g. the non-builtin
            ops), crashed (the message names the signal), or timed out.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format. Received: format={fmt!r}; valid: {list(FORMATS)}")
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="kerasdance-convert-") as tmp:
        tmp_out = Path(tmp) / "model.tflite"
        args = [str(saved_model_dir), str(tmp_out), "--format", fmt]
        if calibration is not None:
            np.save(Path(tmp) / "calibration.npy", np.asarray(calibration, np.float32))
            args += ["--calibration", str(Path(tmp) / "calibration.npy")]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        log.info("converting %s to %s in a child process", saved_model_dir, fmt)
        try:
            proc = subprocess.run(_child_command(args), capture_output=True, text=True, timeout=timeout_s, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"TFLite conversion to {fmt} did not finish within {timeout_s:.0f} s") from None
        rc = proc.returncode
        if rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
            raise ConversionError(
                f"the TFLite converter crashed ({sig}) while converting to {fmt}; no model was written. "
                f"Last output: {_tail(proc.stderr)}")
        if rc != 0:
            marked = [ln[len(ERROR_MARK):] for ln in proc.stderr.splitlines() if ln.startswith(ERROR_MARK)]
            reason = marked[-1] if marked else f"exit status {rc}: {_tail(proc.stderr)}"
            raise ConversionError(f"TFLite conversion to {fmt} failed: {reason}")
        if not tmp_out.exists():
            raise ConversionError(f"TFLite conversion to {fmt} exited cleanly but wrote no model")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp_out), out_path)
    return out_path


if __name__ == "__main__":
    raise SystemExit(main())
