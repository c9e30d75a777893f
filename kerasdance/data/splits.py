"""Evaluation protocols, label hiding and a run's data: which sequences train, test, keep their labels.

``split`` applies a protocol (cross-subject, or the MSR-Action3D action sets AS1/AS2/AS3) to a
dataset's sequence refs; ``labelled_mask`` chooses, stratified by class and seeded, the sequences
that keep their labels in the few-label setting; ``load_train_data`` / ``load_test_split`` open a
dataset folder and prepare a run's splits (``pipeline.prepare``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from kerasdance.config import PROTOCOLS, RunConfig
from kerasdance.data import msr
from kerasdance.data.dataset import Dataset, SequenceRef
from kerasdance.data.pipeline import Prepared, hide_labels, prepare

_ACTION_SETS = {"as1": msr.AS1, "as2": msr.AS2, "as3": msr.AS3}


class Split(NamedTuple):
    """Train and test refs of a protocol and the class names their labels index."""

    train: list[SequenceRef]
    test: list[SequenceRef]
    class_names: tuple[str, ...]


def split(refs: Iterable[SequenceRef], protocol: str, class_names: Iterable[str]) -> Split:
    """Split refs by an evaluation protocol.

    ``"cross-subject"``: subjects 1, 3, 5, 7, 9 (and unknown subjects) train, the others test.
    ``"as1"``/``"as2"``/``"as3"``: the same, restricted to the 8 actions of the MSR-Action3D
    action set, labels re-indexed 0..7 in action-id order (unlabelled refs are left out).

    Args:
        refs: the sequences.
        protocol: one of ``PROTOCOLS``.
        class_names: the dataset's class names (the 20 MSR actions for the AS protocols).

    Returns:
        The ``Split``.

    Raises:
        ValueError: unknown protocol, or an AS protocol on a dataset without the MSR classes.
    """
    refs = list(refs)
    class_names = tuple(class_names)
    key = str(protocol).lower()
    if key not in PROTOCOLS:
        raise ValueError(f"Unknown protocol. Received: protocol={protocol!r}; valid: {list(PROTOCOLS)}")
    if key in _ACTION_SETS:
        if class_names != msr.MSR_ACTIONS:
            raise ValueError(f"Protocol {protocol!r} needs the 20 MSR-Action3D classes. "
                             f"Received: class_names={list(class_names)!r}")
        actions = _ACTION_SETS[key]
        remap = {a - 1: i for i, a in enumerate(actions)}
        refs = [dataclasses.replace(r, label=remap[r.label]) for r in refs if r.label in remap]
        class_names = tuple(msr.MSR_ACTIONS[a - 1] for a in actions)
    train = [r for r in refs if r.subject is None or r.subject in msr.CROSS_SUBJECT_TRAIN]
    test = [r for r in refs if not (r.subject is None or r.subject in msr.CROSS_SUBJECT_TRAIN)]
    return Split(train, test, class_names)


def labelled_mask(labels, fraction: float, seed: int) -> np.ndarray:
    """Choose which sequences keep their labels: stratified by class, seeded.

    Per class, ``max(1, round(fraction * n))`` sequences are labelled (all of them for
    ``fraction == 1``). Sequences whose label is None or negative are never labelled.

    Args:
        labels: one label per sequence (an int, or None / -1 for none), e.g. ``[r.label for r in refs]``.
        fraction: in (0, 1].
        seed: seed of ``np.random.default_rng``.

    Returns:
        ``(len(labels),)`` bool mask.

    Raises:
        ValueError: ``fraction`` outside (0, 1].
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | np.floating | np.integer) \
            or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]. Received: fraction={fraction!r}")
    labels = np.array([-1 if lab is None else int(lab) for lab in labels], dtype=np.int64)
    mask = np.zeros(len(labels), bool)
    if fraction == 1:
        return labels >= 0
    rng = np.random.default_rng(seed)
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx), max(1, int(math.floor(fraction * len(idx) + 0.5))))
        mask[rng.permutation(idx)[:k]] = True
    return mask


# --- a run's data --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainData:
    """What the training loop trains on: labels of unlabelled sequences are already hidden (-1)."""

    train: Prepared
    val: Prepared | None
    class_names: list[str]
    hidden_labels: np.ndarray  # true labels of the training sequences: for logging pseudo-label accuracy only

    def self_trains(self, t) -> bool:
        """Whether a run with ``TrainConfig`` ``t`` self-trains on this data: self-training on, and some training
        sequences unlabelled."""
        return t.self_training and bool(np.any(self.train.labels < 0))


def load_test_split(data_dir, cfg: RunConfig, cache_dir=None, progress=None) -> tuple[Prepared, list[str]]:
    """Open ``data_dir`` and prepare the test split of the run's protocol: ``(test, class names)``."""
    ds = Dataset.open(data_dir)
    sp = split(ds.refs, cfg.train.protocol, ds.class_names)
    test = prepare(ds, sp.test, cfg.data, cache_dir, cfg.model.input_mode == "depth", progress)
    return test, list(sp.class_names)


def load_train_data(data_dir, cfg: RunConfig, cache_dir=None, progress=None) -> tuple[TrainData, Prepared]:
    """Open, split, prepare and hide labels: ``(TrainData, the prepared test split)``.

    The validation sequences (``TrainConfig.validation_fraction`` of the training split, seeded) keep their
    labels; the labelled share of the rest is chosen by ``labelled_mask`` and the others' labels (and, unless
    ``keypoints_for_all``, key-points) are hidden by ``pipeline.hide_labels``.
    """
    t = cfg.train
    ds = Dataset.open(data_dir)
    sp = split(ds.refs, t.protocol, ds.class_names)
    with_depth = cfg.model.input_mode == "depth"
    train_all = prepare(ds, sp.train, cfg.data, cache_dir, with_depth, progress)
    test = prepare(ds, sp.test, cfg.data, cache_dir, with_depth, progress)
    val = None
    idx = np.arange(len(train_all))
    if t.validation_fraction > 0:
        rng = np.random.default_rng(np.random.SeedSequence([t.seed, 7]))
        n_val = max(1, int(round(t.validation_fraction * len(idx))))
        val_idx = np.sort(rng.permutation(idx)[:n_val])
        idx = np.setdiff1d(idx, val_idx)
        val = train_all.subset(val_idx)
    train = train_all.subset(idx)
    hidden = train.labels.copy()
    labelled = labelled_mask(train.labels, t.labelled_fraction, t.seed)
    train = hide_labels(train, labelled, t.keypoints_for_all, cfg.model.input_mode)
    return TrainData(train, val, list(sp.class_names), hidden), test
