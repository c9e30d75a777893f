"""Self-training with pseudo-labels (pure functions, separately tested).

A teacher (an exponential moving average of the student) runs with ``training=False``
on weakly augmented unlabelled windows. Its class predictions become pseudo-labels where
they are confident; per-class thresholds (FlexMatch-style "curriculum" thresholds) lower
the bar for classes the teacher rarely predicts confidently, so rare classes are not
drowned by frequent ones. Optionally, distribution alignment (ReMixMatch) rescales the
teacher's probabilities so that their mean over the unlabelled set matches the labelled
class prior: a class the teacher under-predicts can then win the argmax, which a lower
threshold alone cannot give it. The unlabelled loss weight ramps up over the first epochs.
"""

from __future__ import annotations

import numpy as np

from kerasdance.keras_backend import tf


def pseudo_label_mask(probs: tf.Tensor, threshold, class_thresholds: tf.Tensor | None = None) -> tf.Tensor:
    """1.0 where the top-class probability reaches its threshold, else 0.0.

    Args:
        probs: ``(batch, classes)`` teacher probabilities.
        threshold: global confidence threshold (used when ``class_thresholds`` is None).
        class_thresholds: optional ``(classes,)`` per-class thresholds, indexed by the
            predicted class.

    Returns:
        ``(batch,)`` float32 mask.
    """
    probs = tf.convert_to_tensor(probs, tf.float32)
    conf = tf.reduce_max(probs, axis=-1)
    if class_thresholds is None:
        thr = tf.cast(threshold, tf.float32)
    else:
        thr = tf.gather(tf.convert_to_tensor(class_thresholds, tf.float32), tf.argmax(probs, axis=-1))
    return tf.cast(conf >= thr, tf.float32)


def class_thresholds(
    confident_counts: np.ndarray, threshold: float, num_unlabelled: int, min_threshold: float = 0.5
) -> np.ndarray:
    """FlexMatch per-class thresholds from how many confident predictions each class got.

    ``beta_c = n_c / max(max_c n_c, n_unused)`` with ``n_unused`` the unlabelled examples no
    class claimed confidently (warm-up: all thresholds start low together), and
    ``T_c = threshold * beta_c / (2 - beta_c)`` (the convex mapping of the paper).

    Args:
        confident_counts: ``(classes,)`` confident pseudo-labels per class in the last epoch.
        threshold: the global threshold tau.
        num_unlabelled: number of unlabelled examples seen in that epoch.
        min_threshold: floor, so that an untrained teacher's guesses are never taken
            at face value (FlexMatch itself starts from 0).

    Returns:
        ``(classes,)`` float32 thresholds in ``[min(min_threshold, threshold), threshold]``.
    """
    counts = np.asarray(confident_counts, dtype=np.float64)
    unused = max(num_unlabelled - counts.sum(), 0.0)
    norm = max(counts.max(initial=0.0), unused, 1.0)
    beta = counts / norm
    thr = threshold * beta / (2.0 - beta)
    return np.maximum(thr, min(min_threshold, threshold)).astype(np.float32)


def alignment_ratio(prior: np.ndarray, mean_probs: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Distribution-alignment factors ``prior / mean_probs`` (ReMixMatch), per class.

    Args:
        prior: ``(classes,)`` class counts (or frequencies) of the labelled sequences.
        mean_probs: ``(classes,)`` the teacher's mean probabilities over the unlabelled sequences.
        floor: lower bound on ``mean_probs``, so that a class the teacher never predicts gets a large but
            finite factor.

    Returns:
        ``(classes,)`` float32 factors; all 1 when the teacher's mean already matches the prior.
    """
    prior = np.asarray(prior, np.float64)
    mean = np.maximum(np.asarray(mean_probs, np.float64), floor)
    return (prior / prior.sum() / (mean / mean.sum())).astype(np.float32)


def align_distribution(probs: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    """``probs * ratio``, renormalised per example: ``(batch, classes)``."""
    p = probs * ratio
    return p / tf.reduce_sum(p, axis=-1, keepdims=True)


def rampup_weight(epoch: float, rampup_epochs: int, max_weight: float = 1.0) -> float:
    """Sigmoid ramp-up ``max_weight * exp(-5 (1 - t)^2)``, t = epoch / rampup_epochs clipped to [0, 1]."""
    if rampup_epochs <= 0:
        return float(max_weight)
    t = min(max(epoch / rampup_epochs, 0.0), 1.0)
    return float(max_weight * np.exp(-5.0 * (1.0 - t) ** 2))
