"""``kerasdance-edge``: track a dancer live and stream key-points and moves; benchmark a model.

Examples::

    kerasdance-edge track --model model.tflite --source realsense --osc 127.0.0.1:9000 --ws 8765
    kerasdance-edge track --model model.tflite --source oakd --osc 127.0.0.1:7110 --osc-format osceleton
    kerasdance-edge track --model model.tflite --source realsense --web 8080 --web-host 0.0.0.0
    kerasdance-edge track --model model.tflite --source a01_s01_e01_sdepth.bin --fast --jsonl -
    kerasdance-edge bench --model model.tflite --frames 300 --json
    kerasdance-edge eval --model model.tflite --data data/msr20 --json live.json
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
import numpy as np

from kerasdance import __version__
from kerasdance.errors import KerasdanceError
from kerasdance.scene import PICKS

log = logging.getLogger("kerasdance.edge")

#: Errors the CLI turns into a one-line message.
EXPECTED_ERRORS = (KerasdanceError, ValueError, FileNotFoundError, ImportError, OSError)


def _fail(e: BaseException) -> click.ClickException:
    return click.ClickException(str(e) or type(e).__name__)


class _StderrHandler(logging.Handler):
    """Log records as one line on the *current* ``sys.stderr`` (so that stdout can carry JSON lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)
        except Exception:  # noqa: BLE001
            self.handleError(record)


def _setup_logging(verbose: int) -> None:
    logger = logging.getLogger("kerasdance")
    logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, _StderrHandler)] + [_StderrHandler()]
    if verbose:
        logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


def _load_model(path: str, threads: int, flip_test: bool = False):
    from kerasdance_edge.interpreter import EdgeModel

    return EdgeModel(path, num_threads=threads, flip_test=flip_test)


#: ``track`` and ``bench``: the flip test.
flip_test_option = click.option(
    "--flip-test", is_flag=True,
    help="Average the joints with those of the mirrored window: two model calls per frame (twice the model's "
         "time); for a model trained with --mirror: without it the average can be worse (a warning says so).")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not 0 < p < 65536:
        raise click.BadParameter(f"expected HOST:PORT or PORT. Received: {value!r}")
    return host or "127.0.0.1", p


def make_source(spec: str, model, realtime: bool):
    """``realsense``, ``oakd[:DEVICE]``, ``synthetic`` or a recording path -> an (unopened) ``DepthSource``."""
    from kerasdance_edge.sources import OakDSource, RealSenseSource, RecordingSource, SyntheticSource

    if spec == "realsense":
        return RealSenseSource(target=model.intrinsics)
    if spec == "oakd" or spec.startswith("oakd:"):
        device = spec.partition(":")[2]
        if spec.endswith(":") and not device:
            raise click.BadParameter(f"expected 'oakd' or 'oakd:DEVICE' (MxID, USB port name or IP address). "
                                     f"Received: {spec!r}", param_hint="'--source'")
        return OakDSource(target=model.intrinsics, device_id=device or None)
    if spec == "synthetic":
        return SyntheticSource(realtime=realtime)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--source {spec!r}: not 'realsense', 'synthetic' or an existing recording file "
                                f"(nor 'oakd')")
    return RecordingSource(path, realtime=realtime)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kerasdance-edge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug) on stderr.")
def main(verbose: int) -> None:
    """kerasdance on the device: depth camera -> 3-D key-points and the current move, live (TensorFlow-free)."""
    _setup_logging(verbose)


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="MODEL.tflite (its sidecar MODEL.tflite.json beside it).")
@click.option("--source", "source_spec", default="realsense", show_default=True,
              help="'realsense' (Intel RealSense), 'oakd' or 'oakd:DEVICE' (Luxonis OAK-D; DEVICE: MxID, USB port "
                   "name or IP address), 'synthetic' or a recording (MSR *_sdepth.bin or .npz with depth_mm).")
@click.option("--osc", "osc", default=None, metavar="HOST:PORT", help="Send OSC bundles (UDP) there.")
@click.option("--osc-format", "osc_format", type=click.Choice(["kerasdance", "osceleton"]), default="kerasdance",
              show_default=True,
              help="OSC address space: kerasdance (/kerasdance/joint/<name> x y z in camera metres, /kerasdance/move, "
                   "state, ready) or osceleton (/joint <name> <user> x y z normalised as OSCeleton does, /new_user, "
                   "/new_skel, /lost_user: for patches written for OSCeleton; usual port 7110).")
@click.option("--jsonl", "jsonl", default=None, metavar="FILE|-", help="Write one JSON object per frame ('-': stdout).")
@click.option("--ws", "ws_port", default=None, type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve JSON per frame to WebSocket clients on this port.")
@click.option("--ws-host", default="127.0.0.1", show_default=True, help="Interface for --ws.")
@click.option("--web", "web_port", default=None, type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve a live view on this port: open http://HOST:PORT/ in a browser (depth image, 3-D skeleton, "
                   "move, state, frames/s, latency, faults).")
@click.option("--web-host", default="127.0.0.1", show_default=True,
              help="Interface for --web (0.0.0.0: watch from another computer on the network).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
@click.option("--realtime/--fast", default=True, show_default=True,
              help="Replay recordings / synthetic frames at their frame rate, or as fast as possible.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@click.option("--smooth/--no-smooth", default=True, show_default=True, help="One-Euro smoothing of the joints.")
@click.option("--window-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time span the model sees (default T / 15 s, as in training).")
@click.option("--room", "room_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An empty-room capture (`kerasdance-edge calibrate`): its background and floor are removed. "
                   "Without it the background is learned over the first 3 s (start with the view clear, or move).")
@click.option("--max-people", type=click.IntRange(min=1), default=1, show_default=True,
              help="Follow up to N dancers, each with a stable ID, its own window and move (results carry "
                   "'person'); 1: one dancer, the output without a person ID.")
@click.option("--pick", type=click.Choice(PICKS), default="largest", show_default=True,
              help="Who is followed when more people are in view than --max-people: the largest (visible "
                   "surface), the nearest, or the one nearest the centre of the view.")
@click.option("--segment/--no-segment", default=True, show_default=True,
              help="Find the dancers in the full frame (floor, background and other people set to 0); "
                   "--no-segment: the frame as it comes (for recordings whose background is already 0).")
@click.option("--record", "record_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also save the show as a dataset in DIR (generic layout: depth frames, tracked joints, states, "
                   "moves, timestamps, fps, camera), one .npz per --record-segment-s seconds, written in the "
                   "background; DIR must be new or empty. Read it with `kerasdance data inspect DIR`, replay a "
                   "part with --source DIR/<part>.npz.")
@click.option("--record-labels", type=click.Choice(["none", "tracked"]), default="none", show_default=True,
              help="none: an unlabelled recording; tracked: the tracked moves saved as per-frame labels (the "
                   "model's guesses: check them before training on them).")
@click.option("--record-append", is_flag=True,
              help="Add a take to the recording already in --record DIR (same model classes, camera and fps).")
@click.option("--record-segment-s", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Seconds of frames per file: the most a crash can lose.")
@flip_test_option
def track(model_path, source_spec, osc, osc_format, jsonl, ws_port, ws_host, web_port, web_host, max_frames, realtime,
          record_dir, record_labels, record_append, record_segment_s,
          threads, smooth, window_seconds, room_path, max_people, pick, segment, flip_test) -> None:
    """Track a dancer and stream joints and moves (live status on stderr about once a second)."""
    from kerasdance_edge.sinks import JsonlSink, OscSink, WebSocketSink
    from kerasdance_edge.smoothing import OneEuroFilter
    from kerasdance_edge.tracker import Tracker, run

    sinks, web = [], None
    try:
        model = _load_model(model_path, threads, flip_test)
        source = make_source(source_spec, model, realtime)
        tracker = make_tracker(lambda: Tracker(model, window_seconds=window_seconds, smoothing=OneEuroFilter(
            min_cutoff=1.0, beta=0.5, d_cutoff=1.0) if smooth else None), segment, room_path, max_people, pick)
        names = model.joint_names
        if jsonl is not None:
            sinks.append(JsonlSink(jsonl, joint_names=names))
        if osc is not None:
            host, port = _host_port(osc)
            sinks.append(OscSink(host, port, joint_names=names, fmt=osc_format))
        if ws_port is not None:
            sinks.append(WebSocketSink(ws_port, host=ws_host, joint_names=names))
            click.echo(f"WebSocket: ws://{ws_host}:{sinks[-1].port}", err=True)
        if web_port is not None:
            from kerasdance_edge.webview import LiveView

            web = LiveView(web_port, host=web_host, joint_names=names)
            sinks.append(web)
            source = web.tap(source)  # its frames become the page's depth image
            anywhere = web_host in ("0.0.0.0", "::", "")
            click.echo(f"live view: {web.url}" + (f" (from another computer: http://DEVICE-ADDRESS:{web.port}/)"
                                                  if anywhere else ""), err=True)
        if record_dir is not None:
            from kerasdance_edge.recorder import Recorder

            recorder = Recorder(record_dir, model.class_names, names, labels=record_labels, append=record_append,
                                segment_s=record_segment_s)
            sinks.append(recorder)
            source = recorder.tap(source)  # the recorder sees every frame the tracker gets
        if not sinks:
            click.echo("no sink (--jsonl, --osc, --ws, --web): results are only counted", err=True)
    except EXPECTED_ERRORS as e:
        for s in sinks:
            s.close()
        raise _fail(e) from None

    last = [time.perf_counter()]

    def status(result, stats):
        if web is not None:
            web.observe(stats)
        now = time.perf_counter()
        if now - last[0] < 1.0:
            return
        last[0] = now
        move = f"{result.move} ({result.confidence:.2f})" if result.move else "-"
        click.echo(f"frame {result.index}  {stats.fps:5.1f} fps  latency p50 {stats.latency_ms(50):.1f} ms  "
                   f"{result.state}  move {move}  faults {stats.faults.total()}", err=True)

    try:
        stats = run(source, tracker, sinks, max_frames=max_frames, on_result=status)
    except EXPECTED_ERRORS + (RuntimeError,) as e:
        raise _fail(e) from None
    faults = ", ".join(f"{k} {v}" for k, v in stats.faults.to_dict().items() if v) or "none"
    click.echo(f"{'interrupted' if stats.interrupted else 'done'}: {stats.frames} frames ({stats.tracked} tracked) "
               f"in {stats.elapsed_s:.1f} s, {stats.fps:.1f} fps, latency p50 {stats.latency_ms(50):.1f} ms "
               f"p99 {stats.latency_ms(99):.1f} ms; faults: {faults}", err=True)
    if record_dir is not None:
        click.echo(recorder.summary(), err=True)


def make_tracker(factory, segment: bool = True, room_path: str | None = None, max_people: int = 1,
                 pick: str = "largest", room=None):
    """``factory()`` (a ``Tracker``: the frame as it comes) or, with ``segment``, a ``PeopleTracker`` that finds
    up to ``max_people`` dancers in the room (``room_path``: an empty-room capture, or ``room``: a loaded ``Room``)
    and gives each a ``factory()``."""
    if not segment:
        if room_path or room is not None or max_people > 1:
            raise click.UsageError("--room and --max-people find people in the frame: drop --no-segment")
        return factory()
    from kerasdance.scene import Room, SceneConfig
    from kerasdance_edge.people import PeopleTracker

    if room_path:
        room = Room.load(room_path)
    return PeopleTracker(factory, max_people=max_people, room=room, scene=SceneConfig(pick=pick))


def _eval_room(data_dir, room_path):
    """The room ``eval --segment`` uses: ``--room``, else the dataset's ``empty_room.npz`` (learned from its
    frames), else None (learned from the first frames of the replay)."""
    from kerasdance.data.dataset import Dataset
    from kerasdance.scene import Room

    if room_path:
        return Room.load(room_path)
    ds = Dataset.open(data_dir)
    frames = ds.empty_room()
    return None if frames is None else Room.from_frames(frames, ds.intrinsics)


@main.command()
@click.option("--source", "source_spec", default="realsense", show_default=True,
              help="'realsense' or a recording of the empty room (MSR *_sdepth.bin or .npz with depth_mm).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="How long to capture.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The room file (.npz).")
@click.option("--model", "model_path", default=None, type=click.Path(dir_okay=False),
              help="MODEL.tflite: capture at its camera resolution (default: 320x240, the Kinect v1's).")
def calibrate(source_spec, seconds, out_path, model_path) -> None:
    """Capture the empty room (its background depth and floor plane) for `track --room`: leave the view clear."""
    import types

    from kerasdance.camera import KINECT_V1
    from kerasdance_edge.people import capture_room

    try:
        model = _load_model(model_path, 1) if model_path else types.SimpleNamespace(intrinsics=KINECT_V1)
        room, n = capture_room(make_source(source_spec, model, realtime=False), seconds)
        room.save(out_path)
    except EXPECTED_ERRORS + (RuntimeError,) as e:
        raise _fail(e) from None
    known = float((room.background_mm > 0).mean()) * 100
    floor = (f"floor {room.floor.offset:.2f} m below the camera, camera tilted {room.floor.tilt_deg():.0f} deg"
             if room.floor is not None else "no floor found (people are told apart by the background alone)")
    click.echo(f"{out_path}: {n} frames, background known on {known:.0f}% of the view, {floor}", err=True)


def _bench_frames(model, n: int):
    """``n`` synthetic frames (the synthetic dancers when available, else a moving box) and their intrinsics."""
    try:
        from kerasdance_edge.sources import SyntheticSource

        source = SyntheticSource(loop=True)
    except ImportError:
        source = None
    if source is not None:
        out = []
        with source:
            for frame in source.frames():
                out.append(frame.depth_mm)
                if len(out) >= n:
                    break
        return np.stack(out), source.intrinsics, source.fps
    intr = model.intrinsics
    rows, cols = np.mgrid[0 : intr.height, 0 : intr.width]
    frames = np.full((n, intr.height, intr.width), 4000, np.uint16)
    for i in range(n):
        uc = intr.width / 2 + intr.width / 8 * np.sin(i / 4)
        body = (np.abs(cols - uc) < intr.width * 0.07) & (np.abs(rows - intr.height / 2) < intr.height * 0.35)
        frames[i][body] = 2500
    return frames, intr, 15.0


def bench_model(model, frames: int = 200) -> dict:
    """End-to-end per-frame latency (frame_stats, crop, resampling, motion channel, interpreter) on synthetic frames.

    Returns:
        ``{"fps", "latency_ms_p50", "latency_ms_p99", "model_latency_ms_p50", "frames", ...}``.
    """
    from kerasdance_edge.sources import Frame
    from kerasdance_edge.tracker import TRACKING, Tracker

    if frames < 1:
        raise ValueError(f"frames must be >= 1. Received: frames={frames!r}")
    tracker = Tracker(model)
    depth, intr, fps = _bench_frames(model, frames + model.frames)
    tracker.configure(fps, intr)
    for i in range(model.frames):  # warm-up: fill the window
        tracker.update(Frame(depth[i], i, i))
    latencies, model_ms, tracked = [], [], 0
    t0 = time.perf_counter()
    for i in range(model.frames, len(depth)):
        t = time.perf_counter()
        result = tracker.update(Frame(depth[i], i, i), t)
        latencies.append((time.perf_counter() - t) * 1000.0)
        if result is not None and result.state == TRACKING:
            tracked += 1
            model_ms.append(model.last_invoke_ms)
    elapsed = time.perf_counter() - t0
    return {
        "frames": len(latencies),
        "tracked": tracked,
        "fps": len(latencies) / elapsed,
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p99": float(np.percentile(latencies, 99)),
        "model_latency_ms_p50": float(np.percentile(model_ms, 50)) if model_ms else float("nan"),
        "input_shape": list(model.input_shape),
        "input_dtype": str(model.input_dtype),
        "quantization": model.meta.quantization,
    }


@main.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="MODEL.tflite.")
@click.option("--frames", type=click.IntRange(min=1), default=200, show_default=True, help="Frames to time.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@flip_test_option
def bench(model_path, frames, threads, as_json, flip_test) -> None:
    """End-to-end per-frame latency (preprocessing included) and FPS on synthetic frames."""
    try:
        model = _load_model(model_path, threads, flip_test)
        rep = bench_model(model, frames)
    except EXPECTED_ERRORS as e:
        raise _fail(e) from None
    rep["threads"], rep["flip_test"] = threads, flip_test
    if as_json:
        click.echo(json.dumps(rep))
        return
    click.echo(f"{model_path}: input {tuple(rep['input_shape'])} {rep['input_dtype']} ({rep['quantization']}), "
               f"{threads} thread(s){', flip test' if flip_test else ''}, {rep['frames']} frames "
               f"({rep['tracked']} tracked)")
    click.echo(f"end-to-end latency p50 {rep['latency_ms_p50']:.2f} ms  p99 {rep['latency_ms_p99']:.2f} ms  "
               f"{rep['fps']:.1f} fps  (model alone p50 {rep['model_latency_ms_p50']:.2f} ms)")


@main.command("eval")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="MODEL.tflite.")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A dataset folder (MSR-Action3D or generic layout) with the model's classes.")
@click.option("--protocol", type=click.Choice(["cross-subject", "as1", "as2", "as3"]), default=None,
              help="The protocol whose recordings are replayed. [the model's, as its sidecar records it, with its "
                   "custom test and validation subjects; else cross-subject]")
@click.option("--split", "part", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="Replay the test recordings, or the validation subjects the model was trained without "
                   "(`kerasdance train --val-subjects`): compare settings on val, and replay test once.")
@click.option("--mode", "modes", type=click.Choice(["alone", "continuous"]), multiple=True,
              help="alone: the tracker reset before each recording (a dancer walks in); continuous: the recordings "
                   "back to back in a seeded order (continuous dancing). Repeat for both (the default).")
@click.option("--seed", type=int, default=0, show_default=True, help="Order of the recordings.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only this many test recordings.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write the report.")
@click.option("--segment/--no-segment", default=None,
              help="Find the dancer in each frame as `track` does (floor and background removed; the room: --room, "
                   "else the dataset's empty_room.npz, else learned over the first 3 s, which takes a dancer who "
                   "stands still then for the room). --no-segment: the frame as it comes (recordings whose "
                   "background is already 0). [segment when a room is known: --room or empty_room.npz]")
@click.option("--room", "room_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="An empty-room capture (`kerasdance-edge calibrate`) for --segment.")
@click.option("--pick", type=click.Choice(PICKS), default="largest", show_default=True,
              help="Which blob is the dancer when several are found.")
@flip_test_option
def eval_(model_path, data_dir, protocol, part, modes, seed, limit, threads, json_out, segment, room_path, pick,
          flip_test) -> None:
    """Replay test recordings frame by frame through the tracker and the model (the code `track` runs):
    per-frame move accuracy, key-point error, time to the first key-points, lag after a move change, latency."""
    from kerasdance_edge.live_eval import MODES, evaluate_live, format_live_report
    from kerasdance_edge.tracker import Tracker

    modes = modes or MODES
    bars = []

    def progress(done: int, total: int) -> None:  # one bar over every recording of every mode, on stderr
        if not bars:
            bars.append(click.progressbar(length=total * len(modes), label="replaying",
                                          file=click.get_text_stream("stderr")).__enter__())
        bars[0].update(1)

    try:
        model = _load_model(model_path, threads, flip_test)
        room = _eval_room(data_dir, room_path) if segment is not False else None
        segment = room is not None if segment is None else segment
        report = evaluate_live(model, data_dir, protocol, modes, seed, limit, progress=progress, part=part,
                               tracker_factory=lambda m: make_tracker(lambda: Tracker(m), segment, None, 1, pick,
                                                                      room=room))
    except EXPECTED_ERRORS as e:
        raise _fail(e) from None
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
    report["flip_test"] = flip_test
    report["segment"] = "off" if not segment else (room_path or ("empty_room.npz" if room is not None else "learned"))
    click.echo(format_live_report(report))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
