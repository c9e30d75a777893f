"""Losses of the method, per example (``reduction="none"``) so that OHEM can rank them.

* Soft multi-class Dice on softmax vs one-hot (the V-Net form, squared denominator, so
  that it is not simply ``1 - p_true``), combined with cross-entropy as Dice:CE = 3:1.
* Key-point loss: per-joint Euclidean distance in normalised crop units, masked where the
  target joint is missing; averaged over the valid joints of each example.
"""

from __future__ import annotations

from kerasdance.data.preprocess import cell_centres
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


def heatmap_loss(target: tf.Tensor, heat_logits: tf.Tensor, mask: tf.Tensor, sigma: float | None = None) -> tf.Tensor:
    """Mean over the valid joints of ``KL(q || softmax(heat_logits))``, ``q`` a Gaussian on the heat-map cells
    centred at the target joint's (x, y): a distribution regulariser for soft-argmax key-points (as DSNT's), which
    asks for one peak where the joint is rather than any spread whose mean lands there.

    Args:
        target: ``(batch, frames, joints, 3)`` normalised crop coordinates (x, y used).
        heat_logits: ``(batch, frames, H, W, joints)`` heat-map logits over cells centred at
            ``preprocess.cell_centres``, as ``SoftArgmax2D`` reads them.
        mask: ``(batch, frames, joints)`` 1 where the target is valid.
        sigma: the Gaussian's sd in normalised units; one cell (``2 / W``) when None.

    Returns:
        ``(batch,)``; 0 for an example without any valid joint.
    """
    shape = heat_logits.shape
    H, W = int(shape[2]), int(shape[3])
    sigma = 2.0 / W if sigma is None else sigma
    cols = tf.constant(cell_centres(W), tf.float32)
    rows = tf.constant(cell_centres(H), tf.float32)
    dx = target[..., 0:1] - cols  # (batch, frames, joints, W)
    dy = target[..., 1:2] - rows  # (batch, frames, joints, H)
    logq = -(dy[..., :, None] ** 2 + dx[..., None, :] ** 2) / (2.0 * sigma**2)  # (batch, frames, joints, H, W)
    logq = tf.reshape(logq, tf.concat([tf.shape(logq)[:3], [H * W]], 0))
    logq = tf.nn.log_softmax(logq, axis=-1)
    logp = tf.transpose(tf.reshape(heat_logits, tf.concat([tf.shape(heat_logits)[:2], [H * W, -1]], 0)),
                        [0, 1, 3, 2])  # (batch, frames, joints, H*W)
    logp = tf.nn.log_softmax(logp, axis=-1)
    kl = tf.reduce_sum(tf.exp(logq) * (logq - logp), axis=-1)
    num = tf.reduce_sum(kl * mask, axis=[1, 2])
    return tf.math.divide_no_nan(num, tf.reduce_sum(mask, axis=[1, 2]))
