"""Predict one recording with a trained run: the action (with confidence) and per-frame joints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data import msr
from kerasdance.data import preprocess as pp
from kerasdance.data.dataset import DEFAULT_FPS, recording_meta
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError, KerasdanceError
from kerasdance.models.lstm_cnn import load_model
from kerasdance.skeleton import FLIP_TEST_CAVEAT, flip_average, mirror_window

log = logging.getLogger("kerasdance.predict")


def load_recording(path: str | Path) -> Sequence:
    """One recording from an MSR-Action3D file (``*_sdepth.bin``, ``*_skeleton3D.txt``...) or a generic ``.npz``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                depth = z["depth_mm"]
                joints = z["joints_m"].astype(np.float32) if "joints_m" in z.files else None
                frame_labels = z["frame_labels"].astype(np.int64) if "frame_labels" in z.files else None
        except (KeyError, ValueError, OSError) as e:
            raise DataFormatError(f"{path}: not a kerasdance .npz sequence ({e})") from None
        intr, fps = recording_meta(path)
        return Sequence(path.stem, depth.astype(np.uint16), joints, intrinsics=intr, fps=fps,
                        frame_labels=frame_labels)
    name = msr.parse_name(path)
    stem = path.parent / msr.format_name(name.action, name.subject, name.episode, "")
    return msr.load_msr_sequence(Path(str(stem).rstrip("_")))


def load_run(run_dir: str | Path):
    """``(RunConfig, class names, model)`` of a run folder, the model loaded for inference.

    Raises:
        FileNotFoundError: no ``model.keras`` / ``config.json`` / ``classes.json``.
    """
    run_dir = Path(run_dir)
    for name in ("model.keras", "config.json", "classes.json"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} has no {name}: is it a kerasdance run folder?")
    cfg = RunConfig.of_run(run_dir)
    class_names = json.loads((run_dir / "classes.json").read_text())
    return cfg, [str(c) for c in class_names], load_model(run_dir / "model.keras")


def check_flip_test(cfg: RunConfig, run_dir) -> None:
    """Refuse the flip test for a skeleton-input run (it predicts no key-points); warn for a run not trained with
    mirrored windows (``skeleton.FLIP_TEST_CAVEAT``)."""
    if cfg.model.input_mode != "depth":
        raise KerasdanceError(f"{run_dir} takes skeletons and predicts no key-points: the flip test does not apply")
    if not cfg.train.mirror_augment:
        log.warning(FLIP_TEST_CAVEAT.format(what=run_dir))


def predict_sequence(run_dir: str | Path, seq: Sequence, flip_test: bool = False) -> dict:
    """Run a trained run's model on a whole sequence.

    ``flip_test``: the joints are averaged with those of the mirrored window (``skeleton.flip_average``).

    Returns:
        ``{"label", "class_name", "confidence", "probs", "joints_m" (T, 20, 3) or None, "frame_index" (T,)}``.
    """
    cfg, class_names, model = load_run(run_dir)
    if flip_test:
        check_flip_test(cfg, run_dir)
    moves = 0 if seq.frame_labels is None else len({int(v) for v in seq.frame_labels if v >= 0})
    if moves > 1 or seq.num_frames > 4 * cfg.data.frames / DEFAULT_FPS * seq.fps:
        log.warning("%s: %s; predict gives one move for the whole recording. For the move frame by frame, replay it "
                    "through the tracker: kerasdance-edge track --model MODEL.tflite --source FILE",
                    seq.name, f"its per-frame labels hold {moves} moves" if moves > 1 else
                    f"it lasts {seq.num_frames / seq.fps:.1f} s, over 4 of the model's windows")
    keep = np.flatnonzero(seq.depth_valid) if seq.depth_mm is not None else np.arange(seq.num_frames)
    if keep.size == 0:
        raise DataFormatError(f"{seq.name}: every depth frame is empty")
    idx = keep[pp.window_indices(keep.size, cfg.data)]
    if cfg.model.input_mode == "depth":
        if seq.depth_mm is None:
            raise DataFormatError(f"{seq.name}: a depth model needs a depth file")
        crop = pp.find_crop(seq.depth_mm[keep], seq.intrinsics, cfg.data)
        x = pp.make_window(seq.depth_mm, idx, cfg.data, crop=crop)[None]
    else:
        if seq.joints_m is None:
            raise DataFormatError(f"{seq.name}: a skeleton model needs a skeleton file")
        x = pp.skeleton_features(seq.joints_m[idx], cfg.data)[None]
    out = model(x, training=False)
    logits = np.asarray(out["logits"])[0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    k = int(np.argmax(probs))
    joints = None
    if "keypoints" in out:
        kp = np.asarray(out["keypoints"])[0]
        if flip_test:
            kp = flip_average(kp, np.asarray(model(mirror_window(x), training=False)["keypoints"])[0])
        joints = pp.crop_to_camera(kp, crop, seq.intrinsics, cfg.data)
    return {"label": k, "class_name": class_names[k], "confidence": float(probs[k]), "probs": probs,
            "joints_m": joints, "frame_index": idx}
