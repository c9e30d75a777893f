"""Online hard-example mining (OHEM): keep only the hardest examples of each batch."""

from __future__ import annotations

from kerasdance.keras_backend import tf


def select_hard_examples(
    per_example_loss: tf.Tensor, fraction: float, min_count: int = 1, valid: tf.Tensor | None = None
) -> tf.Tensor:
    """Weights that keep the hardest ``fraction`` of the valid examples.

    ``k = clip(ceil(fraction * n_valid), min(min_count, n_valid), n_valid)``; the ``k``
    valid examples with the largest loss get weight 1, every other example 0. Ties are
    broken by position (the earlier example wins), so the result is deterministic.

    Args:
        per_example_loss: ``(batch,)`` losses computed with ``reduction="none"``.
        fraction: share of the valid examples to keep, in (0, 1].
        min_count: keep at least this many (when that many are valid).
        valid: ``(batch,)`` 1/0 (or bool): which examples can be chosen at all (e.g. labelled
            or with a confident pseudo-label). All, when None.

    Returns:
        ``(batch,)`` float32 weights in {0, 1}.
    """
    loss = tf.convert_to_tensor(per_example_loss, tf.float32)
    if valid is None:
        valid = tf.ones_like(loss)
    valid = tf.cast(valid, tf.float32)
    n_valid = tf.reduce_sum(valid)
    k = tf.math.ceil(fraction * n_valid)
    k = tf.clip_by_value(tf.maximum(k, float(min_count)), 0.0, n_valid)
    # Rank valid examples by loss (descending); invalid ones sink below every valid one.
    score = tf.where(valid > 0, loss, tf.fill(tf.shape(loss), -float("inf")))
    order = tf.argsort(score, direction="DESCENDING", stable=True)
    ranks = tf.scatter_nd(order[:, None], tf.range(tf.size(loss)), tf.shape(loss))
    return tf.cast(tf.cast(ranks, tf.float32) < k, tf.float32) * valid


def mined_mean(per_example_loss: tf.Tensor, fraction: float, min_count: int = 1, valid: tf.Tensor | None = None):
    """The mean of ``per_example_loss`` over the examples ``select_hard_examples`` keeps (0 when none is valid).
    The selection itself passes no gradient."""
    w = select_hard_examples(tf.stop_gradient(per_example_loss), fraction, min_count, valid)
    return tf.reduce_sum(w * per_example_loss) / tf.maximum(tf.reduce_sum(w), 1.0)


def mined_loss(class_loss: tf.Tensor, keypoint_loss: tf.Tensor, class_valid: tf.Tensor, keypoint_valid: tf.Tensor,
               ranking: str, fraction: float, min_count: int = 1) -> tf.Tensor:
    """A batch's loss from per-example class and (weighted) key-point losses, hard examples mined by ``ranking``.

    Args:
        class_loss, keypoint_loss: ``(batch,)`` per-example losses (0 where not valid).
        class_valid, keypoint_valid: ``(batch,)`` 1 where the example has a (pseudo-)label / key-point targets.
        ranking: ``"sum"``: the hardest ``fraction`` by the summed loss, among the examples with either;
            ``"each"``: the class loss over the hardest by class loss, plus the key-point loss over the hardest by
            key-point loss; ``"class"``: the class loss mined, plus the key-point loss over every example with
            targets. With a heavy key-point weight, ``"sum"`` ranks mostly by the key-point error.
        fraction, min_count: as ``select_hard_examples``.

    Returns:
        A scalar.
    """
    if ranking == "sum":
        return mined_mean(class_loss + keypoint_loss, fraction, min_count, tf.maximum(class_valid, keypoint_valid))
    if ranking == "each":
        kp = mined_mean(keypoint_loss, fraction, min_count, keypoint_valid)
    elif ranking == "class":
        kp = mined_mean(keypoint_loss, 1.0, 0, keypoint_valid)
    else:
        raise ValueError(f"ranking must be sum, each or class. Received: {ranking!r}")
    return mined_mean(class_loss, fraction, min_count, class_valid) + kp
