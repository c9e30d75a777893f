"""The functional LSTM-CNN of the method.

An LSTM first extracts temporal context from the (per-frame encoded) depth
sequence; three convolution layers over time and one max-pool then capture
features; the fused representation regresses per-frame 3-D key-points and
classifies the sequence's action or dance move::

    depth (batch, T, S, S, C)
      -> per-frame conv stem (TimeDistributed Conv2D x4, BN, ReLU) -> (batch, T, F)
      -> LSTM(units, return_sequences)                              -> (batch, T, U)
      -> 3 x [Conv2D (k, 1) + BN + ReLU] over time                  -> (batch, T, 1, K)
      -> classes:   MaxPool (2, 1) -> global avg+max pool -> Dense  -> (batch, num_classes)
      -> key-points (``keypoint_head="heatmap"``, the default): the stem's S/4 feature map plus its
         deeper maps (upsampled) plus the frame's temporal context (LSTM + time convs, broadcast over
         space) -> 1x1 convs -> per-joint heat-map and depth map -> soft-argmax  -> (batch, T, 20, 3)
         (``"dense"``: concat(time convs, stem vector) -> 1x1 convs -> 60 numbers per frame)
      -> temporal refinement (``keypoint_refine=k``, 0: none): Conv2D (k, 1) of the key-point trajectory + Conv2D
         (k, 1) of the context -> ReLU -> Conv2D (k, 1) -> + key-points (a residual correction over time,
         zero-initialised: training starts from the head's output)

Skeleton mode takes ``(batch, T, features)`` joint features and outputs logits only.
The time convolutions are ``Conv2D`` with ``(k, 1)`` kernels so that tfmot
quantisation-aware training can annotate them (it does not support Conv1D).
"""

from __future__ import annotations

import numpy as np

from kerasdance.config import DataConfig, ModelConfig
from kerasdance.data.preprocess import cell_centres
from kerasdance.keras_backend import keras, tf

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
        stem_maps = []
        for i, filters in enumerate(model_cfg.stem_filters):
            stride, kernel = 2, 3
            if i == 0:  # 5x5 with stride 2, or non-overlapping 4x4 patches with stride 4
                stride = model_cfg.stem_first_stride
                kernel = 5 if stride == 2 else stride
            x = layers.TimeDistributed(
                layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False), name=f"stem{i}_conv"
            )(x)
            x = layers.TimeDistributed(layers.BatchNormalization(momentum=BN_MOMENTUM), name=f"stem{i}_bn")(x)
            x = layers.ReLU(name=f"stem{i}_relu")(x)
            stem_maps.append(x)
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
        ctx = layers.Concatenate(name="fuse")([h, s])
        if model_cfg.keypoint_head == "heatmap":
            kp = _heatmap_head(stem_maps, ctx, model_cfg, T)
        else:
            k = layers.Conv2D(model_cfg.lstm_units, 1, activation="relu", name="kp_hidden")(ctx)
            k = layers.Conv2D(model_cfg.num_joints * 3, 1, name="kp_out")(k)
            kp = layers.Reshape((T, model_cfg.num_joints, 3), name="keypoints")(k)
        outputs["keypoints"] = _refine_keypoints(kp, ctx, model_cfg, T) if model_cfg.keypoint_refine else kp

    p = layers.MaxPooling2D((2, 1), name="tpool")(h)
    p = layers.Concatenate(name="pooled")(
        [layers.GlobalAveragePooling2D(name="gap")(p), layers.GlobalMaxPooling2D(name="gmp")(p)]
    )
    p = layers.Dropout(model_cfg.dropout, name="head_dropout")(p)
    outputs["logits"] = layers.Dense(model_cfg.num_classes, name="logits")(p)
    return keras.Model(inputs, outputs, name=f"lstm_cnn_{model_cfg.input_mode}")


def _heatmap_head(stem_maps, ctx, model_cfg: ModelConfig, T: int):
    """Per-frame integral (soft-argmax) key-point regression at the stem's S/``heatmap_stride`` resolution.

    Lateral 1x1 convs bring that map and every deeper stem map to ``keypoint_channels``; deeper
    maps are upsampled (they know *which* joint, the S/4 map knows *where*); the frame's temporal
    context ``ctx`` (batch, T, 1, K) is projected and added at every position (broadcast).
    """
    C, J = model_cfg.keypoint_channels, model_cfg.num_joints
    strides = [model_cfg.stem_first_stride * 2**i for i in range(len(stem_maps))]
    base = max(i for i, s in enumerate(strides) if s <= model_cfg.heatmap_stride)  # the deepest map not coarser
    terms = []
    for i in range(base, len(stem_maps)):
        lat = layers.TimeDistributed(layers.Conv2D(C, 1), name=f"kp_lateral{i}")(stem_maps[i])
        if i > base:
            f = 2 ** (i - base)
            lat = layers.TimeDistributed(layers.UpSampling2D(f, interpolation="bilinear"), name=f"kp_up{i}")(lat)
        terms.append(lat)
    c = layers.Dense(C, name="kp_context")(ctx)  # (batch, T, 1, C)
    terms.append(layers.Reshape((T, 1, 1, C), name="kp_context_map")(c))
    k = layers.Add(name="kp_fuse")(terms) if len(terms) > 1 else terms[0]
    k = layers.ReLU(name="kp_fuse_relu")(k)
    kk = model_cfg.keypoint_kernel
    for i in range(model_cfg.keypoint_layers):  # the first keeps its earlier name: saved weights load by name
        name = "kp_hidden" if i == 0 else f"kp_hidden{i}"
        k = layers.TimeDistributed(layers.Conv2D(C, kk, padding="same", activation="relu"), name=name)(k)
    k = layers.TimeDistributed(layers.Conv2D(2 * J, 1), name="kp_out")(k)
    return SoftArgmax2D(J, name="keypoints")(k)


def _refine_keypoints(kp, ctx, model_cfg: ModelConfig, T: int):
    """Key-points ``(batch, T, J, 3)`` + a correction from ``(k, 1)`` time convs over the trajectory and the
    frames' context ``ctx`` ``(batch, T, 1, K)``: joints seen over neighbouring frames (a hand blurred or
    hidden in one frame is placed from the frames around it). The last conv starts at zero."""
    J, k = model_cfg.num_joints, model_cfg.keypoint_refine
    traj = layers.Reshape((T, 1, J * 3), name="kp_trajectory")(kp)
    # conv(concat(traj, ctx)) written as conv(traj) + conv(ctx): the same function, but int8 export gives the
    # coordinates (range ~1) and the context (range ~10) each their own scale instead of one shared by a concat.
    a = layers.Conv2D(model_cfg.lstm_units, (k, 1), padding="same", use_bias=False, name="kp_refine_traj")(traj)
    b = layers.Conv2D(model_cfg.lstm_units, (k, 1), padding="same", name="kp_refine_ctx")(ctx)
    r = layers.ReLU(name="kp_refine_relu")(layers.Add(name="kp_refine_sum")([a, b]))
    r = layers.Conv2D(J * 3, (k, 1), padding="same", kernel_initializer="zeros", name="kp_refine_out")(r)
    r = layers.Add(name="kp_refined")([traj, r])
    return layers.Reshape((T, J, 3), name="keypoints_refined")(r)


@keras.saving.register_keras_serializable(package="kerasdance")
class SoftArgmax2D(layers.Layer):
    """``(batch, T, H, W, 2J)`` heat-map logits and depth maps -> ``(batch, T, J, 3)`` key-points.

    Channel ``j`` is joint j's heat-map logits, channel ``J + j`` its depth map. The output is the
    expectation under the softmax over the H*W positions of (column, row) in normalised crop
    coordinates (cell centres ``(i + 0.5) / n * 2 - 1``, as the crop's pixels) and of the depth
    map: differentiable, sub-cell precise, and only TFLite builtins (softmax, matmul, mul, sum).
    """

    def __init__(self, num_joints: int, **kwargs):
        super().__init__(**kwargs)
        self.num_joints = num_joints

    def call(self, x):
        _, T, H, W, _ = x.shape
        J = self.num_joints
        cols, rows = cell_centres(W), cell_centres(H)
        grid = np.stack([np.tile(cols, H), np.repeat(rows, W)], axis=-1).astype(np.float32)  # (H*W, 2)
        maps = tf.transpose(tf.reshape(x, [-1, H * W, 2 * J]), [0, 2, 1])  # (batch*T, 2J, H*W)
        # split, not two slices: the gradient of a slice is a full-size StridedSliceGrad per slice
        # (~7% of a training step on CPU), that of a split one concat.
        heat, depth = tf.split(maps, 2, axis=1)
        probs = tf.nn.softmax(heat, axis=-1)
        ab = tf.matmul(probs, tf.constant(grid))  # (batch*T, J, 2)
        z = tf.reduce_sum(probs * depth, axis=-1, keepdims=True)
        return tf.reshape(tf.concat([ab, z], axis=-1), [-1, T, J, 3])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.num_joints, 3)

    def get_config(self):
        return {**super().get_config(), "num_joints": self.num_joints}


def load_model(path) -> keras.Model:
    """A saved LSTM-CNN (``.keras``) loaded in safe mode, for inference (not compiled).

    Load saved models through this, not ``keras.models.load_model`` directly: importing this module registers
    the custom layers (``SoftArgmax2D``) a saved model names, which a process that has not built a model yet
    would otherwise not know.
    """
    return keras.models.load_model(path, safe_mode=True, compile=False)


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
