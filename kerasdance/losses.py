"""Losses of the method, per example (``reduction="none"``) so that OHEM can rank them.

* Soft multi-class Dice on softmax vs one-hot (the V-Net form, squared denominator, so
  that it is not simply ``1 - p_true``), combined with cross-entropy as Dice:CE = 3:1.
* Key-point loss: per-joint Euclidean distance in normalised crop units, masked where the
  target joint is missing; averaged over the valid joints of each example.
"""

from __future__ import annotations

from kerasdance.keras_backend import tf

_EPS = 1e-6


def soft_dice_loss(onehot: tf.Tensor, probs: tf.Tensor) -> tf.Tensor:
    """Per-example soft Dice loss ``1 - 2 sum(p*y) / (sum(p^2) + sum(y^2))``.

    Args:
        onehot: ``(batch, classes)`` targets (one-hot or soft).
        probs: ``(batch, classes)`` softmax probabilities.

    Returns:
        ``(batch,)`` losses in [0, 1].
    """
    inter = tf.reduce_sum(onehot * probs, axis=-1)
    denom = tf.reduce_sum(probs * probs, axis=-1) + tf.reduce_sum(onehot * onehot, axis=-1)
    return 1.0 - (2.0 * inter + _EPS) / (denom + _EPS)


def cross_entropy(onehot: tf.Tensor, logits: tf.Tensor, label_smoothing: float = 0.0) -> tf.Tensor:
    """Per-example softmax cross-entropy, optionally label-smoothed: ``(batch,)``."""
    if label_smoothing:
        n = tf.cast(tf.shape(onehot)[-1], onehot.dtype)
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / n
    return tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits)


def dice_ce_loss(
    onehot: tf.Tensor, logits: tf.Tensor, dice_weight: float = 3.0, ce_weight: float = 1.0, label_smoothing: float = 0.0
) -> tf.Tensor:
    """Per-example ``dice_weight * Dice + ce_weight * CE`` (the method's 3:1): ``(batch,)``."""
    probs = tf.nn.softmax(logits, axis=-1)
    return dice_weight * soft_dice_loss(onehot, probs) + ce_weight * cross_entropy(onehot, logits, label_smoothing)


def keypoint_loss(target: tf.Tensor, pred: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean per-joint Euclidean error over the valid joints of each example.

    Args:
        target, pred: ``(batch, frames, joints, 3)`` normalised crop coordinates.
        mask: ``(batch, frames, joints)`` 1 where the target is valid.

    Returns:
        ``(batch,)``; 0 for an example without any valid joint.
    """
    dist = tf.sqrt(tf.reduce_sum(tf.square(pred - target), axis=-1) + _EPS)
    num = tf.reduce_sum(dist * mask, axis=[1, 2])
    den = tf.reduce_sum(mask, axis=[1, 2])
    return tf.math.divide_no_nan(num, den)
