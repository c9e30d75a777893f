"""Time of one training step of the default depth model (batch 16, random inputs), variants side by side.

Epoch times on this shared 2-core machine drift by 10-20% between runs; alternating the variants
in one session compares them under the same conditions. Variants:

* ``split``: ``SoftArgmax2D`` as it is (one ``tf.split`` of heat and depth maps);
* ``slices``: the earlier two slices ``maps[:, :J]`` / ``maps[:, J:]`` (their gradients were two full-size
  ``StridedSliceGrad`` ops, ~7% of a step in the TF profiler);
* ``kernel3``: the heat-map head with its 3x3 hidden conv (``keypoint_kernel=3``);
* ``stem12``: the earlier, wider stem ``(12, 24, 48, 48)`` (default ``(8, 16, 32, 48)`` since 2026-11-30);
* ``unroll``: the LSTM unrolled (``unroll=True``) in training too, not only for export;
* ``norefine``: without the temporal key-point refinement (``keypoint_refine=0``, the default until recipe 4);
* ``xla``: the step compiled with XLA (``tf.function(jit_compile=True)``; compilation in the warm-up steps);
* ``batch32``: batches of 32 windows, the time reported per 16 windows (half a step) to compare with the rest;
* ``patch4``: the stem's first layer a 4x4 patch conv with stride 4 (``stem_first_stride=4``, stem
  ``(16, 32, 48)``): no S/2 map, the same S/4, S/8 and S/16 maps as the default.

    python -m benchmarks.probe_train_step [--rounds 2] [--steps 30] [--variants split,stem12]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

VARIANTS = ("split", "slices", "kernel3", "stem12", "unroll", "norefine", "xla", "batch32", "patch4")


def _slices_call(self, x):
    from kerasdance.keras_backend import tf

    _, T, H, W, _ = x.shape
    J = self.num_joints
    cols = (np.arange(W) + 0.5) / W * 2.0 - 1.0
    rows = (np.arange(H) + 0.5) / H * 2.0 - 1.0
    grid = np.stack([np.tile(cols, H), np.repeat(rows, W)], axis=-1).astype(np.float32)
    maps = tf.transpose(tf.reshape(x, [-1, H * W, 2 * J]), [0, 2, 1])
    probs = tf.nn.softmax(maps[:, :J], axis=-1)
    ab = tf.matmul(probs, tf.constant(grid))
    z = tf.reduce_sum(probs * maps[:, J:], axis=-1, keepdims=True)
    return tf.reshape(tf.concat([ab, z], axis=-1), [-1, T, J, 3])


def step_ms(variant: str, steps: int) -> float:
    """Median wall-clock milliseconds of ``steps`` training steps (after 3 warm-up steps), per 16 windows."""
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras, tf
    from kerasdance.models import lstm_cnn

    if variant == "slices":
        lstm_cnn.SoftArgmax2D.call = _slices_call
    cfg = RunConfig().replace(model={"kernel3": {"keypoint_kernel": 3}, "stem12": {"stem_filters": (12, 24, 48, 48)},
                                     "unroll": {"unroll": True}, "norefine": {"keypoint_refine": 0},
                                     "patch4": {"stem_filters": (16, 32, 48), "stem_first_stride": 4}}.get(variant, {}))
    keras.backend.experimental.enable_tf_random_generator()  # as the trainer: dropout's RNG is ~4 ms a step otherwise
    keras.utils.set_random_seed(0)
    m = lstm_cnn.build_lstm_cnn(cfg.model, cfg.data)
    opt = keras.optimizers.Adam(1e-3)
    S, T = cfg.data.crop_size, cfg.data.frames
    batch = 32 if variant == "batch32" else 16
    x = tf.random.normal((batch, T, S, S, cfg.data.channels))
    y = tf.random.normal((batch, T, cfg.model.num_joints, 3))
    lab = tf.zeros((batch,), tf.int32)

    @tf.function(jit_compile=variant == "xla")
    def step(x):
        with tf.GradientTape() as tape:
            o = m(x, training=True)
            loss = tf.reduce_mean((o["keypoints"] - y) ** 2) + tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(lab, o["logits"], from_logits=True))
        g = tape.gradient(loss, m.trainable_variables)
        opt.apply_gradients(zip(g, m.trainable_variables))
        return loss

    for _ in range(3):
        step(x)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(x).numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000 * 16 / batch)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma-separated, of: {', '.join(VARIANTS)}.")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in a child process
    args = ap.parse_args(argv)
    if args.variant:
        print(f"{step_ms(args.variant, args.steps):.1f}")
        return
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    results = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:  # a fresh process each: the patched layer and the graphs do not leak between variants
            out = subprocess.run([sys.executable, "-m", "benchmarks.probe_train_step", "--variant", v,
                                  "--steps", str(args.steps)], capture_output=True, text=True, check=True)
            results[v].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"{v:8s} {results[v][-1]:6.1f} ms per step", flush=True)
    for v, ms in results.items():
        print(f"{v:8s} median of rounds: {np.median(ms):.1f} ms ({', '.join(f'{t:.1f}' for t in ms)})")


if __name__ == "__main__":
    main()
