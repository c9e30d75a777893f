import numpy as np
import pytest

from kerasdance.keras_backend import tf
from kerasdance.losses import cross_entropy, dice_ce_loss, heatmap_loss, keypoint_loss, soft_dice_loss
from kerasdance.training.hard_mining import mined_loss, select_hard_examples
from kerasdance.training.self_training import (
    align_distribution,
    alignment_ratio,
    class_thresholds,
    pseudo_label_mask,
    rampup_weight,
)


def test_soft_dice_hand_computed():
    y = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = tf.constant([[0.2, 0.6, 0.2], [1.0, 0.0, 0.0]])
    # 1 - 2*0.6 / (0.04+0.36+0.04 + 1) = 1 - 1.2/1.44
    np.testing.assert_allclose(soft_dice_loss(y, p).numpy(), [1 - 1.2 / 1.44, 0.0], atol=1e-6)


def test_cross_entropy_hand_computed():
    y = tf.constant([[0.0, 1.0]])
    logits = tf.constant([[0.0, 0.0]])
    np.testing.assert_allclose(cross_entropy(y, logits).numpy(), [np.log(2)], atol=1e-6)
    # label smoothing 0.2 over 2 classes: target (0.1, 0.9), same CE for equal logits
    np.testing.assert_allclose(cross_entropy(y, logits, 0.2).numpy(), [np.log(2)], atol=1e-6)


def test_dice_ce_is_weighted_3_to_1():
    y = tf.constant([[0.0, 1.0, 0.0]])
    logits = tf.constant([[0.5, 1.0, -1.0]])
    p = tf.nn.softmax(logits)
    expected = 3 * soft_dice_loss(y, p) + 1 * cross_entropy(y, logits)
    np.testing.assert_allclose(dice_ce_loss(y, logits).numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(dice_ce_loss(y, logits, 0.0, 1.0).numpy(), cross_entropy(y, logits).numpy())


def test_keypoint_loss_masks_missing_joints():
    t = np.zeros((2, 1, 2, 3), np.float32)
    p = np.zeros((2, 1, 2, 3), np.float32)
    p[0, 0, 0] = [3, 4, 0]  # distance 5
    p[0, 0, 1] = [100, 0, 0]  # masked out
    m = np.array([[[1, 0]], [[0, 0]]], np.float32)
    np.testing.assert_allclose(keypoint_loss(t, p, m).numpy(), [5.0, 0.0], atol=1e-3)


def test_heatmap_loss_is_the_kl_from_a_gaussian_at_the_joint():
    H = W = 4
    centres = (np.arange(4) + 0.5) / 4 * 2 - 1  # -0.75 -0.25 0.25 0.75
    target = np.zeros((1, 1, 2, 3), np.float32)
    target[0, 0, 0, :2] = [0.25, -0.75]  # joint 0 at column 2, row 0
    target[0, 0, 1, :2] = [0.1, 0.3]  # joint 1 between cells
    d2 = (centres[None, :, None] - target[0, 0, :, 1][:, None, None]) ** 2 + \
         (centres[None, None, :] - target[0, 0, :, 0][:, None, None]) ** 2  # (joints, H, W)
    q = np.exp(-d2 / (2 * 0.5**2))
    q /= q.sum(axis=(1, 2), keepdims=True)
    mask = np.ones((1, 1, 2), np.float32)
    exact = np.log(q).transpose(1, 2, 0)[None, None].astype(np.float32)  # (1, 1, H, W, joints)
    np.testing.assert_allclose(heatmap_loss(target, exact, mask).numpy(), [0.0], atol=1e-5)
    flat = np.zeros((1, 1, H, W, 2), np.float32)  # uniform: KL = log(HW) - entropy(q)
    want = np.mean([np.log(H * W) + (q[j] * np.log(q[j])).sum() for j in range(2)])
    np.testing.assert_allclose(heatmap_loss(target, flat, mask).numpy(), [want], rtol=1e-5)
    wrong = np.zeros((1, 1, H, W, 2), np.float32)
    wrong[0, 0, 3, 0] = 10.0  # both joints' peak in the far corner
    assert float(heatmap_loss(target, wrong, mask)[0]) > want
    np.testing.assert_allclose(heatmap_loss(target, wrong, np.zeros_like(mask)).numpy(), [0.0])  # no valid joint


def test_ohem_keeps_the_hardest_fraction():
    loss = tf.constant([0.1, 0.9, 0.5, 0.3, 0.7])
    w = select_hard_examples(loss, 0.4, 1).numpy()
    np.testing.assert_array_equal(w, [0, 1, 0, 0, 1])


def test_ohem_min_count_and_valid_mask():
    loss = tf.constant([5.0, 0.9, 0.5, 0.3, 0.7, 0.2])
    valid = tf.constant([0, 1, 1, 1, 1, 1])
    w = select_hard_examples(loss, 0.1, 3, valid).numpy()
    np.testing.assert_array_equal(w, [0, 1, 1, 0, 1, 0])  # the invalid 5.0 is never chosen
    none = select_hard_examples(loss, 0.5, 3, tf.zeros(6)).numpy()
    assert none.sum() == 0
    all_ = select_hard_examples(loss, 1.0, 1).numpy()
    assert all_.sum() == 6


def test_ohem_ties_are_deterministic():
    w = select_hard_examples(tf.constant([1.0, 1.0, 1.0, 1.0]), 0.5, 1).numpy()
    np.testing.assert_array_equal(w, [1, 1, 0, 0])


def test_mined_loss_ranks_as_asked():
    # Example 0 is hard for the classifier, 1 for the key-points; 3 has no label, only key-point targets.
    cls = tf.constant([2.0, 0.1, 0.5, 0.0])
    kp = tf.constant([0.5, 3.0, 0.2, 1.0])
    cv, kv = tf.constant([1.0, 1.0, 1.0, 0.0]), tf.ones(4)

    def loss(ranking):
        return float(mined_loss(cls, kp, cv, kv, ranking, 0.5, 1))

    assert loss("sum") == pytest.approx((2.5 + 3.1) / 2)  # sums 2.5 3.1 0.7 1.0: the 2 hardest of 4
    assert loss("each") == pytest.approx((2.0 + 0.5) / 2 + (3.0 + 1.0) / 2)  # 2 of 3 labelled, 2 of 4 with targets
    assert loss("class") == pytest.approx((2.0 + 0.5) / 2 + (0.5 + 3.0 + 0.2 + 1.0) / 4)
    with pytest.raises(ValueError, match="ranking"):
        loss("max")


def test_mined_loss_passes_gradient_only_to_the_kept_examples():
    cls = tf.Variable([2.0, 0.1, 0.5, 0.0])
    kp = tf.constant([0.5, 3.0, 0.2, 1.0])
    for ranking, kept in (("sum", [1, 1, 0, 0]), ("each", [1, 0, 1, 0])):
        with tf.GradientTape() as tape:
            out = mined_loss(cls, kp, tf.constant([1.0, 1.0, 1.0, 0.0]), tf.ones(4), ranking, 0.5, 1)
        np.testing.assert_array_equal(tape.gradient(out, cls).numpy() > 0, np.array(kept, bool))


def test_pseudo_label_mask_global_and_per_class():
    probs = tf.constant([[0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    np.testing.assert_array_equal(pseudo_label_mask(probs, 0.9).numpy(), [1, 0, 0])
    np.testing.assert_array_equal(pseudo_label_mask(probs, 0.9, [0.9, 0.65]).numpy(), [1, 0, 1])


def test_class_thresholds_lower_rare_classes():
    thr = class_thresholds(np.array([100, 10, 0]), 0.9, 120, min_threshold=0.5)
    assert thr[0] == pytest.approx(0.9)  # beta = 1 -> tau
    assert 0.5 <= thr[1] < thr[0]
    assert thr[2] == pytest.approx(0.5)  # floor
    beta = 10 / 100
    assert thr[1] == pytest.approx(max(0.9 * beta / (2 - beta), 0.5))


def test_alignment_ratio_and_align_distribution_hand_computed():
    # Uniform prior; the teacher's mean favours class 0 (0.5) over 1 (0.3) and 2 (0.2).
    ratio = alignment_ratio(np.array([2, 2, 2]), np.array([0.5, 0.3, 0.2]))
    np.testing.assert_allclose(ratio, [(1 / 3) / 0.5, (1 / 3) / 0.3, (1 / 3) / 0.2], rtol=1e-6)
    np.testing.assert_allclose(alignment_ratio([1, 1], [0.5, 0.5]), [1, 1])  # already aligned
    assert alignment_ratio([1, 1], [1.0, 0.0])[1] == pytest.approx(0.5 / 1e-3 * (1.0 + 1e-3))  # floored, finite
    # [0.4, 0.35, 0.25] * ratio = [0.2667, 0.3889, 0.4167] / 1.0722: the argmax moves from class 0 to class 2.
    p = align_distribution(tf.constant([[0.4, 0.35, 0.25]]), tf.constant(ratio)).numpy()[0]
    raw = np.array([0.4 / 1.5, 0.35 / 0.9, 0.25 / 0.6])
    np.testing.assert_allclose(p, raw / raw.sum(), rtol=1e-5)
    assert p.argmax() == 2 and p.sum() == pytest.approx(1.0)


def test_rampup():
    assert rampup_weight(0, 10) == pytest.approx(np.exp(-5))
    assert rampup_weight(10, 10) == 1.0 and rampup_weight(50, 10, 2.0) == 2.0
    assert rampup_weight(3, 0) == 1.0
