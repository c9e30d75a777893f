"""The custom training loop: GradientTape, OHEM, Dice-CE 3:1, self-training, checkpoints, tf.distribute.

``train(data_dir, run_dir, cfg)`` is what ``kerasdance train`` calls. ``RUN_DIR`` receives
``config.json``, ``checkpoints/`` (one per epoch, written atomically, pointed at by
``checkpoints/latest.json``), ``model.keras`` (best by validation accuracy, the later epoch of
a tie, or the last epoch without a validation split), ``train_log.csv``, TensorBoard logs in ``tb/`` and
``metrics.json``.

Determinism: the data sampler is a pure function of (seed, epoch) and the model's dropout
uses Keras' seeded ``tf.random.Generator`` whose state is checkpointed, so a run killed
mid-epoch and resumed ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data import pipeline
from kerasdance.data.pipeline import Augment, WindowSampler, training_augment
from kerasdance.data.splits import TrainData, load_train_data, split_record
from kerasdance.errors import KerasdanceError
from kerasdance.evaluate import evaluate_prepared
from kerasdance.inference import predict_prepared
from kerasdance.keras_backend import keras, tf
from kerasdance.losses import dice_ce_loss, heatmap_loss, keypoint_loss
from kerasdance.models.lstm_cnn import build_lstm_cnn, load_model
from kerasdance.training.hard_mining import mined_loss, mined_mean
from kerasdance.training.self_training import (
    affine_joints_tf,
    align_distribution,
    alignment_ratio,
    class_thresholds,
    consistent_joints,
    pseudo_label_mask,
    rampup_weight,
)

log = logging.getLogger("kerasdance.training")


@keras.saving.register_keras_serializable(package="kerasdance")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay to ``peak * final_ratio``."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, final_ratio: float = 0.02):
        self.peak, self.warmup_steps, self.total_steps, self.final_ratio = peak, warmup_steps, total_steps, final_ratio

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        t = tf.clip_by_value((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cos = self.peak * (self.final_ratio + (1 - self.final_ratio) * 0.5 * (1 + tf.cos(math.pi * t)))
        return tf.where(step < self.warmup_steps, warm, cos)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "final_ratio": self.final_ratio}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local devices) or ``multiworker`` (TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise KerasdanceError("--strategy multiworker needs the TF_CONFIG environment variable (cluster + task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy. Received: strategy={name!r}")


class Trainer:
    """Owns the model, its teacher (an EMA of the student, or a previous round's model held fixed), the optimizer
    and the compiled steps."""

    #: For the tf.data feed (distributed strategies; ``use_tf_data``): nothing in the training dataset to
    #: tune (one generator, a fixed prefetch), and with autotuning on,
    #: deleting an epoch's iterator waited for tf.data's model thread: some epochs ended in an idle stall
    #: (281 msr20 sequences: 2.9 s or 5.13 s; all 567: 5.6 s or 10.25 s; found with gdb on an idle-CPU
    #: moment). ``benchmarks/probe_epoch_stall.py`` turns it back on to show the difference.
    tf_data_autotune = False
    #: Nice value added to the one-device feed's batch thread (``pipeline.prefetch``); 0: same priority.
    feed_niceness = 0

    def __init__(self, cfg: RunConfig, run_dir: Path, data: TrainData, strategy: tf.distribute.Strategy):
        self.cfg, self.run_dir, self.data, self.strategy = cfg, Path(run_dir), data, strategy
        t = cfg.train
        # Dropout draws from a seeded tf.random.Generator whose state lives in the checkpoint.
        keras.backend.experimental.enable_tf_random_generator()
        keras.utils.set_random_seed(t.seed)
        self.depth = cfg.model.input_mode == "depth"
        self.semi = data.self_trains(t)
        self.sampler = WindowSampler(data.train, cfg.data, cfg.model.input_mode, seed=t.seed,
                                     augment=training_augment(t),
                                     labelled_share=t.labelled_batch_share if self.semi else 0.0,
                                     targets_only=not self.semi, live=t.live_windows)
        self.steps_per_epoch = self.sampler.num_batches(t.batch_size)
        # tf.data only where a strategy distributes the batches (with one device, a thread feeds faster).
        self.use_tf_data = strategy is not tf.distribute.get_strategy()
        with strategy.scope():
            self.model = build_lstm_cnn(cfg.model, cfg.data)
            # What the training step calls: the model, plus the heat-map logits where a loss reads them (the same
            # layers and weights; what is saved and exported stays the model alone).
            self.train_model = self.model
            if self.depth and t.heatmap_weight > 0:
                self.train_model = keras.Model(self.model.inputs,
                                               {**self.model.output, "heatmap": self.model.get_layer("kp_out").output})
            self.teacher = build_lstm_cnn(cfg.model, cfg.data)
            self.teacher.set_weights(self.model.get_weights())
            schedule = WarmupCosine(t.learning_rate, t.warmup_epochs * self.steps_per_epoch,
                                    t.epochs * self.steps_per_epoch)
            self.schedule = schedule
            self.optimizer = keras.optimizers.AdamW(schedule, weight_decay=t.weight_decay, clipnorm=None)
            self.optimizer.build(self.model.trainable_variables)  # slots exist before a restore
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.class_thr = tf.Variable(tf.fill([cfg.model.num_classes], t.pseudo_threshold), trainable=False)
            self.da_ratio = tf.Variable(tf.ones([cfg.model.num_classes]), trainable=False)
        # The dropout layers' tf.random.Generator is not tracked by the model's checkpoint: add it by hand,
        # so a resumed run draws the same dropout masks as an uninterrupted one.
        dropout_rng = {layer.name: layer._random_generator._generator for layer in self.model.layers
                       if getattr(getattr(layer, "_random_generator", None), "_generator", None) is not None}
        extra = {"da_ratio": self.da_ratio} if t.distribution_alignment else {}  # older checkpoints lack it
        self.ckpt = tf.train.Checkpoint(model=self.model, teacher=self.teacher, optimizer=self.optimizer,
                                        epoch=self.epoch, class_thr=self.class_thr, dropout_rng=dropout_rng, **extra)
        #: True: the teacher follows the student (EMA); False: it is held fixed (``hold_teacher``).
        self.ema_teacher = True
        self._train_step = tf.function(self._step, reduce_retracing=True)
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    # --- one step -------------------------------------------------------------------------------------------
    def _loss(self, out, onehot, class_valid, joints, mask):
        """The batch's loss: Dice-CE on the examples with a (pseudo-)label, the weighted key-point loss on those with
        (pseudo-)targets, hard examples mined as ``TrainConfig.ohem_ranking`` says."""
        t = self.cfg.train
        cls = dice_ce_loss(onehot, out["logits"], t.dice_weight, t.ce_weight, t.label_smoothing) * class_valid
        kp_valid = tf.cast(tf.reduce_sum(mask, axis=[1, 2]) > 0, tf.float32)
        if not self.depth:
            return mined_mean(cls, t.ohem_fraction, t.ohem_min_count, tf.maximum(class_valid, kp_valid))
        kp = t.keypoint_weight * keypoint_loss(joints, out["keypoints"], mask)
        if "heatmap" in out:
            kp = kp + t.heatmap_weight * heatmap_loss(joints, out["heatmap"][..., : self.cfg.model.num_joints], mask)
        return mined_loss(cls, kp, class_valid, kp_valid, t.ohem_ranking, t.ohem_fraction, t.ohem_min_count)

    def _step(self, batch, unl_weight):
        t = self.cfg.train
        n_cls = self.cfg.model.num_classes
        labelled = batch["labelled"]
        label = tf.maximum(batch["label"], 0)
        onehot = tf.one_hot(label, n_cls)
        has_kp = tf.cast(tf.reduce_sum(batch["mask"], axis=[1, 2]) > 0, tf.float32)
        outputs = {}
        if self.semi:
            t_out = self.teacher(batch["x"], training=False)
            t_probs = tf.nn.softmax(t_out["logits"])
            outputs["teacher_probs"] = t_probs
            if t.distribution_alignment:
                t_probs = align_distribution(t_probs, self.da_ratio)
            pmask = pseudo_label_mask(t_probs, t.pseudo_threshold, self.class_thr) * (1.0 - labelled)
            pseudo = tf.cast(tf.argmax(t_probs, axis=-1), tf.int32)
            s_label = tf.where(labelled > 0, label, pseudo)
            s_valid = tf.maximum(labelled, pmask)
            if self.depth:
                true_kp = affine_joints_tf(batch["joints"], batch["affine_strong"])
                teach_kp = affine_joints_tf(t_out["keypoints"], batch["affine_strong"])
                kp_given = has_kp[:, None, None, None] > 0
                s_joints = tf.where(kp_given, true_kp, teach_kp)
                kp_weight = {"all": 1.0 - labelled, "confident": pmask, "off": tf.zeros_like(pmask),
                             "consistent": 1.0 - labelled}[t.keypoint_consistency][:, None, None]
                kp_weight = kp_weight * tf.ones_like(batch["mask"])
                if t.keypoint_consistency == "consistent":  # only the joints the teacher also finds on the strong view
                    t_strong = self.teacher(batch["x_strong"], training=False)["keypoints"]
                    agree = consistent_joints(t_out["keypoints"], t_strong, t.keypoint_agreement_tol,
                                              affine_b=batch["affine_strong"])
                    kp_weight = kp_weight * agree
                    outputs["kp_agree"] = tf.reduce_sum(kp_weight * (1.0 - has_kp[:, None, None]))
                    outputs["kp_unl"] = tf.reduce_sum((1.0 - labelled) * (1.0 - has_kp)) * tf.cast(
                        tf.reduce_prod(tf.shape(batch["mask"])[1:]), tf.float32)
                s_mask = tf.where(has_kp[:, None, None] > 0, batch["mask"], kp_weight)
            else:
                s_joints, s_mask = batch["joints"], batch["mask"]
            outputs.update(pseudo_mask=pmask, pseudo_label=pseudo, pseudo_conf=tf.reduce_max(t_probs, -1))
        with tf.GradientTape() as tape:
            out = self.train_model(batch["x"], training=True)
            loss = self._loss(out, onehot, labelled, batch["joints"], batch["mask"])
            if self.semi:
                out_s = self.train_model(batch["x_strong"], training=True)
                loss = loss + unl_weight * self._loss(out_s, tf.one_hot(s_label, n_cls), s_valid, s_joints, s_mask)
            loss = loss + tf.add_n(self.model.losses) if self.model.losses else loss
            scaled = loss / self.strategy.num_replicas_in_sync
        grads = tape.gradient(scaled, self.model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, t.clip_norm)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        correct = tf.cast(tf.equal(tf.cast(tf.argmax(out["logits"], -1), tf.int32), label), tf.float32) * labelled
        outputs.update(loss=loss, correct=tf.reduce_sum(correct), n_labelled=tf.reduce_sum(labelled))
        return outputs

    @tf.function
    def _ema(self):
        d = self.cfg.train.ema_decay
        for tv, sv in zip(self.teacher.weights, self.model.weights, strict=True):
            tv.assign(d * tv + (1.0 - d) * sv)

    # --- epochs ---------------------------------------------------------------------------------------------
    def _batches(self, epoch: int):
        """One epoch of batches: made in a thread one step ahead on one device; with a ``tf.distribute``
        strategy, a ``tf.data`` dataset that the strategy shards and places."""
        strong = Augment.strong() if self.semi else None
        if not self.use_tf_data:
            keys = pipeline.batch_keys(strong is not None)
            return pipeline.prefetch(({k: tf.convert_to_tensor(b[k]) for k in keys}
                                      for b in self.sampler.epoch(epoch, self.cfg.train.batch_size, strong=strong)),
                                     self.feed_niceness)
        ds = pipeline.make_tf_dataset(self.sampler, epoch, self.cfg.train.batch_size, strong)
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        opts.autotune.enabled = self.tf_data_autotune
        return self.strategy.experimental_distribute_dataset(ds.with_options(opts))

    def run_epoch(self, epoch: int, progbar: keras.utils.Progbar | None) -> dict:
        t = self.cfg.train
        unl_w = tf.constant(rampup_weight(epoch, t.unlabelled_rampup_epochs, t.unlabelled_weight), tf.float32)
        tot = {"loss": 0.0, "correct": 0.0, "n_labelled": 0.0}
        n_cls = self.cfg.model.num_classes
        pseudo_hist = np.zeros(n_cls, np.int64)
        pseudo_right = pseudo_n = unl_seen = 0
        kp_agree = kp_unl = 0.0
        unl_probs = np.zeros(n_cls, np.float64)
        step = -1

        def local(v):  # per-example values of this worker's replicas, concatenated
            return np.concatenate([np.asarray(x) for x in self.strategy.experimental_local_results(v)])

        for step, batch in enumerate(self._batches(epoch)):
            res = self.strategy.run(self._train_step, args=(batch, unl_w))
            if self.semi and self.ema_teacher:  # the teacher is only read by self-training
                self._ema()
            red = {k: float(self.strategy.reduce("SUM", res[k], axis=None)) for k in ("correct", "n_labelled")}
            red["loss"] = float(self.strategy.reduce("MEAN", res["loss"], axis=None))
            for k in tot:
                tot[k] += red[k]
            if self.semi:
                idx = local(batch["index"])
                pm, pl = local(res["pseudo_mask"]) > 0, local(res["pseudo_label"])
                unl = self.data.train.labels[idx] < 0
                unl_seen += int(unl.sum())
                unl_probs += local(res["teacher_probs"])[unl].sum(axis=0)
                pseudo_hist += np.bincount(pl[pm], minlength=n_cls)
                pseudo_n += int(pm.sum())
                pseudo_right += int((pl[pm] == self.data.hidden_labels[idx][pm]).sum())
                if "kp_agree" in res:
                    kp_agree += float(self.strategy.reduce("SUM", res["kp_agree"], axis=None))
                    kp_unl += float(self.strategy.reduce("SUM", res["kp_unl"], axis=None))
            if progbar is not None:
                progbar.update(step + 1, [("loss", red["loss"]), ("acc", red["correct"] / max(red["n_labelled"], 1))])
        steps = max(step + 1, 1)
        logs = {"loss": tot["loss"] / steps, "train_acc": tot["correct"] / max(tot["n_labelled"], 1),
                "lr": float(self.schedule(self.optimizer.iterations))}
        if self.semi:
            if t.flexmatch:
                self.class_thr.assign(class_thresholds(pseudo_hist, t.pseudo_threshold, max(unl_seen, 1)))
            if t.distribution_alignment and unl_seen:
                prior = np.bincount(self.data.train.labels[self.data.train.labels >= 0], minlength=n_cls)
                self.da_ratio.assign(alignment_ratio(prior, unl_probs / unl_seen))
            logs.update(pseudo_count=pseudo_n, pseudo_acc=pseudo_right / max(pseudo_n, 1),
                        pseudo_hist=" ".join(str(int(c)) for c in pseudo_hist), unl_weight=float(unl_w))
            if t.keypoint_consistency == "consistent":  # share of the unlabelled joints kept as targets
                logs["kp_agree"] = kp_agree / max(kp_unl, 1.0)
        return logs

    def predict(self, prepared: pipeline.Prepared, model=None, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Logits (and key-points) for every sequence of ``prepared``, resampled whole (no augmentation)."""
        return predict_prepared(model or self.model, prepared, self.cfg, batch_size)

    def init_from(self, other_run) -> int:
        """Copy weights layer by layer (by name, where shapes match) from another run's model."""
        path = Path(other_run) / "model.keras"
        if not path.exists():
            raise FileNotFoundError(f"--init {other_run}: no model.keras there")
        src = load_model(path)
        by_name = {layer.name: layer for layer in src.layers}
        copied = 0
        for layer in self.model.layers:
            other = by_name.get(layer.name)
            if other is None or not layer.weights:
                continue
            w = other.get_weights()
            if [a.shape for a in w] == [b.shape for b in layer.get_weights()]:
                layer.set_weights(w)
                copied += 1
        self.teacher.set_weights(self.model.get_weights())
        return copied

    def hold_teacher(self, other_run, load: bool = True) -> None:
        """Take pseudo-labels from another run's model (a previous self-training round), held fixed: no EMA.

        ``load=False`` keeps the teacher's current weights (a resumed run's checkpoint already holds them)."""
        if load:
            self.teacher.set_weights(load_model(Path(other_run) / "model.keras").get_weights())
        self.ema_teacher = False

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int, logs_history: list[dict], best: dict) -> None:
        ck = self.run_dir / "checkpoints"
        ck.mkdir(parents=True, exist_ok=True)
        name = f"epoch_{epoch:04d}"
        tmp = ck / (name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        self.ckpt.write(str(tmp / "ckpt"))
        (tmp / "state.json").write_text(json.dumps({"epoch": epoch, "history": logs_history, "best": best}))
        shutil.rmtree(ck / name, ignore_errors=True)
        os.replace(tmp, ck / name)
        _atomic_write(ck / "latest.json", json.dumps({"checkpoint": name, "epoch": epoch}))
        for old in ck.glob("epoch_*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def restore_latest(self) -> tuple[int, list[dict], dict] | None:
        latest = self.run_dir / "checkpoints" / "latest.json"
        if not latest.exists():
            return None
        info = json.loads(latest.read_text())
        d = self.run_dir / "checkpoints" / info["checkpoint"]
        try:
            self.ckpt.read(str(d / "ckpt")).assert_consumed()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise KerasdanceError(
                f"{d} does not fit this model (written by another kerasdance version or configuration?): "
                f"{str(e).splitlines()[0][:200]}. Start a new run with another --out.") from None
        state = json.loads((d / "state.json").read_text())
        return state["epoch"], state["history"], state["best"]


class EpochCSVLogger(keras.callbacks.Callback):
    """``train_log.csv``: one row per epoch, the columns of the first epoch written (Keras' CSVLogger adds
    ``val_*`` columns full of NA when there is no validation split). Appends on ``--resume``."""

    def __init__(self, path: Path, append: bool = False):
        super().__init__()
        self.path, self.append, self.keys = Path(path), append, None

    def on_epoch_end(self, epoch, logs=None):
        import csv

        logs = logs or {}
        new_file = not (self.append and self.path.exists()) and self.keys is None
        if self.keys is None:
            self.keys = list(logs)
            if not new_file:  # resumed: keep the columns already in the file
                with self.path.open(newline="") as f:
                    header = next(csv.reader(f), None)
                self.keys = header[1:] if header else self.keys
        with self.path.open("w" if new_file else "a", newline="") as f:
            w = csv.writer(f)
            if new_file:
                w.writerow(["epoch", *self.keys])
            w.writerow([epoch, *(_fmt(logs.get(k, "")) for k in self.keys)])


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def train(data_dir, run_dir, cfg: RunConfig, resume: bool = False, cache_dir=None, verbose: int = 1,
          callbacks: list | None = None, init_from=None) -> dict:
    """Train (or resume) a run. Returns the final metrics dict (also in ``RUN_DIR/metrics.json``).

    ``init_from`` (a run folder) initialises every layer whose weights have the same shapes from that
    run's model, e.g. pre-training on synthetic data; the class head is skipped when the classes differ.
    Without it, a self-training run (some training sequences unlabelled) first trains supervised-only on
    the labelled ones in ``RUN_DIR/supervised_stage`` (``TrainConfig.supervised_stage_epochs``) and starts
    from that model. With ``TrainConfig.self_training_rounds`` > 1, rounds 1 .. R-1 train in
    ``RUN_DIR/round_<r>`` and the last in ``RUN_DIR``, each from that same starting model, rounds after the
    first under the previous round's model as a fixed teacher. ``resume`` continues whichever phase was
    interrupted.

    Raises:
        KerasdanceError: when ``run_dir`` holds another run and ``resume`` is False, or on bad data.
    """
    run_dir = Path(run_dir)
    strategy = make_strategy(cfg.train.strategy)
    if not _is_chief(strategy):  # other workers of a multi-worker run keep their files apart
        run_dir = run_dir / f"worker_{_task_id()}"
    session = _Session(data_dir, strategy, cache_dir, verbose)
    return _train(session, run_dir, cfg, resume, init_from=init_from, callbacks=callbacks)


@dataclasses.dataclass(frozen=True)
class _Session:
    """What every phase of one ``train`` call shares: the data, the strategy, the cache and the verbosity."""

    data_dir: Path
    strategy: tf.distribute.Strategy
    cache_dir: Path | None
    verbose: int


def _train(s: _Session, run_dir: Path, cfg: RunConfig, resume: bool, init_from=None, teacher_from=None,
           callbacks: list | None = None) -> dict:
    """One phase (the supervised stage, a self-training round or the run itself) in ``run_dir``."""
    t = cfg.train
    if run_dir.exists() and (run_dir / "config.json").exists():
        if not resume:
            raise KerasdanceError(f"{run_dir} already holds a run: pass --resume to continue it, or another --out")
        saved = RunConfig.of_run(run_dir)
        if saved.model != cfg.model or saved.data != cfg.data or saved.train.seed != t.seed:
            log.warning("resuming with the configuration saved in %s", run_dir / "config.json")
        cfg = saved.replace(train={"epochs": max(t.epochs, saved.train.epochs)}) if t.epochs > saved.train.epochs \
            else saved
        t = cfg.train
    run_dir.mkdir(parents=True, exist_ok=True)
    data, test = load_train_data(s.data_dir, cfg, s.cache_dir)
    # val_subjects="auto" is recorded as the subjects it chose, so that `evaluate --split val` reads the same ones
    cfg = cfg.replace(model={"num_classes": len(data.class_names)},
                      train={"val_subjects": data.val_subjects} if t.val_subjects else {})
    cfg.save(run_dir / "config.json")
    (run_dir / "classes.json").write_text(json.dumps(data.class_names))
    (run_dir / "data.json").write_text(json.dumps({"data_dir": str(Path(s.data_dir).resolve())}))
    started = resume and (run_dir / "checkpoints" / "latest.json").exists()
    semi = data.self_trains(t)
    if init_from is None and not started and semi and t.supervised_stage_epochs:
        init_from = _supervised_stage(s, run_dir, cfg)
    if teacher_from is None and semi and t.self_training_rounds > 1:
        teacher_from = _earlier_rounds(s, run_dir, cfg, init_from)
    elif t.self_training_rounds > 1 and not semi:
        log.warning("self_training_rounds=%d has no effect: %s", t.self_training_rounds,
                    "self-training is off" if not t.self_training else "every training sequence is labelled")
    trainer = Trainer(cfg, run_dir, data, s.strategy)
    history: list[dict] = []
    best = {"val_acc": -1.0, "epoch": -1}
    start = 0
    restored = trainer.restore_latest() if resume else None
    if restored:
        start, history, best = restored
        start += 1
        log.info("resumed %s at epoch %d", run_dir, start)
    elif init_from is not None:
        n = trainer.init_from(init_from)
        log.info("initialised %d layers from %s", n, init_from)
    if teacher_from is not None:
        trainer.hold_teacher(teacher_from, load=not restored)
        if not restored:
            log.info("Self-training round %d: pseudo-labels from %s", t.self_training_rounds, teacher_from)
    cb = keras.callbacks.CallbackList(
        [EpochCSVLogger(run_dir / "train_log.csv", append=bool(restored))] + list(callbacks or []),
        model=trainer.model)
    writer = tf.summary.create_file_writer(str(run_dir / "tb"))
    cb.on_train_begin()
    patience = 0
    for epoch in range(start, t.epochs):
        t0 = time.time()
        cb.on_epoch_begin(epoch)
        log.info("Epoch %d/%d", epoch + 1, t.epochs)
        bar = keras.utils.Progbar(trainer.steps_per_epoch, verbose=s.verbose, stateful_metrics=["loss", "acc"])
        logs = trainer.run_epoch(epoch, bar)
        logs["epoch_time_s"] = time.time() - t0
        if data.val is not None:
            vm = evaluate_prepared(trainer.predict(data.val), data.val, cfg)
            logs["val_acc"] = vm["accuracy"]
            improved = vm["accuracy"] > best["val_acc"]
            # A tie keeps the later epoch: further down the schedule, its key-points are better (on validation:
            # docs/EXPERIMENTS.md, "Validation discipline"). Early stopping still waits for a better accuracy.
            keep = vm["accuracy"] >= best["val_acc"]
        else:
            improved = keep = True
        if keep:
            best = {"val_acc": logs.get("val_acc", -1.0), "epoch": epoch}
            trainer.model.save(run_dir / "model.keras.tmp.keras")
            os.replace(run_dir / "model.keras.tmp.keras", run_dir / "model.keras")
        patience = 0 if improved else patience + 1
        history.append({k: v for k, v in logs.items() if not isinstance(v, str)})
        if writer is not None:
            with writer.as_default(step=epoch):
                for k, v in logs.items():
                    if not isinstance(v, str):
                        tf.summary.scalar(k, v)
        cb.on_epoch_end(epoch, logs)
        trainer.save_checkpoint(epoch, history, best)
        log.info("  epoch %d:%s", epoch + 1, "".join(f" {k}={v:.4g}" for k, v in logs.items() if isinstance(v, float)))
        if t.early_stopping_patience and patience >= t.early_stopping_patience:
            log.info("early stopping at epoch %d", epoch + 1)
            break
    cb.on_train_end()
    model = load_model(run_dir / "model.keras")
    metrics = evaluate_prepared(predict_prepared(model, test, cfg), test, cfg)
    metrics.update(best_epoch=best["epoch"] + 1, epochs_run=len(history),
                   train_time_s=float(sum(h.get("epoch_time_s", 0.0) for h in history)),
                   n_train=len(data.train), n_labelled=int((data.train.labels >= 0).sum()),
                   split=split_record(cfg.train))
    if data.val is not None:  # the kept model on the validation split: what settings are compared on
        vm = evaluate_prepared(predict_prepared(model, data.val, cfg), data.val, cfg)
        metrics["val"] = {"n": vm["n_test"], **{k: vm[k] for k in ("accuracy", "mpjpe_mm", "mpjpe_rel_mm", "map_10cm")}}
    _atomic_write(run_dir / "metrics.json", json.dumps(_jsonable(metrics), indent=2))
    return metrics


def _supervised_stage(s: _Session, run_dir: Path, cfg: RunConfig) -> Path:
    """Train (or finish, or reuse) the supervised-only stage of a self-training run; returns its folder."""
    stage_dir = run_dir / "supervised_stage"
    epochs = cfg.train.stage_epochs
    if not (stage_dir / "metrics.json").exists():
        log.info("Supervised stage: %d epochs on the labelled sequences, then self-training", epochs)
        stage_cfg = cfg.replace(train={"self_training": False, "epochs": epochs})
        _train(s, stage_dir, stage_cfg, (stage_dir / "config.json").exists())
    return stage_dir


def _earlier_rounds(s: _Session, run_dir: Path, cfg: RunConfig, init_from) -> Path:
    """Train (or finish, or reuse) self-training rounds 1 .. R-1 in ``RUN_DIR/round_<r>``, each from ``init_from``
    (the supervised stage), round r > 1 under round r-1's model as a fixed teacher; returns the last one's folder."""
    teacher = None
    for r in range(1, cfg.train.self_training_rounds):
        round_dir = run_dir / f"round_{r}"
        if not (round_dir / "metrics.json").exists():
            log.info("Self-training round %d of %d", r, cfg.train.self_training_rounds)
            _train(s, round_dir, cfg.replace(train={"self_training_rounds": r}), (round_dir / "config.json").exists(),
                   init_from, teacher)
        teacher = round_dir
    return teacher


def _jsonable(d):
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def _task_id() -> int:
    try:
        return int(json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0))
    except ValueError:
        return 0
