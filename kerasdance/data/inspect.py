"""``kerasdance data inspect``: load every sequence of a dataset and summarise it, with advice.

The summary counts classes, subjects, lengths, the depth range, missing frames and invalid joint
rows; it says which side performers lead their moves with (``side_summary``: whether
``train --mirror`` may help) and how often skeletons leave the camera's view (``edge_summary``:
whether ``train --edge-cuts`` may help). Files that fail to load are listed in ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from kerasdance.data import msr
from kerasdance.data.dataset import Dataset
from kerasdance.data.pipeline import move_pieces
from kerasdance.errors import DataFormatError
from kerasdance.skeleton import side_balance


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def inspect(dataset: Dataset, progress: Callable[[int, int], None] | None = None) -> dict:
    """Load every sequence and summarise the dataset (a JSON-serialisable dict).

    A sequence that fails to load becomes an entry of ``failed`` (its name) and of ``problems`` (the error),
    every warning logged while loading an entry of ``problems``, rather than an exception.

    Args:
        dataset: the opened dataset.
        progress: optional callable ``(done, total)``.

    Returns:
        ``{"root", "layout", "num_sequences", "class_names", "per_class", "unlabelled", "per_subject",
        "fps", "continuous" (None, or for recordings with per-frame labels ``{"recordings", "moves_per_class",
        "move_frames_share"}``), "modalities", "frames": {"min", "median", "max"}, "depth_mm": {"min", "max"}
        (nonzero; None without depth), "zero_frames", "zero_sequences", "invalid_joint_rows", "sides" (``side_summary``:
        which side performers lead with, and whether ``train --mirror`` may help), "frame_edges"
        (``edge_summary``: skeletons partly out of the camera's view, and whether ``train --edge-cuts`` may
        help), "problems", "failed"}``.
    """
    per_class = {c: 0 for c in dataset.class_names}
    per_subject: dict[str, int] = {}
    modalities = {"depth": 0, "skeleton": 0}
    unlabelled = 0
    for r in dataset.refs:
        if r.label is None:
            unlabelled += 1
        else:
            per_class[dataset.class_names[r.label]] += 1
        key = "unknown" if r.subject is None else str(r.subject)
        per_subject[key] = per_subject.get(key, 0) + 1
        for m in r.modalities:
            modalities[m] += 1
    per_class_moves = {c: 0 for c in dataset.class_names}
    continuous = move_frames = continuous_frames = 0
    lengths: list[int] = []
    dmin, dmax = None, None
    zero_frames = zero_seqs = invalid_rows = 0
    sides: list[tuple] = []
    edges: list[tuple] = []
    problems: list[str] = []
    failed: list[str] = []
    logger = logging.getLogger("kerasdance.data")
    handler = _Collect()
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        for i, ref in enumerate(dataset.refs):
            if progress:
                progress(i, len(dataset.refs))
            try:
                seq = dataset.load(ref)
            except (DataFormatError, OSError) as e:
                problems.append(f"{ref.name}: failed to load: {e}")
                failed.append(ref.name)
                continue
            lengths.append(seq.num_frames)
            if seq.frame_labels is not None:  # a continuous recording: its moves are labelled frame by frame
                continuous += 1
                continuous_frames += seq.num_frames
                unlabelled -= ref.label is None
                for _, start, stop, label in move_pieces(seq.frame_labels, 0):
                    per_class_moves[dataset.class_names[label]] += 1
                    move_frames += stop - start
            if seq.depth_mm is not None:
                nz = seq.depth_mm[seq.depth_mm > 0]
                if nz.size:
                    lo, hi = int(nz.min()), int(nz.max())
                    dmin = lo if dmin is None else min(dmin, lo)
                    dmax = hi if dmax is None else max(dmax, hi)
                valid = seq.depth_valid
                zero_frames += int((~valid).sum())
                zero_seqs += int(not valid.any())
            if seq.joints_m is not None:
                invalid_rows += int(np.isnan(seq.joints_m).any(axis=-1).sum())
                sides.append((ref.label, ref.subject, side_balance(seq.joints_m)))
                seen = np.isfinite(seq.joints_m).all(axis=-1)
                if seen.any():
                    edges.append((ref.subject, float(seq.intrinsics.outside(seq.joints_m)[seen].mean())))
            if {msr.KIND_SKELETON3D, msr.KIND_SCREEN} <= set(ref.paths):
                try:
                    n3 = len(msr.read_skeleton3d(ref.paths[msr.KIND_SKELETON3D])[0])
                    ns = len(msr.read_skeleton_screen(ref.paths[msr.KIND_SCREEN])[0])
                    if n3 != ns:
                        problems.append(f"{ref.name}: screen skeleton has {ns} frames, real-world has {n3}")
                except (DataFormatError, OSError) as e:
                    problems.append(f"{ref.name}: {e}")
            if progress:
                progress(i + 1, len(dataset.refs))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    problems = list(dict.fromkeys(handler.messages + problems))
    return {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "num_sequences": len(dataset.refs),
        "class_names": list(dataset.class_names),
        "per_class": per_class,
        "unlabelled": unlabelled,
        "fps": float(dataset.fps),
        "continuous": None if not continuous else {
            "recordings": continuous, "moves_per_class": per_class_moves,
            "move_frames_share": move_frames / max(continuous_frames, 1)},
        "per_subject": dict(sorted(per_subject.items(), key=lambda kv: (not kv[0].isdigit(), int(kv[0])
                                                                         if kv[0].isdigit() else 0))),
        "modalities": modalities,
        "frames": {
            "min": int(min(lengths)) if lengths else None,
            "median": float(np.median(lengths)) if lengths else None,
            "max": int(max(lengths)) if lengths else None,
        },
        "depth_mm": None if dmin is None else {"min": dmin, "max": dmax},
        "zero_frames": zero_frames,
        "zero_sequences": zero_seqs,
        "invalid_joint_rows": invalid_rows,
        "sides": side_summary(sides, dataset.class_names),
        "frame_edges": edge_summary(edges),
        "problems": problems,
        "failed": failed,
    }


#: ``|side_balance|`` from which a sequence counts as led by one side: that side's limbs spread >= 1.67x the other's.
LATERAL = 0.25


def side_summary(items: Iterable[tuple[int | None, int | None, float]], class_names) -> dict | None:
    """Which side performers lead their moves with, and whether mirroring training windows may help.

    Args:
        items: ``(label or None, subject or None, skeleton.side_balance)`` per sequence with a skeleton.
        class_names: the dataset's classes (labels index them).

    Returns:
        None without any skeleton; else ``{"right", "left", "symmetric"}`` sequence counts, ``"lateral_classes"``
        (classes with one-side-led sequences), ``"both_sides_classes"`` (those with at least 2 sequences, and
        10% of their one-sided ones, led by each side), ``"minority_side"`` and ``"minority_subjects"``
        (subjects whose one-sided sequences are mostly led by it) and ``"mirror"``: True where some class is
        done on both sides, so that ``train --mirror`` may help (and mirrored windows look like the data).
    """
    rows = [(lab, subj, float(x)) for lab, subj, x in items if np.isfinite(x)]
    if not rows:
        return None
    counts = {"right": 0, "left": 0, "symmetric": 0}
    by_class: dict[int, dict[str, int]] = {}
    by_subject: dict[int, dict[str, int]] = {}
    for lab, subj, x in rows:
        s = ("right" if x > 0 else "left") if abs(x) >= LATERAL else "symmetric"
        counts[s] += 1
        if s == "symmetric":
            continue
        for key, table in ((lab, by_class), (subj, by_subject)):
            if key is not None:
                table.setdefault(key, {"right": 0, "left": 0})[s] += 1
    minority, majority = ("left", "right") if counts["right"] >= counts["left"] else ("right", "left")
    both = [class_names[c] for c, n in sorted(by_class.items())
            if min(n["right"], n["left"]) >= max(2, 0.1 * (n["right"] + n["left"]))]
    return {**counts, "lateral_classes": [class_names[c] for c in sorted(by_class)], "both_sides_classes": both,
            "minority_side": minority,
            "minority_subjects": [s for s, n in sorted(by_subject.items()) if n[minority] > n[majority]],
            "mirror": bool(both)}


#: Share of a sequence's joint readings outside the image from which it counts as cut by the frame's edge.
CUT_SHARE = 0.05


def edge_summary(items: Iterable[tuple[int | None, float]]) -> dict | None:
    """How often performers leave the camera's view, and whether ``train --edge-cuts`` may help.

    Args:
        items: ``(subject or None, share of the sequence's valid joints that project outside the image)`` per
            sequence with a skeleton.

    Returns:
        None without any skeleton; else ``"sequences"``, ``"cut"`` (sequences with >= ``CUT_SHARE`` of their
        joints outside), ``"cut_subjects"`` ``{subject: cut sequences}``, ``"joints_outside"`` (the mean share) and
        ``"edge_cuts"``: True where some sequence is cut, so that the model should learn to place joints it
        cannot see.
    """
    rows = [(subj, share) for subj, share in items if np.isfinite(share)]
    if not rows:
        return None
    cut = [(subj, share) for subj, share in rows if share >= CUT_SHARE]
    by_subject: dict[str, int] = {}
    for subj, _ in cut:
        key = "unknown" if subj is None else str(subj)
        by_subject[key] = by_subject.get(key, 0) + 1
    return {"sequences": len(rows), "cut": len(cut), "cut_subjects": by_subject,
            "joints_outside": float(np.mean([share for _, share in rows])), "edge_cuts": bool(cut)}


def format_inspect(summary: dict) -> str:
    """A readable multi-line table of an ``inspect`` summary (for the CLI)."""
    lines = [
        f"dataset    {summary['root']}  ({summary['layout']} layout, {summary['num_sequences']} sequences)",
        f"modalities depth: {summary['modalities']['depth']}, skeleton: {summary['modalities']['skeleton']}",
    ]
    fr = summary["frames"]
    if fr["min"] is not None:
        lines.append(f"frames     min {fr['min']}, median {fr['median']:g}, max {fr['max']}")
    dm = summary["depth_mm"]
    lines.append("depth      none" if dm is None else f"depth      {dm['min']}..{dm['max']} mm (nonzero)")
    lines.append(f"zero depth frames {summary['zero_frames']}, all-zero sequences {summary['zero_sequences']}, "
                 f"invalid joint rows {summary['invalid_joint_rows']}")
    lines.append("")
    names = list(summary["per_class"])
    w = max([len("class")] + [len(n) for n in names])
    cont = summary.get("continuous")
    if cont:  # clips count as sequences, continuous recordings as their moves (runs of per-frame labels)
        lines.append(f"continuous {cont['recordings']} recordings with per-frame labels at {summary['fps']:g} fps, "
                     f"{cont['move_frames_share'] * 100:.0f}% of their frames in a move")
        lines.append(f"{'id':>3}  {'class':<{w}}  count  moves in recordings")
        for i, n in enumerate(names):
            lines.append(f"{i:>3}  {n:<{w}}  {summary['per_class'][n]:>5}  {cont['moves_per_class'][n]:>5}")
    else:
        lines.append(f"{'id':>3}  {'class':<{w}}  count")
        for i, n in enumerate(names):
            lines.append(f"{i:>3}  {n:<{w}}  {summary['per_class'][n]:>5}")
    if summary.get("unlabelled"):
        lines.append(f"{'-':>3}  {'(unlabelled)':<{w}}  {summary['unlabelled']:>5}")
    lines.append("")
    lines.append("subject  count")
    for s, n in summary["per_subject"].items():
        lines.append(f"{s:>7}  {n:>5}")
    sides = summary.get("sides")
    lines.append("")
    if sides is None:
        lines.append("sides      unknown (no skeleton files)")
    else:
        n = sides["right"] + sides["left"] + sides["symmetric"]
        lines.append(f"sides      led by the right limbs {sides['right']}, by the left {sides['left']}, both alike "
                     f"{sides['symmetric']} (of {n} with skeletons; led: one side's limbs move >= 1.67x the other's)")
        who = (f"; subjects mostly {sides['minority_side']}-led: {', '.join(map(str, sides['minority_subjects']))}"
               if sides["minority_subjects"] else "")
        if not sides["lateral_classes"]:
            lines.append(f"           no labelled sequence is led by one side{who}: nothing to say about --mirror")
        elif sides["mirror"]:
            lines.append(f"           done on both sides: {len(sides['both_sides_classes'])} of "
                         f"{len(sides['lateral_classes'])} one-sided classes{who}")
            lines.append("           -> `kerasdance train --mirror` may help, unless a class depends on the side")
        else:
            lines.append(f"           every one-sided class is done on one side only{who}: leave --mirror off")
    edges = summary.get("frame_edges")
    if edges is not None:
        if edges["edge_cuts"]:
            who = ", ".join(f"{s} ({n})" for s, n in edges["cut_subjects"].items())
            lines.append(f"frame      {edges['cut']} of {edges['sequences']} sequences have >= {CUT_SHARE:.0%} of "
                         f"their joints outside the image ({edges['joints_outside']:.1%} of all joints)")
            lines.append(f"           subject (sequences): {who}")
            lines.append("           -> `kerasdance train --edge-cuts` teaches the model to place joints it cannot "
                         "see (at a few mm more on whole bodies)")
        else:
            lines.append(f"frame      every skeleton inside the image ({edges['joints_outside']:.1%} of joints "
                         "outside): --edge-cuts only if performers will come nearer the camera than here")
    problems = summary["problems"]
    lines.append("")
    lines.append(f"problems   {len(problems)}" if problems else "problems   none")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
