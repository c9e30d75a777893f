"""Evaluation protocols, validation and custom splits, label hiding and a run's data.

``split`` applies a protocol (cross-subject, or the MSR-Action3D action sets AS1/AS2/AS3) to a
dataset's sequence refs, with a subject-disjoint validation split carved out of the training subjects
and, for users' own data, custom train/val/test subjects or sequences (``TrainConfig.train_subjects``,
``val_subjects``, ``test_subjects``; ``read_split_file`` reads them from a JSON file);
``labelled_mask`` chooses, stratified by class and seeded, the sequences that keep their labels in the
few-label setting; ``load_train_data`` / ``load_split`` open a dataset folder and prepare a run's
splits (``pipeline.prepare``).

A split file (``kerasdance train --split FILE``) is a JSON object with up to three keys, each a list of
subject ids (numbers) or sequence names (strings)::

    {"train": [1, 3, 5, 7], "val": [9], "test": [2, 4, 6, 8, 10]}

``test`` missing: the protocol's test subjects; ``train`` missing: every sequence outside ``test`` and
``val``; ``val`` missing: no validation split (or ``--val-subjects``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.config import PROTOCOLS, RunConfig, TrainConfig
from kerasdance.data import msr
from kerasdance.data.dataset import Dataset, SequenceRef
from kerasdance.data.pipeline import Prepared, hide_labels, prepare

log = logging.getLogger("kerasdance.data")

_ACTION_SETS = {"as1": msr.AS1, "as2": msr.AS2, "as3": msr.AS3}
#: The parts of a run's data: ``load_split`` / ``kerasdance evaluate --split``.
PARTS = ("train", "val", "test")
#: ``val_subjects="auto"``: this share of the training subjects validates (at least one).
AUTO_VAL_SHARE = 0.2


class Split(NamedTuple):
    """Train, test and validation refs of a protocol, the class names their labels index, and the validation
    members (subject ids or sequence names; the ids chosen for ``val="auto"``)."""

    train: list[SequenceRef]
    test: list[SequenceRef]
    class_names: tuple[str, ...]
    val: list[SequenceRef] = []
    val_subjects: tuple[int | str, ...] = ()


Members = Sequence[int | str]


def split(refs: Iterable[SequenceRef], protocol: str, class_names: Iterable[str], *, train: Members = (),
          val: Members | str = (), test: Members = (), seed: int = 0, strict: bool = True) -> Split:
    """Split refs by an evaluation protocol, with optional validation and custom subjects.

    ``"cross-subject"``: subjects 1, 3, 5, 7, 9 (and unknown subjects) train, the others test.
    ``"as1"``/``"as2"``/``"as3"``: the same, restricted to the 8 actions of the MSR-Action3D
    action set, labels re-indexed 0..7 in action-id order (unlabelled refs are left out).

    ``train``/``val``/``test`` name subject ids (int) or sequence names (str). ``test``: these are the test
    split instead of the protocol's test subjects. ``train``: only these train (sequences in no split are left
    out); else every sequence outside test and validation trains. ``val``: these are the validation split, taken
    out of the training sequences (subject-disjoint when given by subject); ``"auto"``: a seeded choice of
    ``max(1, round(AUTO_VAL_SHARE x n))`` of the n training subjects.

    Args:
        refs: the sequences.
        protocol: one of ``PROTOCOLS``.
        class_names: the dataset's class names (the 20 MSR actions for the AS protocols).
        train, val, test: custom members, see above.
        seed: seeds the ``val="auto"`` choice.
        strict: every named member must be in the data and every named split have a sequence. False: a run's
            split replayed on other data (e.g. only its test subjects' recordings): absent members are ignored.

    Returns:
        The ``Split``.

    Raises:
        ValueError: unknown protocol, an AS protocol on a dataset without the MSR classes, a subject or sequence
            that the data does not have (the message lists those it has) or that is in two splits, a named
            split without a sequence, a validation subject among the test subjects, ``"auto"`` with fewer than
            two training subjects.
    """
    refs = list(refs)
    class_names = tuple(class_names)
    key = str(protocol).lower()
    if key not in PROTOCOLS:
        raise ValueError(f"Unknown protocol. Received: protocol={protocol!r}; valid: {list(PROTOCOLS)}")
    auto = isinstance(val, str)
    if auto and val != "auto":
        raise ValueError(f"val must be subject ids / sequence names or 'auto'. Received: val={val!r}")
    given = {"train": tuple(train), "val": () if auto else tuple(val), "test": tuple(test)}
    if strict:
        _check_members(refs, given)
    if key in _ACTION_SETS:
        if class_names != msr.MSR_ACTIONS:
            raise ValueError(f"Protocol {protocol!r} needs the 20 MSR-Action3D classes. "
                             f"Received: class_names={list(class_names)!r}")
        actions = _ACTION_SETS[key]
        remap = {a - 1: i for i, a in enumerate(actions)}
        refs = [dataclasses.replace(r, label=remap[r.label]) for r in refs if r.label in remap]
        class_names = tuple(msr.MSR_ACTIONS[a - 1] for a in actions)
    if given["test"]:
        in_test = _matcher(given["test"])
    else:
        def in_test(r: SequenceRef) -> bool:
            return not (r.subject is None or r.subject in msr.CROSS_SUBJECT_TRAIN)
    test_refs = [r for r in refs if in_test(r)]
    rest = [r for r in refs if not in_test(r)]
    if given["train"]:
        in_train = _matcher(given["train"])
        stray = sorted({_member_of(r, given["train"]) for r in test_refs if in_train(r)}, key=str)
        if stray:
            raise ValueError(f"train lists {stray!r}, which the test split has too"
                             + ("" if given["test"] else f" (the {key} protocol's test subjects)"))
    val_members = given["val"]
    if auto:
        candidates = [r for r in rest if not given["train"] or in_train(r)]
        val_members = auto_val_subjects(sorted({r.subject for r in candidates if r.subject is not None}), seed)
    if val_members:
        in_val = _matcher(val_members)
        clash = sorted({_member_of(r, val_members) for r in test_refs if in_val(r)}, key=str)
        if clash:
            raise ValueError(f"validation {clash!r} {'is' if len(clash) == 1 else 'are'} in the test split"
                             + ("" if given["test"] else f" (the {key} protocol's test subjects)")
                             + ": validation sequences come from the training subjects")
        val_refs = [r for r in rest if in_val(r)]
        rest = [r for r in rest if not in_val(r)]
    else:
        val_refs = []
    train_refs = [r for r in rest if in_train(r)] if given["train"] else rest
    for part, chosen, members in (("train", train_refs, given["train"]), ("val", val_refs, val_members),
                                  ("test", test_refs, given["test"])):
        if strict and not chosen and members:
            what = f"{part} ({', '.join(map(str, members))})" if members else part
            raise ValueError(f"the {what} split has no sequence"
                             + (f" of the {key} protocol's classes" if key in _ACTION_SETS else ""))
    if given["train"]:
        left = len(rest) - len(train_refs)
        if left:
            log.info("%d sequences are in no split (not in train, val or test): left out", left)
    return Split(train_refs, test_refs, class_names, val_refs, tuple(val_members))


def auto_val_subjects(subjects: Sequence[int], seed: int) -> tuple[int, ...]:
    """``val_subjects="auto"``: a seeded choice of ``max(1, round(AUTO_VAL_SHARE x n))`` of the ``n`` training
    subjects, sorted. The same subjects and seed give the same choice.

    Raises:
        ValueError: fewer than two subjects (one must still train).
    """
    subjects = sorted(set(subjects))
    if len(subjects) < 2:
        raise ValueError(f"val_subjects='auto' needs at least two training subjects (one validates, the others "
                         f"train). Received: training subjects {subjects!r}; name validation sequences instead")
    k = max(1, int(math.floor(AUTO_VAL_SHARE * len(subjects) + 0.5)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    return tuple(sorted(int(s) for s in rng.permutation(subjects)[:k]))


def run_split(refs: Iterable[SequenceRef], class_names: Iterable[str], t: TrainConfig) -> Split:
    """``split`` with a run's ``TrainConfig``: protocol, custom subjects, validation subjects and seed."""
    return split(refs, t.protocol, class_names, train=t.train_subjects, val=t.val_subjects,
                 test=t.test_subjects, seed=t.seed)


def read_split_file(path: str | Path) -> dict[str, tuple[int | str, ...]]:
    """Read a split file (see the module docstring): ``{"train": (...), "val": (...), "test": (...)}``,
    the keys it has.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, not an object with the keys train/val/test only, an entry neither a subject id
            nor a sequence name, or an entry in two splits.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or not d:
        raise ValueError(f"{path}: expected a JSON object such as "
                         '{"train": [1, 3, 5, 7], "val": [9], "test": [2, 4, 6, 8, 10]}')
    unknown = sorted(set(d) - set(PARTS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown!r}; valid: {list(PARTS)}")
    out = {}
    for part, members in d.items():
        if not isinstance(members, list) or not members:
            raise ValueError(f"{path}: {part!r} must be a non-empty list of subject ids or sequence names. "
                             f"Received: {members!r}")
        bad = [m for m in members if isinstance(m, bool) or not isinstance(m, int | str)]
        if bad:
            raise ValueError(f"{path}: {part!r}: each entry is a subject id (a number) or a sequence name (a "
                             f"string). Received: {bad!r}")
        out[part] = tuple(members)
    try:  # the same checks as a config's
        TrainConfig(**{f"{p}_subjects": m for p, m in out.items()})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return out


def split_record(t: TrainConfig) -> dict:
    """What defines a run's split, as JSON: ``protocol``, ``train``/``val``/``test`` members (lists; empty:
    the default), ``validation_fraction`` and ``seed``. Recorded in ``metrics.json``."""
    val = t.val_subjects if isinstance(t.val_subjects, str) else list(t.val_subjects)
    return {"protocol": t.protocol, "train": list(t.train_subjects), "val": val, "test": list(t.test_subjects),
            "validation_fraction": t.validation_fraction, "seed": t.seed}


def _matcher(members: Members):
    subjects = {m for m in members if isinstance(m, int)}
    names = {m for m in members if isinstance(m, str)}
    return lambda r: r.name in names or (r.subject is not None and r.subject in subjects)


def _member_of(r: SequenceRef, members: Members) -> int | str:
    """The entry of ``members`` that names ``r`` (its name before its subject)."""
    return r.name if r.name in members else r.subject


def _check_members(refs: list[SequenceRef], given: dict[str, tuple]) -> None:
    """Every member names a subject or sequence of ``refs``; no sequence is named by two splits."""
    subjects = sorted({r.subject for r in refs if r.subject is not None})
    names = {r.name for r in refs}
    for part, members in given.items():
        missing = [m for m in members if isinstance(m, int) and m not in subjects]
        if missing:
            raise ValueError(f"{part}: no subject {', '.join(map(str, missing))} in the data; its subjects are "
                             f"{', '.join(map(str, subjects)) or 'none (name sequences instead)'}")
        missing = [m for m in members if isinstance(m, str) and m not in names]
        if missing:
            some = sorted(names)[:5]
            raise ValueError(f"{part}: no sequence named {', '.join(map(repr, missing))} in the data "
                             f"({len(names)} sequences, e.g. {', '.join(some)})")
    parts = [p for p in given if given[p]]
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            in_a, in_b = _matcher(given[a]), _matcher(given[b])
            both = [r.name for r in refs if in_a(r) and in_b(r)]
            if both:
                raise ValueError(f"{len(both)} sequences are in both {a} and {b} (e.g. {both[0]}, subject "
                                 f"{next(r.subject for r in refs if r.name == both[0])}): a subject or sequence "
                                 "belongs to one split")


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
    # The validation members (subject ids or sequence names; the ids chosen for val_subjects="auto"), () for none.
    val_subjects: tuple[int | str, ...] = ()

    def self_trains(self, t) -> bool:
        """Whether a run with ``TrainConfig`` ``t`` self-trains on this data: self-training on, and some training
        sequences unlabelled."""
        return t.self_training and bool(np.any(self.train.labels < 0))


def load_split(data_dir, cfg: RunConfig, part: str = "test", cache_dir=None,
               progress=None) -> tuple[Prepared, list[str]]:
    """Open ``data_dir`` and prepare one part of the run's split: ``(prepared, class names)``.

    Args:
        data_dir: the dataset folder.
        cfg: the run's config (protocol, custom and validation subjects, seed).
        part: ``"test"``, ``"val"`` (the validation split, labels kept) or ``"train"`` (labels kept: all of them,
            the validation split left out).
        cache_dir, progress: as ``pipeline.prepare``.

    Raises:
        ValueError: unknown part, ``"val"`` for a run without a validation split, or a bad split (``split``).
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Received: part={part!r}")
    t = cfg.train
    if part == "val" and not t.val_subjects and t.validation_fraction <= 0:
        raise ValueError("the run has no validation split (train it with --val-subjects, or --val-fraction)")
    ds = Dataset.open(data_dir)
    sp = run_split(ds.refs, ds.class_names, t)
    with_depth = cfg.model.input_mode == "depth"
    if part == "test":
        return prepare(ds, sp.test, cfg.data, cache_dir, with_depth, progress), list(sp.class_names)
    if t.val_subjects:
        refs = sp.val if part == "val" else sp.train
        return prepare(ds, refs, cfg.data, cache_dir, with_depth, progress), list(sp.class_names)
    train_all = prepare(ds, sp.train, cfg.data, cache_dir, with_depth, progress)
    val_idx = fraction_val_indices(len(train_all), t.validation_fraction, t.seed)
    if part == "train":
        val_idx = np.setdiff1d(np.arange(len(train_all)), val_idx)
    return train_all.subset(val_idx), list(sp.class_names)


def load_test_split(data_dir, cfg: RunConfig, cache_dir=None, progress=None) -> tuple[Prepared, list[str]]:
    """Open ``data_dir`` and prepare the test split of the run: ``(test, class names)`` (``load_split``)."""
    return load_split(data_dir, cfg, "test", cache_dir, progress)


def fraction_val_indices(n: int, fraction: float, seed: int) -> np.ndarray:
    """``TrainConfig.validation_fraction``: the sorted indices of the ``max(1, round(fraction x n))`` training
    sequences (of ``n``, seeded) held out as validation; none for ``fraction <= 0``."""
    if fraction <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    n_val = max(1, int(round(fraction * n)))
    return np.sort(rng.permutation(np.arange(n))[:n_val])


def load_train_data(data_dir, cfg: RunConfig, cache_dir=None, progress=None) -> tuple[TrainData, Prepared]:
    """Open, split, prepare and hide labels: ``(TrainData, the prepared test split)``.

    The validation sequences keep their labels and never train: those of ``TrainConfig.val_subjects``
    (subject-disjoint), or a seeded ``validation_fraction`` of the training sequences. The labelled share of the
    rest is chosen by ``labelled_mask`` and the others' labels (and, unless ``keypoints_for_all``, key-points)
    are hidden by ``pipeline.hide_labels``.
    """
    t = cfg.train
    ds = Dataset.open(data_dir)
    sp = run_split(ds.refs, ds.class_names, t)
    if not sp.train:
        subjects = sorted({r.subject for r in ds.refs if r.subject is not None})
        raise ValueError(f"{data_dir}: no training sequence under protocol {t.protocol!r} (the data's subjects: "
                         f"{', '.join(map(str, subjects)) or 'none'}): name the test subjects (--test-subjects) or "
                         "the splits (--split FILE)")
    with_depth = cfg.model.input_mode == "depth"
    train = prepare(ds, sp.train, cfg.data, cache_dir, with_depth, progress)
    test = prepare(ds, sp.test, cfg.data, cache_dir, with_depth, progress)
    val = None
    if sp.val:
        val = prepare(ds, sp.val, cfg.data, cache_dir, with_depth, progress)
    elif t.validation_fraction > 0:
        val_idx = fraction_val_indices(len(train), t.validation_fraction, t.seed)
        val = train.subset(val_idx)
        train = train.subset(np.setdiff1d(np.arange(len(train)), val_idx))
    hidden = train.labels.copy()
    labelled = labelled_mask(train.labels, t.labelled_fraction, t.seed)
    train = hide_labels(train, labelled, t.keypoints_for_all, cfg.model.input_mode)
    return TrainData(train, val, list(sp.class_names), hidden, sp.val_subjects), test
