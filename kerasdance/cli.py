"""The ``kerasdance`` command line. Commands are thin: they call library functions.

Library code raises ``KerasdanceError`` / ``ValueError`` / ``FileNotFoundError``; only this
module turns them into one-line messages and a non-zero exit code.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import click

from kerasdance import __version__
from kerasdance.errors import KerasdanceError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _ProgressHandler(logging.Handler):
    """Log records as plain lines on the current stdout (looked up at each record, as click.echo does)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            click.echo(f"{record.levelname} {record.name}: {record.getMessage()}", err=True)
        else:
            click.echo(record.getMessage())


def show_progress(logger_name: str = "kerasdance.training") -> None:
    """Print a long job's progress messages (logged at INFO by the library) as plain lines on stdout."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(h, _ProgressHandler) for h in logger.handlers):
        logger.addHandler(_ProgressHandler())
    logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    logger.propagate = False


def friendly_errors(fn):
    """Turn the library's expected errors into ``click.ClickException`` (one line, exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (KerasdanceError, ValueError, FileNotFoundError, FileExistsError) as e:
            raise click.ClickException(str(e)) from None

    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="kerasdance")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int):
    """Depth-camera footage of dancers -> 3-D key-points and move labels.

    \b
    A typical session:
      kerasdance synth --set msr20 --out data/msr20          # or use real MSR-Action3D files
      kerasdance data inspect data/msr20
      kerasdance train --data data/msr20 --out runs/a --labelled-fraction 0.2
      kerasdance evaluate runs/a
      kerasdance export runs/a --format int8 --out model.tflite
      kerasdance-edge track --model model.tflite --source synthetic
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# --- data ---------------------------------------------------------------------------------------------------
@cli.command(context_settings=CONTEXT)
@click.option("--set", "set_name", type=click.Choice(["msr20", "dance11"]), default="msr20", show_default=True,
              help="msr20: the 20 MSR-Action3D actions, 10 subjects; dance11: 11 ballet/contemporary moves.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (MSR-Action3D layout: *_sdepth.bin, *_skeleton3D.txt, *_skeleton.txt; with "
                   "--continuous the generic layout: dataset.json and one .npz per take).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, byte-identical files.")
@click.option("--limit-per-class", type=int, default=None,
              help="Write at most this many sequences per class (clips only, not with --continuous).")
@click.option("--background/--no-background", default=False, show_default=True,
              help="Add a floor and a back wall (MSR-Action3D has background 0).")
@click.option("--continuous", is_flag=True,
              help="Write continuous performances instead of one clip per move: each take chains several moves "
                   "of the set with transitions and pauses, with a label per frame (-1 between moves).")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=None,
              help="--continuous: frames per second of the takes (motion is timed in seconds, so 30 gives twice "
                   "the frames of 15). [15; with --scene studio the sensor's]")
@click.option("--takes", type=click.IntRange(1), default=None,
              help="--continuous: takes per subject (every subject of the set performs). [2]")
@click.option("--moves", type=click.IntRange(1), default=None,
              help="--continuous: moves per take, in a seeded random order. [6]")
@click.option("--subjects", default=None, metavar="LIST",
              help="--continuous: only these synthetic subjects perform, e.g. 1,3 (a take each). [all of the set's]")
@click.option("--scene", type=click.Choice(["none", "studio"]), default="none", show_default=True,
              help="studio (with --continuous): the takes in a room as a depth camera sees it: floor, walls, "
                   "furniture, maybe a static figure, the camera 1-1.6 m high and tilted, sensor noise and holes; "
                   "each .npz adds every person's joints, labels and a person mask, and empty_room.npz (the room "
                   "without people) sits beside dataset.json. One room per --seed.")
@click.option("--people", type=click.IntRange(1, 4), default=None,
              help="--scene studio: dancers on the stage, each performing its own take (person 0's joints and "
                   "labels are the sequence's). [1]")
@click.option("--passerby", is_flag=True, help="--scene studio: somebody walks across the room once during each take.")
@click.option("--sensor", type=click.Choice(["kinect_v1", "d435", "d435_640"]), default=None,
              help="--scene studio: kinect_v1 (320x240, 15 fps, as MSR-Action3D), d435 (RealSense D435 848x480, "
                   "30 fps) or d435_640 (640x480, 30 fps); --fps defaults to the sensor's. D435 takes are large "
                   "(~0.6 MB a frame compressed: a 6-move take ~0.6 GB). [kinect_v1]")
@click.option("--mask/--no-mask", default=True, show_default=True,
              help="--scene studio: store the per-pixel person mask (int8, compressed) in each .npz.")
@click.option("--skeleton-noise", type=click.Choice(["clean", "kinect", "hard"]), default="clean", show_default=True,
              help="Clips: store the joints a real depth-camera tracker gives (lost joints and frames, freezes, "
                   "left/right swaps, feet through the floor, a wrong person for a few frames) instead of the true "
                   "joints plus jitter. For skeleton-mode sets: the stored joints are also a depth run's key-point "
                   "targets (as on real MSR-Action3D), so keep the default for depth training. Depth is the same.")
@click.option("--realism", type=click.Choice(["plain", "varied"]), default="plain", show_default=True,
              help="varied: vary like real recordings: per subject a camera 0.8-1.8 m high, pitched down 0-10 deg "
                   "and rolled +-3 deg (depth and joints in its frame), body shapes and clothing volume, and a "
                   "Kinect v1 sensor model (disparity steps, shadows, flying pixels and holes at edges and in thin "
                   "parts). The ranges are guesses, not fitted to real recordings. Not with --scene studio.")
@friendly_errors
def synth(set_name, out, seed, limit_per_class, background, continuous, fps, takes, moves, skeleton_noise,
          subjects, scene, people, passerby, sensor, mask, realism):
    """Generate a synthetic depth-dance set: one clip per move in the MSR-Action3D file formats, or with
    --continuous whole performances with per-frame labels in the generic layout; with --scene studio
    those performances in a room, by several dancers, with a passer-by, as a Kinect v1 or a RealSense D435 sees them."""
    from kerasdance.data.scenes import write_studio_takes
    from kerasdance.data.synthetic import write_performances, write_set

    studio = scene == "studio"
    if not studio:
        given = [f"--{k}" for k, v in (("people", people), ("sensor", sensor)) if v is not None]
        given += ["--passerby"] * passerby + ["--no-mask"] * (not mask)
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --scene studio")
    elif not continuous:
        raise click.UsageError("--scene studio renders continuous takes: add --continuous")
    elif background:
        raise click.UsageError("--background is the plain floor and wall without a scene; --scene studio has its room")
    elif realism != "plain":
        raise click.UsageError("--realism varied applies without a scene; --scene studio has its own camera and "
                               "sensor (--sensor)")
    varied = None if realism == "plain" else realism
    if subjects is not None and not continuous:
        raise click.UsageError("--subjects only applies with --continuous")
    subject_list = _subject_list(subjects)

    if not continuous:
        given = [f"--{k}" for k, v in (("fps", fps), ("takes", takes), ("moves", moves)) if v is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --continuous")
    elif limit_per_class is not None:
        raise click.UsageError("--limit-per-class applies to clips, not with --continuous")
    elif skeleton_noise != "clean":
        raise click.UsageError("--skeleton-noise applies to clips, not (yet) with --continuous")
    kind = "studio takes" if studio else "performances" if continuous else "sequences"
    with click.progressbar(length=1, label=f"rendering {set_name}{' ' + kind if continuous else ''}") as bar:
        state = {"n": 0}

        def progress(i, n):
            if bar.length != n:
                bar.length = n
            bar.update(i + 1 - state["n"])
            state["n"] = i + 1

        if studio:
            n = write_studio_takes(set_name, out, seed=seed, subjects=subject_list, takes=takes or 2, fps=fps,
                                   moves=moves or 6, people=people or 1, passerby=passerby,
                                   sensor=sensor or "kinect_v1", mask=mask, progress=progress)
        elif continuous:
            n = write_performances(set_name, out, seed=seed, subjects=subject_list, takes=takes or 2,
                                   fps=15.0 if fps is None else fps,
                                   moves=moves or 6, background=background, progress=progress,
                                   **({} if varied is None else {"realism": varied}))
        else:
            n = write_set(set_name, out, seed=seed, limit_per_class=limit_per_class, background=background,
                          progress=progress, skeleton_noise=skeleton_noise,
                          **({} if varied is None else {"realism": varied}))
    click.echo(f"wrote {n} {kind} to {out}")


def _subject_list(text: str | None) -> list[int] | None:
    """``--subjects 1,3`` -> [1, 3]; None -> None (every subject)."""
    if text is None:
        return None
    try:
        subjects = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        subjects = []
    if not subjects or min(subjects) < 1:
        raise click.BadParameter(f"expected subject numbers >= 1 separated by commas, e.g. 1,3. Received: {text!r}",
                                 param_hint="--subjects")
    return subjects


@cli.group(context_settings=CONTEXT)
def data():
    """Inspect, convert and preview datasets."""


@data.command("inspect", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary.")
@friendly_errors
def data_inspect(directory, json_out):
    """Validate a dataset (MSR-Action3D layout or generic layout) and print a summary: classes, subjects,
    lengths, depth range, which side performers lead their moves with (and whether `train --mirror` may
    help), how often skeletons leave the camera's view (and whether `train --edge-cuts` may help), problems."""
    from kerasdance.data.dataset import Dataset
    from kerasdance.data.inspect import format_inspect, inspect

    summary = inspect(Dataset.open(directory))
    click.echo(format_inspect(summary))
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2, default=str))
    failed = summary["failed"]
    if failed:
        names = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise click.ClickException(f"{len(failed)} of {summary['num_sequences']} sequences failed to load: {names} "
                                   "(see the problems above)")


@data.command("convert", context_settings=CONTEXT)
@click.argument("msr_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@friendly_errors
def data_convert(msr_dir, out_dir):
    """Convert an MSR-Action3D-layout folder to the generic layout (.npz + dataset.json)."""
    from kerasdance.data.dataset import convert_msr_to_generic

    click.echo(f"wrote {convert_msr_to_generic(msr_dir, out_dir)}")


@data.command("preview", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("preview.png"),
              show_default=True)
@click.option("--sequence", "name", default=None, help="Sequence name (default: the first one).")
@click.option("--frames", type=int, default=6, show_default=True)
@friendly_errors
def data_preview(directory, out, name, frames):
    """Write a PNG strip of depth frames with the projected skeleton."""
    from kerasdance.data.dataset import Dataset
    from kerasdance.report import preview_png

    ds = Dataset.open(directory)
    refs = [r for r in ds.refs if name in (None, r.name)]
    if not refs:
        raise click.ClickException(f"no sequence named {name!r} in {directory}")
    click.echo(f"wrote {preview_png(ds.load(refs[0]), out, frames)}")


# --- motion -------------------------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def motion():
    """Export tracked joints as a skeleton animation (BVH) or a table (CSV)."""


@motion.command("export", context_settings=CONTEXT)
@click.argument("joints", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["bvh", "csv"]), default=None,
              help="Output format (default: from the suffix of --out).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write (.bvh or .csv).")
@click.option("--person", type=int, default=None,
              help="The track ID to export from a JSONL that holds several performers.")
@click.option("--sequence", default=None,
              help="From a dataset folder: the sequence, or the take of a --record folder (its segments joined). "
                   "[the folder's only sequence or take]")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=None,
              help="Frame rate (default: from the timestamps of a JSONL, the dataset.json beside a .npz, else 15).")
@friendly_errors
def motion_export(joints, fmt, out_path, person, sequence, fps):
    """Export the joints of JOINTS: a JSONL of `kerasdance-edge track --jsonl`, a .npz with joints_m (a segment
    of `kerasdance-edge track --record`, a generic-layout sequence) or a dataset folder (with --sequence).

    \b
    BVH: Y up, centimetres, (X, Y, Z) = 100 * (x, y, -z) of camera metres (the dancer faces +Z); the 20
    joints (plus four zero-length helpers at the hips and shoulders) with the performer's median bone lengths;
    missing joints hold their last valid position. CSV: frame,time_s,<joint>_x,_y,_z in camera metres, empty = missing.

    \b
    Examples:
      kerasdance-edge track --model m.tflite --source show.npz --jsonl show.jsonl
      kerasdance motion export show.jsonl --out show.bvh
      kerasdance motion export shows/night1 --out night1.bvh     # a --record folder: its one take, whole
      kerasdance motion export rec/ --sequence rec_20261205-120000_0001 --format csv --out part1.csv
    """
    import numpy as np

    from kerasdance.motion import load_motion, write_bvh, write_csv

    if fmt is None:
        fmt = out_path.suffix.lower().lstrip(".")
        if fmt not in ("bvh", "csv"):
            raise click.UsageError(f"--format bvh|csv is needed: --out {str(out_path)!r} ends in neither .bvh "
                                   "nor .csv")
    m = load_motion(joints, person=person, sequence=sequence, fps=fps)
    if fmt == "bvh":
        filled = write_bvh(m, out_path)
        click.echo(f"wrote {out_path}: {filled.num_frames} frames at {filled.fps:g} fps "
                   f"({filled.filled_frames} with missing joints held from the last valid frame)")
    else:
        write_csv(m, out_path)
        missing = int((~np.isfinite(m.joints_m).all(axis=(1, 2))).sum())
        click.echo(f"wrote {out_path}: {m.num_frames} frames at {m.fps:g} fps ({missing} with missing joints, "
                   "left empty)")


# --- model --------------------------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def model():
    """Look at the model."""


@model.command("summary", context_settings=CONTEXT)
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A config JSON (or a run's config.json).")
@click.option("--input", "input_mode", type=click.Choice(["depth", "skeleton"]), default=None)
@click.option("--classes", type=int, default=None, help="Number of classes (default from the config: 20).")
@friendly_errors
def model_summary(config_file, input_mode, classes):
    """Print the layers, parameter count and FLOPs of the LSTM-CNN."""
    from kerasdance.config import RunConfig
    from kerasdance.models.lstm_cnn import build_lstm_cnn, count_flops

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    over = {k: v for k, v in {"input_mode": input_mode, "num_classes": classes}.items() if v is not None}
    cfg = cfg.replace(model=over)
    m = build_lstm_cnn(cfg.model, cfg.data)
    m.summary(print_fn=click.echo, line_length=100)
    click.echo(f"parameters: {m.count_params():,}")
    click.echo(f"FLOPs per window (T={cfg.data.frames}): {count_flops(m) / 1e6:.1f} M")


# --- training -----------------------------------------------------------------------------------------------
@cli.command(context_settings=CONTEXT)
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="An MSR-Action3D-layout folder or a generic-layout folder (dataset.json).")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: config, checkpoints, model.keras, train_log.csv, metrics.json.")
@click.option("--input", "input_mode", type=click.Choice(["depth", "skeleton"]), default=None,
              help="depth windows (key-points + action) or skeleton joints (action only). [default: depth]")
@click.option("--protocol", type=click.Choice(["cross-subject", "as1", "as2", "as3"]), default=None,
              help="Train/test split: cross-subject (1,3,5,7,9 vs 2,4,6,8,10) or an 8-action subset.")
@click.option("--labelled-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Share of training sequences that keep labels and key-points (stratified, seeded). [1.0]")
@click.option("--keypoints-for-all", is_flag=True, default=None,
              help="Hide only action labels; key-point targets stay on every sequence (camera tracker).")
@click.option("--self-training/--no-self-training", default=None,
              help="Pseudo-label the unlabelled sequences with an EMA teacher. [on]")
@click.option("--supervised-epochs", type=click.IntRange(-1), default=None,
              help="Self-training starts from a supervised-only run of this many epochs on the labelled sequences "
                   "(kept in OUT/supervised_stage). [-1: as many as --epochs; 0: self-train from scratch]")
@click.option("--rounds", type=click.IntRange(1), default=None,
              help="Self-training rounds (noisy student): each round after the first restarts from the same "
                   "starting model under the previous round's model as a fixed teacher (earlier rounds are kept "
                   "in OUT/round_<r>). [1]")
@click.option("--keypoint-consistency", type=click.Choice(["all", "confident", "consistent", "off"]), default=None,
              help="Self-training: where the teacher's key-points are targets for the student on unlabelled "
                   "sequences: all of them, the confidently pseudo-labelled ones, consistent (only the joints the "
                   "teacher places alike on two differently augmented views) or off. [all]")
@click.option("--mirror/--no-mirror", default=None,
              help="Mirror half the training windows left-right (moves done on either side, left-handed "
                   "performers). Not for classes that depend on the side, e.g. turn left / turn right. [off]")
@click.option("--edge-cuts/--no-edge-cuts", default=None,
              help="Cut part of the body off at a frame edge in 30% of the training windows, so that the model "
                   "learns to place joints out of the camera's view (performers near the camera: feet below the "
                   "frame); `data inspect` says whether the dataset's skeletons leave the "
                   "image. [off]")
@click.option("--live-windows/--clip-windows", default=None,
              help="Train on the windows the live tracker sees (each ends at a random frame and spans the tracker's "
                   "T frames before it, with the crop of those frames only) instead of whole recordings resampled "
                   "to T frames. [clip]")
@click.option("--skeleton-noise", "skeleton_noise_aug", type=click.Choice(["clean", "kinect", "hard"]), default=None,
              help="Skeleton input: pass most training windows' joints through this level of the tracker-noise "
                   "model (lost joints and frames, freezes, left/right swaps, foot errors, a wrong person), so that "
                   "the model does not learn clean joints only; clean: off. [kinect]")
@click.option("--epochs", type=click.IntRange(1), default=None, help="[120]")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="[16]")
@click.option("--seed", type=int, default=None, help="Seeds data order, augmentation, init, dropout. [0]")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=None,
              help="Hold out this share of training sequences (random, not subject-disjoint) to pick the best "
                   "epoch. [0: keep the last]")
@click.option("--val-subjects", default=None, metavar="IDS|auto",
              help="Validate on these training subjects (comma-separated ids or sequence names, e.g. 5,9): they "
                   "never train, keep their labels and pick the best epoch; `evaluate --split val` reads them. "
                   "auto: a seeded ~1/5 of the training subjects (at least one), recorded in OUT/config.json. "
                   "Make every choice (epochs, settings) on validation, and read the test split once. [none]")
@click.option("--test-subjects", default=None, metavar="IDS",
              help="Test on these subjects (comma-separated ids or sequence names) and train on the others, instead "
                   "of the protocol's test subjects. [protocol]")
@click.option("--split", "split_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='A JSON file naming the splits: {"train": [1, 3, 5, 7], "val": [9], "test": [2, 4, 6, 8, 10]} '
                   "(subject ids or sequence names; a missing key: train = the rest, val = none, test = the "
                   "protocol's). Stored in OUT/config.json, so `evaluate` reads the same split.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default=None,
              help="tf.distribute strategy; multiworker reads TF_CONFIG. [default]")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON with data/model/train sections; flags override it.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--init", "init_from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Initialise from another run's model (e.g. pre-trained on synthetic data); same-shape layers. "
                   "Replaces the supervised stage of self-training.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Preprocessing cache. [~/.cache/kerasdance]")
@friendly_errors
def train(data_dir, run_dir, input_mode, protocol, labelled_fraction, keypoints_for_all, self_training,
          supervised_epochs, rounds, keypoint_consistency, mirror, edge_cuts, live_windows, skeleton_noise_aug, epochs,
          batch_size, seed,
          val_fraction, val_subjects, test_subjects, split_file, strategy, config_file,
          resume, init_from, cache_dir):
    """Train the LSTM-CNN with the custom loop (Dice-CE 3:1, OHEM, self-training)."""
    from kerasdance.config import RunConfig
    from kerasdance.data.pipeline import EDGE_CUT_SHARE
    from kerasdance.evaluate import format_report
    from kerasdance.training.trainer import train as run_training

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    t = {"protocol": protocol, "labelled_fraction": labelled_fraction, "keypoints_for_all": keypoints_for_all,
         "self_training": self_training, "supervised_stage_epochs": supervised_epochs,
         "self_training_rounds": rounds, "keypoint_consistency": keypoint_consistency, "mirror_augment": mirror,
         "edge_cut_share": None if edge_cuts is None else EDGE_CUT_SHARE * edge_cuts, "live_windows": live_windows,
         "skeleton_noise": skeleton_noise_aug, "epochs": epochs,
         "batch_size": batch_size, "seed": seed,
         "validation_fraction": val_fraction, "strategy": strategy}
    t.update(_split_options(val_subjects, test_subjects, split_file, val_fraction))
    cfg = cfg.replace(train={k: v for k, v in t.items() if v is not None},
                      model={"input_mode": input_mode} if input_mode else {})
    show_progress()
    metrics = run_training(data_dir, run_dir, cfg, resume=resume, cache_dir=cache_dir or default_cache_dir(),
                           init_from=init_from)
    names = json.loads((run_dir / "classes.json").read_text())
    click.echo(format_report(metrics, names))
    click.echo(f"run saved in {run_dir}")


def _members(text: str, option: str) -> tuple[int | str, ...]:
    """``"5,9"`` -> ``(5, 9)``: subject ids, or sequence names where an entry is not a number."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise click.BadParameter(f"expected comma-separated subject ids or sequence names, e.g. 5,9. Received: "
                                 f"{text!r}", param_hint=option)
    return tuple(int(x) if x.lstrip("-").isdigit() else x for x in items)


def _split_options(val_subjects, test_subjects, split_file, val_fraction) -> dict:
    """``train --val-subjects/--test-subjects/--split`` -> ``TrainConfig`` fields."""
    from kerasdance.data.splits import read_split_file

    out = {}
    if split_file is not None:
        if test_subjects is not None:
            raise click.UsageError("--split FILE names the test split: not with --test-subjects")
        parts = read_split_file(split_file)
        if "val" in parts and val_subjects is not None:
            raise click.UsageError(f"{split_file} names the validation split: not with --val-subjects")
        out = {f"{part}_subjects": members for part, members in parts.items()}
    if val_subjects is not None:
        if val_fraction:
            raise click.UsageError("--val-subjects and --val-fraction are two ways to hold out a validation split: "
                                   "use one (--val-subjects keeps it subject-disjoint)")
        out["val_subjects"] = "auto" if val_subjects.strip().lower() == "auto" \
            else _members(val_subjects, "--val-subjects")
    if test_subjects is not None:
        out["test_subjects"] = _members(test_subjects, "--test-subjects")
    return out


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("KERASDANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kerasdance")
    return Path(base)


#: ``kerasdance evaluate`` and ``predict``: the flip test (``skeleton.flip_average``).
flip_test_option = click.option(
    "--flip-test", is_flag=True,
    help="Average the key-points with those of the mirrored input (two passes). For runs trained with --mirror: "
         "without it the mirrored input may be a body the model has not learnt, and the average can be worse (a "
         "warning says so). The move is named from the input as it is.")


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Dataset folder (default: the one the run was trained on).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write metrics as JSON.")
@click.option("--confusion-png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the confusion matrix as a PNG [RUN_DIR/confusion.png; --split val: confusion_val.png].")
@click.option("--split", "part", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The run's test split, or its validation split (a run trained with --val-subjects or "
                   "--val-fraction): compare settings on val, and read test once for the setting chosen.")
@flip_test_option
@friendly_errors
def evaluate(run_dir, data_dir, json_out, confusion_png, flip_test, part):
    """Evaluate a run on its test split (the protocol's, or the custom split in its config) or its validation
    split: accuracy, per-class P/R/F1, MPJPE, mAP@10cm."""
    from kerasdance.evaluate import confusion_png as write_png
    from kerasdance.evaluate import evaluate_run, format_report

    metrics, names = evaluate_run(run_dir, data_dir, default_cache_dir(), flip_test, part)
    click.echo(format_report(metrics, names))
    stem = "confusion" if part == "test" else f"confusion_{part}"
    write_png(metrics["confusion"], names, confusion_png or run_dir / f"{stem}.png")
    (run_dir / f"{stem}.txt").write_text(format_report(metrics, names) + "\n")
    if json_out:
        json_out.write_text(json.dumps(metrics, indent=2))


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--joints-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-frame predicted joints (camera metres) as JSON.")
@click.option("--render", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write an animated GIF of the depth frames with true (green) and predicted (red) skeletons.")
@flip_test_option
@friendly_errors
def predict(run_dir, file, joints_out, render, flip_test):
    """Predict the action of one recording (.bin / skeleton .txt / .npz) and its per-frame joints."""
    from kerasdance.predict import load_recording, predict_sequence

    seq = load_recording(file)
    res = predict_sequence(run_dir, seq, flip_test)
    click.echo(f"{res['class_name']}  (confidence {res['confidence'] * 100:.1f}%)")
    if joints_out and res["joints_m"] is not None:
        from kerasdance.skeleton import JOINT_NAMES

        joints_out.write_text(json.dumps({"frame_index": res["frame_index"].tolist(), "joint_names": JOINT_NAMES,
                                          "joints_m": res["joints_m"].round(4).tolist(),
                                          "action": res["class_name"], "confidence": res["confidence"]}))
        click.echo(f"wrote {joints_out}")
    if render:
        import numpy as np

        from kerasdance.report import animation_gif

        full = None
        if res["joints_m"] is not None:  # hold each predicted frame until the next resampled one
            pos = np.searchsorted(res["frame_index"], np.arange(seq.num_frames), side="right") - 1
            full = res["joints_m"][np.clip(pos, 0, len(res["joints_m"]) - 1)]
        click.echo(f"wrote {animation_gif(seq, render, full)}")


# --- export -------------------------------------------------------------------------------------------------
@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["float32", "float16", "dynamic", "int8"]), default="int8",
              show_default=True, help="int8: full integer (int8 in/out), calibrated on the run's training windows.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="MODEL.tflite; the sidecar MODEL.tflite.json is written next to it.")
@click.option("--qat", is_flag=True, help="Quantisation-aware fine-tune (Conv2D/Dense; the LSTM stays float).")
@click.option("--prune", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Prune to this sparsity (fine-tune with the pruning step driven by the loop).")
@click.option("--unroll/--no-unroll", default=True, show_default=True,
              help="Unrolled LSTM (fastest int8 on the interpreter) or the fused UNIDIRECTIONAL_SEQUENCE_LSTM.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the verification report (size, accuracy and MPJPE Keras vs TFLite, max diff) as JSON.")
@click.option("--max-drop", type=float, default=1.0, show_default=True,
              help="Fail when the TFLite model loses more accuracy points than this against Keras.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Dataset for calibration and verification (default: the run's).")
@click.option("--calibration-windows", type=click.IntRange(min=1), default=128, show_default=True,
              help="int8: calibrate on up to this many training sequences (one window each, no augmentation). "
                   "Ignored by the other formats.")
@click.option("--no-verify", is_flag=True, help="Skip running the .tflite on the test split.")
@friendly_errors
def export(run_dir, fmt, out_path, qat, prune, unroll, report_path, max_drop, data_dir, calibration_windows,
           no_verify):
    """Quantise and convert a run's model to TFLite, then verify it with ai-edge-litert."""
    from kerasdance.export.exporter import export_run

    rep = export_run(run_dir, out_path, format=fmt, qat=qat, prune=prune, unroll=unroll, report_path=report_path,
                     max_drop=max_drop, data_dir=data_dir, verify=not no_verify, cache_dir=default_cache_dir(),
                     calibration_size=calibration_windows)
    click.echo(f"wrote {out_path} ({rep['size_bytes'] / 1e6:.2f} MB) and {out_path.name}.json")
    if "accuracy_tflite" in rep:
        click.echo(f"accuracy: keras {rep['accuracy_keras'] * 100:.1f}%  tflite {rep['accuracy_tflite'] * 100:.1f}%   "
                   f"MPJPE: keras {rep['mpjpe_keras_mm']:.1f} mm  tflite {rep['mpjpe_tflite_mm']:.1f} mm   "
                   f"max |diff| {rep['max_abs_diff']:.2e}")


def main():
    cli(prog_name="kerasdance")


if __name__ == "__main__":
    main()
