"""Typed, frozen configuration. One JSON file round-trips to these dataclasses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kerasdance.skeleton import NUM_JOINTS

INPUT_MODES = ("depth", "skeleton")
PROTOCOLS = ("cross-subject", "as1", "as2", "as3")
KEYPOINT_HEADS = ("heatmap", "dense")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} keys: {sorted(unknown)}. Valid keys: {sorted(names)}")
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class DataConfig(_Serialisable):
    """How sequences become model inputs (shared by training and the edge runtime).

    Attributes:
        frames: T, frames per window after temporal resampling.
        crop_size: S, side of the square person crop in pixels.
        box_m: metric side of the crop box at the body's depth (scale-invariant crop).
        depth_band_mm: pixels farther than this from the body's median depth are background.
        depth_scale_mm: normalised depth = (depth - body depth) / depth_scale_mm.
        motion_channel: add a second channel, the frame-to-frame difference of normalised depth.
        velocity_features: skeleton mode: append joint velocities to positions.
        skeleton_repair: skeleton mode: clean each window of tracker joints (``preprocess.repair_skeleton``: lost,
            jumping and implausible joints filled in by interpolation, left/right swaps undone) and add a validity
            feature per joint (1 observed, 0 filled in).
        min_depth_mm / max_depth_mm: valid sensor range; other readings are treated as holes.
        crop_supersample: each crop pixel averages ``k x k`` depth pixels sampled evenly over its cell (an area
            average: thin limbs and silhouette edges keep sub-pixel detail); 1 = the nearest pixel only.
    """

    frames: int = 32
    crop_size: int = 64
    box_m: float = 2.4
    depth_band_mm: float = 700.0
    depth_scale_mm: float = 1000.0
    motion_channel: bool = True
    velocity_features: bool = True
    skeleton_repair: bool = True
    min_depth_mm: float = 400.0
    max_depth_mm: float = 8000.0
    crop_supersample: int = 1

    def __post_init__(self):
        _check(self.frames >= 2, f"frames must be >= 2. Received: frames={self.frames!r}")
        _check(self.crop_size >= 8, f"crop_size must be >= 8. Received: crop_size={self.crop_size!r}")
        _check(1 <= self.crop_supersample <= 8,
               f"crop_supersample must be in 1..8. Received: crop_supersample={self.crop_supersample!r}")
        _check(self.box_m > 0, f"box_m must be positive. Received: box_m={self.box_m!r}")
        _check(self.depth_band_mm > 0, f"depth_band_mm must be positive. Received: {self.depth_band_mm!r}")
        _check(self.depth_scale_mm > 0, f"depth_scale_mm must be positive. Received: {self.depth_scale_mm!r}")
        _check(
            0 <= self.min_depth_mm < self.max_depth_mm,
            f"Need 0 <= min_depth_mm < max_depth_mm. Received: {self.min_depth_mm!r}, {self.max_depth_mm!r}",
        )

    @property
    def channels(self) -> int:
        return 2 if self.motion_channel else 1

    @property
    def skeleton_features(self) -> int:
        return NUM_JOINTS * (3 * (2 if self.velocity_features else 1) + (1 if self.skeleton_repair else 0))


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Serialisable):
    """The LSTM-CNN's shape. ``num_classes`` and ``input_mode`` are filled from the data."""

    input_mode: str = "depth"
    num_classes: int = 20
    num_joints: int = NUM_JOINTS
    # Filters of the per-frame conv stem's strided layers, first to last (each halves the map; the last is S/16).
    # The first two layers' maps (S/2 and S/4 of every frame) take most of a training step's time.
    stem_filters: tuple[int, ...] = (8, 16, 32, 48)
    # The stem's first layer: 2 = a 5x5 conv with stride 2 (each later layer a 3x3 with stride 2);
    # 4 = a 4x4 patch conv with stride 4, which skips the S/2 map (give one stem width fewer for the same
    # last map, e.g. (16, 32, 48)): faster per training step and per int8 window, a little less accurate
    # (docs/EXPERIMENTS.md, "Patch stem").
    stem_first_stride: int = 2
    # Units of the LSTM that reads the per-frame features over the window.
    lstm_units: int = 128
    # Filters of the three time convolutions after the LSTM (kernel ``(conv_kernel, 1)``: conv_kernel frames).
    conv_filters: tuple[int, int, int] = (128, 128, 128)
    conv_kernel: int = 3
    # Dropout rate after the LSTM and before the classifier, in [0, 1).
    dropout: float = 0.3
    # Unroll the LSTM over the T frames in the Keras model (``kerasdance export --unroll`` unrolls the exported one).
    unroll: bool = False
    # "heatmap": a heat map and a depth map per joint, soft-argmax to sub-cell coordinates; "dense": 60 numbers per
    # frame regressed from the fused feature vector.
    keypoint_head: str = "heatmap"
    # Channels of the heat-map head's feature maps.
    keypoint_channels: int = 32
    # Cell size of the heat map in crop pixels (2, 4, 8 or 16: the stem map it is read from; 8: 8x8 cells at S=64).
    heatmap_stride: int = 8
    # The heat-map head's hidden conv: 3 (3x3, spatial context) or 1 (1x1, 20% fewer FLOPs per window).
    keypoint_kernel: int = 3
    # How many of those hidden convs the heat-map head stacks (per-frame key-point capacity at the S/8 map).
    keypoint_layers: int = 1
    # Temporal refinement of the key-points: (k, 1) convs over time read the per-frame key-point trajectory
    # with the frames' temporal context and add a correction (zero-initialised). k = this (odd, >= 3); 0: none.
    # Costs +241k parameters and +15 MFLOPs per window.
    keypoint_refine: int = 5

    def __post_init__(self):
        _check(self.input_mode in INPUT_MODES,
               f"input_mode must be one of {INPUT_MODES}. Received: input_mode={self.input_mode!r}")
        _check(self.num_classes >= 2, f"num_classes must be >= 2. Received: {self.num_classes!r}")
        _check(self.lstm_units > 0, f"lstm_units must be positive. Received: {self.lstm_units!r}")
        _check(len(self.conv_filters) == 3, f"The method uses three conv layers. Received: {self.conv_filters!r}")
        _check(self.keypoint_head in KEYPOINT_HEADS,
               f"keypoint_head must be one of {KEYPOINT_HEADS}. Received: keypoint_head={self.keypoint_head!r}")
        _check(self.heatmap_stride in (2, 4, 8, 16),
               f"heatmap_stride must be 2, 4, 8 or 16. Received: heatmap_stride={self.heatmap_stride!r}")
        _check(self.stem_first_stride in (2, 4),
               f"stem_first_stride must be 2 or 4. Received: stem_first_stride={self.stem_first_stride!r}")
        _check(self.input_mode != "depth" or self.keypoint_head != "heatmap"
               or self.heatmap_stride >= self.stem_first_stride,
               f"heatmap_stride ({self.heatmap_stride}) must be at least stem_first_stride "
               f"({self.stem_first_stride}): the heat map is read from a stem map.")
        _check(self.keypoint_kernel in (1, 3),
               f"keypoint_kernel must be 1 or 3. Received: keypoint_kernel={self.keypoint_kernel!r}")
        _check(self.keypoint_layers >= 1,
               f"keypoint_layers must be >= 1. Received: keypoint_layers={self.keypoint_layers!r}")
        _check(self.keypoint_refine == 0 or (self.keypoint_refine >= 3 and self.keypoint_refine % 2 == 1),
               f"keypoint_refine must be 0 (off) or an odd kernel >= 3. Received: {self.keypoint_refine!r}")
        _check(0 <= self.dropout < 1, f"dropout must be in [0, 1). Received: {self.dropout!r}")
        # JSON gives lists; keep tuples so the frozen config stays hashable.
        object.__setattr__(self, "stem_filters", tuple(self.stem_filters))
        object.__setattr__(self, "conv_filters", tuple(self.conv_filters))


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Serialisable):
    """The custom loop's knobs (method defaults: Dice:CE = 3:1, OHEM, self-training)."""

    # Training epochs (passes over the training sequences); with self-training, each stage's length by default.
    epochs: int = 120
    # Windows per batch.
    batch_size: int = 16
    # Peak learning rate of the warm-up + cosine schedule (AdamW).
    learning_rate: float = 4e-3
    # AdamW's decoupled weight decay.
    weight_decay: float = 1e-4
    # Epochs of linear warm-up to ``learning_rate`` before the cosine decay.
    warmup_epochs: int = 3
    # Gradients are clipped to this global norm.
    clip_norm: float = 5.0
    # Seeds the data order, the labelled split, augmentation, initialisation and dropout.
    seed: int = 0
    # Train/test split: "cross-subject" or one of the 8-action subsets "as1" / "as2" / "as3".
    protocol: str = "cross-subject"
    # Share of the training sequences that keep labels and key-points, in (0, 1] (stratified by class, seeded).
    labelled_fraction: float = 1.0
    # Hide only the action labels: key-point targets stay on every training sequence.
    keypoints_for_all: bool = False
    # The class loss: dice_weight x soft Dice + ce_weight x cross-entropy (the method's 3:1).
    dice_weight: float = 3.0
    ce_weight: float = 1.0
    # Weight of the masked per-joint Euclidean key-point loss (crop units) against the class loss.
    keypoint_weight: float = 100.0
    # Weight of the heat-map regulariser (``losses.heatmap_loss``: KL from a one-cell Gaussian at the joint to each
    # joint's heat map; heat-map head only), added to the key-point loss; 0: none.
    heatmap_weight: float = 0.0
    # Label smoothing of the cross-entropy, in [0, 1).
    label_smoothing: float = 0.05
    # OHEM: the share of each batch's examples that is back-propagated, hardest first, in (0, 1]; 1.0: OHEM off.
    ohem_fraction: float = 0.7
    # OHEM keeps at least this many examples per batch.
    ohem_min_count: int = 4
    # What OHEM ranks the examples by: "sum", the summed per-example loss (class + weighted key-point loss);
    # "each", the class loss and the key-point loss each mined by its own ranking; "class", the class loss mined,
    # the key-point loss on every example with targets (docs/EXPERIMENTS.md, "What OHEM ranks").
    ohem_ranking: str = "sum"
    # Pseudo-label the unlabelled training sequences with an EMA teacher (when labelled_fraction < 1).
    self_training: bool = True
    # Self-training starts from a supervised-only run on the labelled sequences (RUN_DIR/supervised_stage/)
    # of this many epochs: its pseudo-labels are confident from the first epoch. -1: as many as ``epochs``;
    # 0: self-training from scratch. No stage when the run is initialised from another one (``--init``).
    supervised_stage_epochs: int = -1
    # Rounds of self-training (noisy student). Round 1 is the loop above (an EMA teacher). Each later round restarts
    # the student from the same starting model (the supervised stage, or ``--init``) and takes its pseudo-labels
    # from the previous round's model, held fixed; earlier rounds are kept in RUN_DIR/round_<r>/.
    self_training_rounds: int = 1
    # Teacher confidence (top-class probability) a pseudo-label needs, in (0, 1).
    pseudo_threshold: float = 0.9
    flexmatch: bool = True  # per-class thresholds lowered for classes rarely predicted confidently; False: fixed
    # Rescale the teacher's probabilities so that their mean over the last epoch's unlabelled sequences matches
    # the labelled class prior (ReMixMatch's distribution alignment) before pseudo-labels are taken.
    distribution_alignment: bool = True
    # After each step: teacher <- ema_decay x teacher + (1 - ema_decay) x student; in [0, 1).
    ema_decay: float = 0.99
    # Weight of the unlabelled (pseudo-label) loss once ramped up ...
    unlabelled_weight: float = 1.0
    # ... over this many epochs (a sigmoid-shaped ramp-up from near 0); 0: full weight from the start.
    unlabelled_rampup_epochs: int = 10
    # Where the teacher's key-points are targets on the strong view: "all" unlabelled examples, "confident" (the
    # pseudo-labelled ones), "consistent" (on every unlabelled example, only the joints where the teacher's
    # key-points on the weak view, carried into the strong view's frame, lie within ``keypoint_agreement_tol`` of
    # its key-points on the strong view) or "off".
    keypoint_consistency: str = "all"
    # "consistent": the largest distance (normalised crop units: 1 = box_m / 2) at which the teacher's two views of a
    # joint agree.
    keypoint_agreement_tol: float = 0.05
    # Self-training batches: the share of each batch drawn from the labelled sequences, in [0, 1).
    labelled_batch_share: float = 0.5
    # Training-time augmentation (temporal crop, rotation, scale, shift, depth noise) on or off.
    augment: bool = True
    # Mirror half the training windows left-right (``Augment.mirror``), only for classes that do not depend on the
    # side ("turn left" / "turn right" do). For data where performers do a move on either side, not where all use
    # the same one: ``kerasdance data inspect`` says which a dataset is.
    mirror_augment: bool = False
    # Share of the training windows cut at a frame edge (``Augment.edge_cut``; 0: none; ``train --edge-cuts``: 0.3):
    # performers who come near the camera leave its field of view (feet below the frame first). Without it a model
    # has seen only whole bodies, and places the joints it cannot see at the frame's edge.
    edge_cut_share: float = 0.0
    # Skeleton mode: the tracker-noise level ("clean", "kinect", "hard"; ``kerasdance.data.tracker_noise``) that
    # most training windows' joints go through (``Augment.tracker_noise``), so that the model learns the joints a
    # real tracker gives, not only clean ones; "clean": none. No effect in depth mode.
    skeleton_noise: str = "kinect"
    # Train on the windows the live tracker sees: each training window ends at a random frame of its recording and
    # spans the tracker's T frames before it (fewer at a recording's start, repeated to T, as in the tracker's
    # warm-up), with the person crop of those frames only (no future frames), instead of the whole recording
    # resampled to T frames with one crop. Evaluation windows stay whole recordings (the offline comparison).
    live_windows: bool = False
    # Share of the training sequences held out to pick the best epoch (by validation accuracy); 0: keep the last.
    validation_fraction: float = 0.0
    # Stop after this many epochs without a better validation accuracy; 0: never.
    early_stopping_patience: int = 0
    # Subject-disjoint validation split: the training sequences of these subjects (subject ids, or sequence names)
    # keep their labels, never train, and pick the best epoch and early stopping. "auto": a seeded choice of about
    # 1/5 of the training subjects (at least one); a run's config.json records the ids chosen. (): none. Not with
    # ``validation_fraction``.
    val_subjects: tuple[int | str, ...] | str = ()
    # Custom test split: these subjects (ids, or sequence names) are the test split, and the other sequences train;
    # (): the protocol's test subjects. ``kerasdance train --test-subjects`` / ``--split FILE``.
    test_subjects: tuple[int | str, ...] = ()
    # Custom training split: only these subjects (ids, or sequence names) train; (): every sequence outside the test
    # and validation splits. ``kerasdance train --split FILE``.
    train_subjects: tuple[int | str, ...] = ()
    # tf.distribute strategy: "default", "mirrored" or "multiworker" (reads TF_CONFIG).
    strategy: str = "default"

    @property
    def stage_epochs(self) -> int:
        """Epochs of the supervised stage that self-training starts from (``supervised_stage_epochs`` resolved)."""
        return self.epochs if self.supervised_stage_epochs < 0 else self.supervised_stage_epochs

    def __post_init__(self):
        _check(self.epochs >= 1, f"epochs must be >= 1. Received: epochs={self.epochs!r}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1. Received: {self.batch_size!r}")
        _check(self.learning_rate > 0, f"learning_rate must be positive. Received: {self.learning_rate!r}")
        _check(self.protocol in PROTOCOLS, f"protocol must be one of {PROTOCOLS}. Received: {self.protocol!r}")
        _check(
            0 < self.labelled_fraction <= 1,
            f"labelled_fraction must be in (0, 1]. Received: labelled_fraction={self.labelled_fraction!r}",
        )
        _check(self.supervised_stage_epochs >= -1,
               f"supervised_stage_epochs must be >= -1. Received: {self.supervised_stage_epochs!r}")
        _check(self.self_training_rounds >= 1,
               f"self_training_rounds must be >= 1. Received: {self.self_training_rounds!r}")
        _check(0 < self.ohem_fraction <= 1, f"ohem_fraction must be in (0, 1]. Received: {self.ohem_fraction!r}")
        _check(0 <= self.edge_cut_share <= 1,
               f"edge_cut_share must be in [0, 1]. Received: edge_cut_share={self.edge_cut_share!r}")
        _check(self.skeleton_noise in ("clean", "kinect", "hard"),
               f"skeleton_noise must be clean, kinect or hard. Received: skeleton_noise={self.skeleton_noise!r}")
        _check(self.heatmap_weight >= 0, f"heatmap_weight must be >= 0. Received: {self.heatmap_weight!r}")
        _check(self.ohem_ranking in ("sum", "each", "class"),
               f"ohem_ranking must be sum, each or class. Received: {self.ohem_ranking!r}")
        _check(0 < self.pseudo_threshold < 1,
               f"pseudo_threshold must be in (0, 1). Received: pseudo_threshold={self.pseudo_threshold!r}")
        _check(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1). Received: {self.ema_decay!r}")
        _check(0 <= self.labelled_batch_share < 1,
               f"labelled_batch_share must be in [0, 1). Received: {self.labelled_batch_share!r}")
        _check(self.keypoint_consistency in ("all", "confident", "consistent", "off"),
               f"keypoint_consistency must be all, confident, consistent or off. Received: "
               f"{self.keypoint_consistency!r}")
        _check(self.keypoint_agreement_tol > 0,
               f"keypoint_agreement_tol must be positive. Received: {self.keypoint_agreement_tol!r}")
        _check_split_members(self)
        _check(
            self.strategy in ("default", "mirrored", "multiworker"),
            f"strategy must be default, mirrored or multiworker. Received: {self.strategy!r}",
        )


def _check_split_members(t: TrainConfig) -> None:
    """Check and normalise ``train_subjects``/``val_subjects``/``test_subjects`` (JSON lists -> tuples): subject
    ids or sequence names, none in two of them, ``val_subjects`` not with ``validation_fraction``."""
    parts = {}
    for name in ("train_subjects", "val_subjects", "test_subjects"):
        value = getattr(t, name)
        if name == "val_subjects" and value == "auto":
            continue
        auto = ' (or "auto")' if name == "val_subjects" else ""
        _check(isinstance(value, list | tuple),
               f"{name} must be a list of subject ids or sequence names{auto}. Received: {name}={value!r}")
        bad = [m for m in value if isinstance(m, bool) or not isinstance(m, int | str) or m == ""]
        _check(not bad, f"{name}: each entry is a subject id (int) or a sequence name (str). Received: {bad!r}")
        _check(len(set(value)) == len(value), f"{name} lists an entry twice. Received: {name}={list(value)!r}")
        object.__setattr__(t, name, tuple(value))
        parts[name] = set(value)
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = sorted(parts[a] & parts[b], key=str)
            _check(not both, f"{both!r} {'is' if len(both) == 1 else 'are'} in both {a} and {b}: a subject or "
                             "sequence belongs to one split")
    _check(not (t.val_subjects and t.validation_fraction > 0),
           f"val_subjects and validation_fraction are two ways to hold out a validation split: use one. Received: "
           f"val_subjects={t.val_subjects!r}, validation_fraction={t.validation_fraction!r}")


@dataclasses.dataclass(frozen=True)
class RunConfig(_Serialisable):
    """Everything a run needs, written to ``RUN_DIR/config.json``."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self):
        _check(not (self.train.heatmap_weight > 0 and self.model.keypoint_head != "heatmap"),
               f"heatmap_weight needs the heat-map key-point head. Received: heatmap_weight="
               f"{self.train.heatmap_weight!r} with keypoint_head={self.model.keypoint_head!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        unknown = set(d) - {"data", "model", "train"}
        if unknown:
            raise ValueError(f"Unknown config sections: {sorted(unknown)}. Valid: data, model, train")
        return cls(
            data=DataConfig.from_dict(d.get("data", {})),
            model=ModelConfig.from_dict(d.get("model", {})),
            train=TrainConfig.from_dict(d.get("train", {})),
        )

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """Copy with some fields of some sections replaced: ``cfg.replace(train={"epochs": 3})``."""
        out = {}
        for name in ("data", "model", "train"):
            part = getattr(self, name)
            out[name] = dataclasses.replace(part, **sections.get(name, {}))
        return RunConfig(**out)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path, saved_run: bool = False) -> RunConfig:
        """Read a config file; fields it lacks take today's defaults.

        ``saved_run``: the file is a run's own ``config.json`` (a complete dump): fields it lacks were added
        after it was written, and take the value that run was trained with (``SAVED_RUN_ADDED_FIELDS``), so
        that ``--resume`` rebuilds the same model.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object with data/model/train sections")
        if saved_run:
            d = {**d, **{sec: {**fields, **d.get(sec, {})} for sec, fields in SAVED_RUN_ADDED_FIELDS.items()}}
        return cls.from_dict(d)

    @classmethod
    def of_run(cls, run_dir: str | Path) -> RunConfig:
        """The config a run folder's model was trained with (``RUN_DIR/config.json``, read as a saved run)."""
        return cls.load(Path(run_dir) / "config.json", saved_run=True)


#: Fields added after runs were first saved, with the value a run saved without them was trained with.
SAVED_RUN_ADDED_FIELDS = {"data": {"crop_supersample": 1, "skeleton_repair": False},
                          "model": {"keypoint_head": "dense", "keypoint_kernel": 1, "keypoint_refine": 0,
                                    "keypoint_layers": 1},
                          "train": {"distribution_alignment": False, "edge_cut_share": 0.0, "live_windows": False,
                                    "skeleton_noise": "clean",
                                    "val_subjects": (), "test_subjects": (), "train_subjects": ()}}
