"""Windows -> predictions: what evaluation, export verification and the benchmarks run.

The evaluation windows of a prepared split are each sequence resampled whole to ``T`` frames, no
augmentation, built by the one window assembly (``preprocess.make_window`` through
``pipeline.WindowSampler``). ``predict_windows`` runs a Keras model over them in batches; an
exported model runs them one window at a time through ``kerasdance.litert`` (see
``kerasdance.export.verify.run_tflite``). Nothing here imports TensorFlow: the model is passed in.
"""

from __future__ import annotations

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data.pipeline import Prepared, WindowSampler
from kerasdance.skeleton import flip_average, mirror_window


def eval_sampler(prepared: Prepared, cfg: RunConfig) -> WindowSampler:
    """The sampler of ``prepared``'s evaluation windows (no augmentation)."""
    return WindowSampler(prepared, cfg.data, cfg.model.input_mode, augment=None)


def eval_windows(prepared: Prepared, cfg: RunConfig) -> np.ndarray:
    """Every evaluation window of ``prepared``: ``(n, T, S, S, C)`` (depth) or ``(n, T, features)`` float32."""
    return eval_sampler(prepared, cfg).eval_windows()["x"]


def predict_windows(model, sampler: WindowSampler, batch_size: int = 32, flip_test: bool = False
                    ) -> dict[str, np.ndarray]:
    """Run a Keras ``model`` on every evaluation window of ``sampler`` (no augmentation).

    Args:
        model: a callable ``model(x, training=False) -> {"logits", "keypoints"?}`` (a kerasdance Keras model).
        sampler: the windows' sampler (``eval_sampler``).
        batch_size: windows per call.
        flip_test: the key-points are ``skeleton.flip_average``'s of each window and its mirror (two passes);
            the class scores stay those of the window as it is (a move's side can be what names it).

    Returns:
        ``{"logits": (n, classes), "keypoints": (n, T, J, 3)?}`` numpy arrays.
    """
    outs: dict[str, list] = {}
    n = len(sampler.data)
    for b0 in range(0, n, batch_size):
        b = sampler.batch(np.arange(b0, min(n, b0 + batch_size)))
        res = {k: np.asarray(v) for k, v in model(b["x"], training=False).items()}
        if flip_test and "keypoints" in res:
            mirrored = np.asarray(model(mirror_window(b["x"]), training=False)["keypoints"])
            res["keypoints"] = flip_average(res["keypoints"], mirrored)
        for k, v in res.items():
            outs.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in outs.items()}


def predict_prepared(model, prepared: Prepared, cfg: RunConfig, batch_size: int = 32, flip_test: bool = False
                     ) -> dict[str, np.ndarray]:
    """``predict_windows`` over ``prepared``'s evaluation windows."""
    return predict_windows(model, eval_sampler(prepared, cfg), batch_size, flip_test)
