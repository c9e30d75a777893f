"""The functional LSTM-CNN of the method.

An LSTM first extracts temporal context from the (per-frame encoded) depth
sequence; three convolution layers over time and one max-pool then capture
features; the fused representation regresses per-frame 3-D key-points and
classifies the sequence's action or dance move::

    depth (batch, T, S, S, C)
      -> per-frame conv stem (TimeDistributed Conv2D x4, BN, ReLU) -> (batch, T, F)
      -> LSTM(units, return_sequences)                              -> (batch, T, U)
      -> 3 x [Conv2D (k, 1) + BN + ReLU] over time                  -> (batch, T, 1, K)
      -> key-points: concat(conv, stem) -> 1x1 convs                -> (batch, T, 20, 3)
      -> classes:   MaxPool (2, 1) -> global avg+max pool -> Dense  -> (batch, num_classes)

Skeleton mode takes ``(batch, T, features)`` joint features and outputs logits only.
The time convolutions are ``Conv2D`` with ``(k, 1)`` kernels so that tfmot
quantisation-aware training can annotate them (it does not support Conv1D).
"""

from __future__ import annotations

from kerasdance.config import DataConfig, ModelConfig
from kerasdance.keras_backend import keras

layers = keras.layers

#: BatchNorm moving-average momentum. Keras' 0.99 needs thousands of steps to forget the initial
#: variance of 1; with a few hundred sequences a run has only a few hundred steps, and inference-mode
#: outputs were garbage (chance accuracy while training-mode accuracy was 93%). 0.9 converges in ~50 steps.
BN_MOMENTUM = 0.9


def _conv_bn_relu(x, filters, kernel, strides, name):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_lstm_cnn(model_cfg: ModelConfig, data_cfg: DataConfig, batch_size: int | None = None) -> keras.Model:
    """Build the LSTM-CNN as a functional ``keras.Model``.

    Args:
        model_cfg: the model's shape.
        data_cfg: gives T, S and the number of input channels / features.
        batch_size: fix the batch dimension (1 for TFLite export); None for training.

    Returns:
        A functional model with outputs ``{"keypoints": (batch, T, J, 3), "logits": (batch, classes)}``
        in depth mode and ``{"logits": ...}`` in skeleton mode.
    """
    T = data_cfg.frames
    # === Layers / Functional Model ===
    if model_cfg.input_mode == "depth":
        S, C = data_cfg.crop_size, data_cfg.channels
        inputs = keras.Input((T, S, S, C), batch_size=batch_size, name="depth")
        x = inputs
        for i, filters in enumerate(model_cfg.stem_filters):
            kernel = 5 if i == 0 else 3
            x = layers.TimeDistributed(
                layers.Conv2D(filters, kernel, strides=2, padding="same", use_bias=False), name=f"stem{i}_conv"
            )(x)
            x = layers.TimeDistributed(layers.BatchNormalization(momentum=BN_MOMENTUM), name=f"stem{i}_bn")(x)
            x = layers.ReLU(name=f"stem{i}_relu")(x)
        x = layers.TimeDistributed(layers.Flatten(), name="stem_flatten")(x)
        stem = layers.Dense(model_cfg.lstm_units, activation="relu", name="stem_dense")(x)
    else:
        inputs = keras.Input((T, data_cfg.skeleton_features), batch_size=batch_size, name="skeleton")
        stem = layers.Dense(model_cfg.lstm_units, activation="relu", name="stem_dense")(inputs)

    h = layers.LSTM(model_cfg.lstm_units, return_sequences=True, unroll=model_cfg.unroll, name="lstm")(stem)
    h = layers.Dropout(model_cfg.dropout, name="lstm_dropout")(h)
    h = layers.Reshape((T, 1, model_cfg.lstm_units), name="to_time_image")(h)
    for i, filters in enumerate(model_cfg.conv_filters):
        h = _conv_bn_relu(h, filters, (model_cfg.conv_kernel, 1), 1, name=f"tconv{i}")

    outputs = {}
    if model_cfg.input_mode == "depth":
        s = layers.Reshape((T, 1, model_cfg.lstm_units), name="stem_time_image")(stem)
        k = layers.Concatenate(name="fuse")([h, s])
        k = layers.Conv2D(model_cfg.lstm_units, 1, activation="relu", name="kp_hidden")(k)
        k = layers.Conv2D(model_cfg.num_joints * 3, 1, name="kp_out")(k)
        outputs["keypoints"] = layers.Reshape((T, model_cfg.num_joints, 3), name="keypoints")(k)

    p = layers.MaxPooling2D((2, 1), name="tpool")(h)
    p = layers.Concatenate(name="pooled")(
        [layers.GlobalAveragePooling2D(name="gap")(p), layers.GlobalMaxPooling2D(name="gmp")(p)]
    )
    p = layers.Dropout(model_cfg.dropout, name="head_dropout")(p)
    outputs["logits"] = layers.Dense(model_cfg.num_classes, name="logits")(p)
    return keras.Model(inputs, outputs, name=f"lstm_cnn_{model_cfg.input_mode}")


def count_flops(model: keras.Model) -> int:
    """FLOPs (2 x multiply-accumulates) of one forward pass on one example: conv, dense and LSTM layers."""
    total = 0
    for layer in model.layers:
        inner, frames = layer, 1
        if isinstance(layer, layers.TimeDistributed):
            inner, frames = layer.layer, layer.input_shape[1]
        cin = layer.input_shape[-1]
        out_size = _prod(layer.output_shape[1:])  # includes the time axis of a TimeDistributed layer
        if isinstance(inner, layers.Conv2D):
            kh, kw = inner.kernel_size
            total += 2 * out_size * kh * kw * cin
        elif isinstance(inner, layers.Dense):
            total += 2 * out_size * cin
        elif isinstance(inner, layers.LSTM):
            total += 2 * frames * layer.input_shape[1] * 4 * inner.units * (cin + inner.units)
    return int(total)


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out
