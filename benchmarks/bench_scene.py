"""Person segmentation speed (``kerasdance.scene``) and the device's two-dancer tracking on studio scenes.

Segmentation alone per frame (floor, background, blobs, the masked frame of the first person) at 320x240 and
640x480 on a rendered two-dancer studio take (``kerasdance.data.scenes``); with a model: the whole device path
(``kerasdance_edge.people.PeopleTracker``: segmentation, one ``Tracker`` and model call per dancer) frames/s, the
frames where both dancers were tracked and the ID switches. Writes BENCHMARKS.md "Scene segmentation".

    python -m benchmarks.bench_scene [--model benchmarks/.data/runs/live-recipe6-0/exports/int8.tflite]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, table, write_section

DEFAULT_MODEL = Path("benchmarks/.data/runs/live-recipe6-0/exports/int8.tflite")


def studio(frames: int, people: int = 2, seed: int = 0):
    from kerasdance.data import scenes

    take = scenes.generate_studio_take("dance11", 1, 1, seed=seed, people=people, max_frames=frames)
    return take


def _time(fn, n: int) -> float:
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(t))


def segmentation_speed(depth: np.ndarray, intrinsics, empty: np.ndarray) -> dict:
    from kerasdance.scene import Room, SceneConfig, Segmenter

    room = Room.from_frames(empty, intrinsics)
    seg = Segmenter(intrinsics, SceneConfig(max_people=2), room=room)
    k = [0]

    def one():
        f = depth[k[0] % len(depth)]
        k[0] += 1
        people = seg.update(f)
        if people:
            seg.masked_depth(f, people[0])

    one()
    return {"size": f"{intrinsics.width}x{intrinsics.height}", "grid": "x".join(map(str, seg.grid_shape[::-1])),
            "segment_ms": _time(one, 200)}


def two_dancers(model_path: Path, depth: np.ndarray, intrinsics, empty: np.ndarray, fps: float) -> dict:
    from kerasdance.scene import Room
    from kerasdance_edge.interpreter import EdgeModel
    from kerasdance_edge.people import PeopleTracker
    from kerasdance_edge.sources import Frame
    from kerasdance_edge.tracker import Tracker

    model = EdgeModel(model_path)
    pt = PeopleTracker(lambda: Tracker(model), max_people=2, room=Room.from_frames(empty, intrinsics),
                       fps=fps, intrinsics=intrinsics)
    both, ids, switches, prev = 0, set(), 0, None
    t0 = time.perf_counter()
    for i, f in enumerate(depth):
        out = pt.update(Frame(f, int(round(i * 1e6 / fps)), i))
        live = {r.person for r in out if r.joints_ready}
        both += len(live) == 2
        side = {r.person: float(np.sign(r.joints_m[:, 0].mean())) for r in out if r.joints_ready}
        if prev is not None:
            switches += sum(1 for p, s in side.items() if p in prev and prev[p] != s)
        prev = side
        ids |= {r.person for r in out if r.person is not None}
    elapsed = time.perf_counter() - t0
    minutes = len(depth) / fps / 60
    return {"frames": len(depth), "fps": len(depth) / elapsed, "both_tracked": both / len(depth) * 100,
            "ids": len(ids), "side_switches_per_min": switches / minutes}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a depth .tflite (skipped when missing)")
    ap.add_argument("--frames", type=int, default=150, help="frames of the studio take")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    take = studio(args.frames)
    depth, intr = take.depth_mm, take.scene.sensor.intrinsics
    empty = take.empty_room_mm
    rows = [segmentation_speed(depth, intr, empty)]
    big = intr.scaled(intr.width * 2, intr.height * 2)
    up = lambda a: np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)  # noqa: E731
    rows.append(segmentation_speed(up(depth), big, up(empty)))
    track = two_dancers(args.model, depth, intr, empty, float(take.fps)) if args.model.exists() \
        else None
    print(json.dumps({"segmentation": rows, "two_dancers": track}, indent=2))
    if args.no_write:
        return
    body = ["### Scene segmentation: people in a room (issue 26)", "",
            f"Machine: {machine()}, one core. A rendered two-dancer studio take (`kerasdance.data.scenes`, "
            f"{args.frames} frames), the room from 10 empty-room frames. Segmentation: floor, background, blobs and "
            "the masked frame of one person, median per frame (640x480: the same frames upsampled).", "",
            table(rows, [("size", "frame"), ("grid", "grid"), ("segment_ms", "segmentation ms/frame")]), ""]
    if track:
        body += [f"Two dancers through `PeopleTracker` with `{args.model}` (segmentation + one model call per "
                 "dancer): " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in track.items()) + ". side_switches_per_min counts a "
                 "track's joints changing side of the optical axis: real crossings count too (an upper bound on ID "
                 "switches, not their count).", ""]
    else:
        body += [f"No model at {args.model}: tracking figures not measured.", ""]
    body += ["Not measured here: live move accuracy / MPJPE on studio scenes against the same performances on an "
             "empty background (needs a `kerasdance-edge eval` with the room: not wired yet)."]
    write_section("scene", "\n".join(body), "python -m benchmarks.bench_scene")


if __name__ == "__main__":
    main()
