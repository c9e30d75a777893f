"""Self-training with pseudo-labels (pure functions, separately tested).

A teacher (an exponential moving average of the student) runs with ``training=False``
on weakly augmented unlabelled windows. Its class predictions become pseudo-labels where
they are confident; per-class thresholds (FlexMatch-style "curriculum" thresholds) lower
the bar for classes the teacher rarely predicts confidently, so rare classes are not
drowned by frequent ones. Optionally, distribution alignment (ReMixMatch) rescales the
teacher's probabilities so that their mean over the unlabelled set matches the labelled
class prior: a class the teacher under-predicts can then win the argmax, which a lower
threshold alone cannot give it. The unlabelled loss weight ramps up over the first epochs.

The teacher's key-points are targets on the strong view too (``TrainConfig.keypoint_consistency``); with
"consistent", only the joints where the teacher agrees with itself on two views of one window
(``consistent_joints``) are.
"""

from __future__ import annotations

import numpy as np

from kerasdance.keras_backend import tf
from kerasdance.skeleton import MIRROR


def affine_joints_tf(joints, affine):
    """TF twin of ``pipeline.affine_joints`` with per-example ``affine = (rot, scale, shift_a, shift_b)``: where
    ``(batch, frames, joints, 3)`` crop coordinates land in a window augmented by that affine."""
    affine = tf.convert_to_tensor(affine, tf.float32)
    rot, scale, sa, sb = [affine[:, i][:, None, None] for i in range(4)]
    c, s = tf.cos(rot), tf.sin(rot)
    da, db = joints[..., 0] - sa, joints[..., 1] - sb
    return tf.stack([(c * da + s * db) / scale, (-s * da + c * db) / scale, joints[..., 2]], axis=-1)


def mirror_joints_tf(joints, mirrored):
    """TF twin of ``skeleton.mirror_joints`` applied where ``mirrored`` ``(batch,)`` is non-zero: the column
    coordinate negated and the left and right joints swapped; the other examples unchanged."""
    joints = tf.convert_to_tensor(joints, tf.float32)
    flipped = tf.gather(joints, list(MIRROR), axis=-2) * tf.constant([-1.0, 1.0, 1.0])
    return tf.where(tf.reshape(tf.cast(mirrored, tf.float32), [-1, 1, 1, 1]) > 0, flipped, joints)


def consistent_joints(kp_a, kp_b, tolerance: float, affine_b=None, mirrored_b=None) -> tf.Tensor:
    """Per-joint agreement of the teacher with itself on two views of one window.

    View B is view A mirrored (where ``mirrored_b``) and then augmented by ``affine_b`` (as the sampler makes its
    strong view: ``pipeline.affine_joints``). ``kp_a`` is carried into B's frame the same way and compared with
    ``kp_b``; a joint agrees where the two lie within ``tolerance`` (Euclidean, normalised crop units: 1 is half
    the crop box, ``DataConfig.box_m / 2`` metres). Fixed shapes: usable in a ``tf.function`` step.

    Args:
        kp_a, kp_b: ``(batch, frames, joints, 3)`` teacher key-points on view A and on view B.
        tolerance: largest distance at which two predictions agree.
        affine_b: optional ``(batch, 4)`` ``(rot, scale, shift_a, shift_b)`` from A (mirrored) to B; None: identity.
        mirrored_b: optional ``(batch,)``, non-zero where B is A mirrored left-right; None: no mirror.

    Returns:
        ``(batch, frames, joints)`` float32 mask, 1 where the joint agrees.
    """
    a = tf.convert_to_tensor(kp_a, tf.float32)
    if mirrored_b is not None:
        a = mirror_joints_tf(a, mirrored_b)
    if affine_b is not None:
        a = affine_joints_tf(a, affine_b)
    dist = tf.sqrt(tf.reduce_sum(tf.square(a - tf.convert_to_tensor(kp_b, tf.float32)), axis=-1))
    return tf.cast(dist <= tolerance, tf.float32)


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
