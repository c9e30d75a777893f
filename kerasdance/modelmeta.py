"""What travels with an exported model: the sidecar ``MODEL.tflite.json`` (TensorFlow-free).

The sidecar names everything the device needs to feed the model exactly as in training
(T, S, depth normalisation, the whole ``DataConfig``), to read its outputs (class names,
joint names) and to bring key-points back to camera metres (the intrinsics used in
training). It carries the SHA-256 of the ``.tflite`` bytes: ``load_meta`` refuses a
sidecar that does not match its model, so a model and a sidecar from different exports
can never be mixed silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from kerasdance.camera import Intrinsics
from kerasdance.config import SAVED_RUN_ADDED_FIELDS, DataConfig
from kerasdance.errors import ModelFileError

FORMAT = "kerasdance-model"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """Sidecar metadata of an exported model.

    Attributes:
        sha256: hex digest of the ``.tflite`` file's bytes.
        input_mode: ``"depth"`` (input ``(1, T, S, S, C)``) or ``"skeleton"`` (``(1, T, features)``).
        class_names: output ``logits`` order.
        joint_names: output ``keypoints`` joint order (``(1, T, len(joint_names), 3)``, normalised crop frame).
        data: the ``DataConfig`` the model was trained with (as a dict).
        intrinsics: the depth camera of the training data (as a dict).
        quantization: ``float32``, ``float16``, ``dynamic`` or ``int8``.
        unrolled: whether the LSTM was unrolled for export.
        kerasdance_version: the exporting package's version.
        extra: free-form details (e.g. the run directory, QAT / pruning settings).
    """

    sha256: str
    input_mode: str
    class_names: tuple[str, ...]
    joint_names: tuple[str, ...]
    data: dict[str, Any]
    intrinsics: dict[str, Any]
    quantization: str
    unrolled: bool
    kerasdance_version: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION

    @property
    def data_config(self) -> DataConfig:
        # A sidecar written before a preprocessing field existed: the model was trained with that field's old value.
        return DataConfig.from_dict({**SAVED_RUN_ADDED_FIELDS["data"], **self.data})

    @property
    def camera(self) -> Intrinsics:
        return Intrinsics.from_dict(self.intrinsics)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["class_names"], d["joint_names"] = list(self.class_names), list(self.joint_names)
        return d


def sidecar_path(model_path: str | Path) -> Path:
    """``MODEL.tflite`` -> ``MODEL.tflite.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_meta(model_path: str | Path, meta: ModelMeta) -> Path:
    """Write the sidecar next to ``model_path`` (its ``sha256`` must be the model's)."""
    out = sidecar_path(model_path)
    out.write_text(json.dumps(meta.to_dict(), indent=2) + "\n")
    return out


def load_meta(model_path: str | Path, check_hash: bool = True) -> ModelMeta:
    """Read and verify the sidecar of ``model_path``.

    Raises:
        ModelFileError: missing model or sidecar, unreadable JSON, unknown format or version,
            missing fields, or (with ``check_hash``) a sidecar that belongs to other model bytes.
    """
    model_path = Path(model_path)
    side = sidecar_path(model_path)
    if not model_path.exists():
        raise ModelFileError(f"{model_path}: no such model file")
    if not side.exists():
        raise ModelFileError(f"{model_path}: its metadata sidecar {side.name} is missing (export writes both)")
    try:
        d = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{side}: not valid JSON ({e})") from None
    fmt = d.get("format") if isinstance(d, dict) else None
    if fmt != FORMAT:
        raise ModelFileError(f"{side}: not a kerasdance model sidecar (format {fmt!r})")
    if d.get("version") != VERSION:
        raise ModelFileError(f"{side}: sidecar version {d.get('version')!r} is not supported (expected {VERSION})")
    names = {f.name for f in dataclasses.fields(ModelMeta)}
    missing = {f.name for f in dataclasses.fields(ModelMeta) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING} - set(d)
    if missing:
        raise ModelFileError(f"{side}: missing fields {sorted(missing)}")
    try:
        meta = ModelMeta(**{k: (tuple(v) if k in ("class_names", "joint_names") else v)
                            for k, v in d.items() if k in names})
        meta.data_config, meta.camera  # noqa: B018 - validates both
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{side}: invalid field ({e})") from None
    if check_hash:
        actual = file_sha256(model_path)
        if actual != meta.sha256:
            raise ModelFileError(
                f"{model_path}: the model does not match its sidecar (sha256 {actual[:12]}... != "
                f"{str(meta.sha256)[:12]}...): the model or the sidecar was changed or comes from another export")
    return meta
