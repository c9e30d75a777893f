"""Quantisation-aware training, pruning and calibration for export (tfmot on tf-keras).

What tfmot 0.8.1 accepts in this model (measured with tf-keras 2.21):

* QAT: ``Conv2D``, ``Dense``, ``BatchNormalization`` and ``ReLU`` at the top level of the graph are
  annotated. The ``LSTM`` is not supported and stays float during QAT; the per-frame stem is wrapped in
  ``TimeDistributed``, which ``quantize_apply`` refuses ("TimeDistributed is not supported"), so the stem
  also stays float in QAT. Both get ordinary post-training int8 calibration at conversion. The BN and
  ReLU after each time convolution are annotated as well: with Conv2D/Dense alone, the ``fuse``
  concatenation gets inputs with different fake-quant scales and the int8 converter refuses the graph
  ("quantization parameters violate the same scale constraint").
* Pruning: ``prune_low_magnitude`` refuses ``TimeDistributed`` too, so the top-level ``Conv2D``,
  ``Dense`` and ``LSTM`` layers are pruned (they hold ~90% of the default model's weights), except the
  two output layers (``logits``, ``kp_out``), which stay dense. The custom loop drives
  ``UpdatePruningStep`` by hand (``on_train_begin`` / ``on_epoch_end``; the wrappers count the steps
  themselves when called with ``training=True``).

The fine-tuning loop is deliberately small: the run's losses (Dice-CE 3:1 on labelled windows, masked
key-point loss) plus distillation from the run's float model on every window, so that a run trained
with few labels is fine-tuned on all of its training windows.
"""

from __future__ import annotations

import logging

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data.pipeline import Prepared, WindowSampler, training_augment
from kerasdance.errors import KerasdanceError
from kerasdance.keras_backend import keras, tf
from kerasdance.losses import cross_entropy, dice_ce_loss, keypoint_loss

log = logging.getLogger("kerasdance.export")

layers = keras.layers
#: Top-level layer types annotated for QAT.
QAT_LAYER_TYPES = (layers.Conv2D, layers.Dense, layers.BatchNormalization, layers.ReLU)
#: Top-level layer types pruned.
PRUNE_LAYER_TYPES = (layers.Conv2D, layers.Dense, layers.LSTM)
#: Output layers that stay dense when pruning.
PRUNE_SKIP = ("logits", "kp_out")


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def calibration_windows(prepared: Prepared, run_cfg: RunConfig, n: int = 128, seed: int = 0) -> np.ndarray:
    """Representative inputs for int8 calibration: up to ``n`` whole training sequences, no augmentation.

    Args:
        prepared: the run's training sequences.
        run_cfg: the run's configuration (window shape, input mode).
        n: at most this many windows (a seeded subset when there are more sequences).
        seed: chooses the subset.

    Returns:
        ``(min(n, len(prepared)), T, S, S, C)`` float32 (depth) or ``(.., T, features)`` (skeleton).

    Raises:
        ValueError: no training sequences or ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"Need at least one calibration window. Received: n={n!r}")
    if len(prepared) == 0:
        raise ValueError("No training sequences to draw calibration windows from")
    idx = np.sort(np.random.default_rng(seed).permutation(len(prepared))[:n])
    sampler = WindowSampler(prepared, run_cfg.data, run_cfg.model.input_mode, augment=None)
    return sampler.batch(idx)["x"].astype(np.float32)


def copy_model(model: keras.Model) -> keras.Model:
    """A structural copy with its own weights (the wrappers below must not train the caller's model)."""
    out = keras.models.clone_model(model)
    out.set_weights(model.get_weights())
    return out


def copy_weights(src: keras.Model, dst: keras.Model) -> None:
    """``dst.set_weights(src.get_weights())`` after checking that both have the same weight shapes.

    Raises:
        KerasdanceError: the two models do not have the same weights.
    """
    a, b = src.get_weights(), dst.get_weights()
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=False)):
        raise KerasdanceError(f"cannot copy weights from {src.name} to {dst.name}: {len(a)} vs {len(b)} arrays "
                              "or different shapes (the two graphs differ)")
    dst.set_weights(a)


# --- QAT --------------------------------------------------------------------------------------------------
def quantize_aware(model: keras.Model) -> keras.Model:
    """The QAT version of ``model`` (a copy; fake-quant on the top-level Conv2D/Dense/BN/ReLU layers).

    Raises:
        KerasdanceError: tfmot refuses the model.
    """
    tfmot = _tfmot()
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    base = copy_model(model)

    def fn(layer):
        return annotate(layer) if isinstance(layer, QAT_LAYER_TYPES) else layer

    annotated = keras.models.clone_model(base, clone_function=fn)
    try:
        with tfmot.quantization.keras.quantize_scope():
            return tfmot.quantization.keras.quantize_apply(annotated)
    except (ValueError, TypeError) as e:
        raise KerasdanceError(f"tfmot refused quantisation-aware training of {model.name}: {e}") from None


# --- pruning ----------------------------------------------------------------------------------------------
def pruning_schedule(target_sparsity: float, total_steps: int):
    """Polynomial sparsity ramp 0 -> ``target_sparsity`` over the first 2/3 of the steps, then recovery."""
    tfmot = _tfmot()
    freq = max(1, total_steps // 10)
    end = max(freq, (2 * total_steps // 3) // freq * freq)
    return tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(target_sparsity),
                                               begin_step=0, end_step=end, frequency=freq)


def prunable(model: keras.Model, target_sparsity: float, total_steps: int) -> keras.Model:
    """A copy of ``model`` with ``prune_low_magnitude`` on its top-level Conv2D/Dense/LSTM layers.

    Args:
        model: the trained float model.
        target_sparsity: fraction of zeros wanted in each pruned layer, in [0, 1).
        total_steps: the fine-tune's number of steps (for the schedule).

    Raises:
        ValueError: ``target_sparsity`` outside [0, 1).
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target sparsity must be in [0, 1). Received: prune={target_sparsity!r}")
    tfmot = _tfmot()
    schedule = pruning_schedule(target_sparsity, total_steps)
    base = copy_model(model)

    def fn(layer):
        if isinstance(layer, PRUNE_LAYER_TYPES) and layer.name not in PRUNE_SKIP:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(base, clone_function=fn)


def strip_pruning(pruned: keras.Model, like: keras.Model) -> keras.Model:
    """Copy the (masked) weights of a pruned model into a copy of the plain model ``like``, layer by name."""
    tfmot = _tfmot()
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    out = copy_model(like)
    for layer in out.layers:
        if layer.weights:
            layer.set_weights(stripped.get_layer(layer.name).get_weights())
    return out


def pruned_sparsity(model: keras.Model) -> float:
    """Fraction of exact zeros in the prunable weights of the layers ``prunable`` wraps (plain model)."""
    zeros = total = 0
    for layer in model.layers:
        if isinstance(layer, PRUNE_LAYER_TYPES) and layer.name not in PRUNE_SKIP:
            weights = [layer.cell.kernel, layer.cell.recurrent_kernel] if isinstance(layer, layers.LSTM) \
                else [layer.kernel]
            for w in weights:
                a = w.numpy()
                zeros += int((a == 0).sum())
                total += a.size
    return zeros / max(total, 1)


# --- fine-tuning ------------------------------------------------------------------------------------------
def finetune_steps(prepared: Prepared, run_cfg: RunConfig, epochs: int) -> int:
    """Number of optimizer steps ``finetune`` takes."""
    return epochs * -(-len(prepared) // run_cfg.train.batch_size)


def finetune(model: keras.Model, prepared: Prepared, run_cfg: RunConfig, epochs: int, learning_rate: float,
             teacher: keras.Model | None = None, distill_weight: float = 1.0, seed: int = 0,
             pruning: bool = False) -> list[float]:
    """A short GradientTape fine-tune of ``model`` (a QAT or pruning wrapper, or a plain model) in place.

    Loss per batch: Dice-CE (the run's weights) on labelled windows + the masked key-point loss, averaged
    over windows with a target; plus, with ``teacher``, ``distill_weight`` x (cross-entropy to the teacher's
    softmax + key-point distance to the teacher's key-points) on every window. Windows come from the run's
    ``WindowSampler`` with its augmentation (when the run used augmentation).

    Args:
        model: the model to train (its weights change).
        prepared: training sequences (labels -1 where hidden).
        run_cfg: the run's configuration (losses, batch size, augmentation, clip norm).
        epochs: passes over ``prepared``.
        learning_rate: Adam's step size.
        teacher: the run's float model, or None for no distillation.
        distill_weight: weight of the distillation terms.
        seed: window order, augmentation and dropout.
        pruning: drive tfmot's ``UpdatePruningStep`` (the model holds ``prune_low_magnitude`` wrappers).

    Returns:
        The mean loss of each epoch.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1. Received: epochs={epochs!r}")
    if len(prepared) == 0:
        raise ValueError("No training sequences to fine-tune on")
    # Dropout draws from TensorFlow's generators, whose op seeds come from the global seed: unset in a fresh process,
    # so two runs of one export command fine-tuned differently (QAT int8 95.8 / 96.2% on one model).
    keras.utils.set_random_seed(seed)
    t = run_cfg.train
    depth = run_cfg.model.input_mode == "depth"
    n_cls = run_cfg.model.num_classes
    sampler = WindowSampler(prepared, run_cfg.data, run_cfg.model.input_mode, seed=seed,
                            augment=training_augment(t), live=t.live_windows)
    optimizer = keras.optimizers.Adam(learning_rate)

    def step(x, joints, mask, label, labelled):
        onehot = tf.one_hot(tf.maximum(label, 0), n_cls)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            per = dice_ce_loss(onehot, out["logits"], t.dice_weight, t.ce_weight, t.label_smoothing) * labelled
            valid = labelled
            if depth:
                per = per + t.keypoint_weight * keypoint_loss(joints, out["keypoints"], mask)
                valid = tf.maximum(valid, tf.cast(tf.reduce_sum(mask, axis=[1, 2]) > 0, tf.float32))
            loss = tf.reduce_sum(per) / tf.maximum(tf.reduce_sum(valid), 1.0)
            if teacher is not None:
                t_out = teacher(x, training=False)
                distill = cross_entropy(tf.nn.softmax(t_out["logits"]), out["logits"])
                if depth:
                    distill = distill + keypoint_loss(t_out["keypoints"], out["keypoints"], tf.ones_like(mask))
                loss = loss + distill_weight * tf.reduce_mean(distill)
            if model.losses:
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, t.clip_norm)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    train_step = tf.function(step, reduce_retracing=True)
    callback = None
    if pruning:
        callback = _tfmot().sparsity.keras.UpdatePruningStep()
        callback.set_model(model)
        callback.on_train_begin()
    history = []
    for epoch in range(epochs):
        losses = []
        for b in sampler.epoch(epoch, t.batch_size):
            losses.append(float(train_step(b["x"], b["joints"], b["mask"], b["label"], b["labelled"])))
        if callback is not None:
            callback.on_epoch_end(epoch)
        history.append(float(np.mean(losses)))
        log.info("fine-tune epoch %d/%d: loss %.4f", epoch + 1, epochs, history[-1])
    return history
