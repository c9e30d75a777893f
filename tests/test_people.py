"""kerasdance_edge.people: several dancers with stable IDs (association, coasting, leaving), end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from edge_fixtures import ArraySource, RecordingSink, person_depth, tiny_model, write_npz_recording  # noqa: F401
from test_scene import room_z, scene_frame

from kerasdance.camera import KINECT_V1
from kerasdance.scene import Person, Room
from kerasdance_edge.people import PeopleTracker, Track, associate
from kerasdance_edge.sources import Frame
from kerasdance_edge.tracker import NO_PERSON, TrackResult, run


class FakeTracker:
    """Stands in for ``Tracker``: records the frames it is given, answers 'tracking'."""

    def __init__(self):
        self.intrinsics, self.frames = KINECT_V1, []

    def configure(self, fps, intrinsics):
        self.intrinsics = intrinsics

    def update(self, frame, arrived_s=None, skipped=0):
        self.frames.append(frame)
        return TrackResult(frame.index, frame.timestamp_us, np.zeros((20, 3), np.float32), "sway", 1.0, 0.0,
                           "tracking")


class ScriptedSegmenter:
    """Stands in for ``Segmenter``: the people of each frame from a script."""

    def __init__(self, script):
        self.script, self.k, self.intrinsics = script, 0, KINECT_V1

    def update(self, depth):
        people = self.script[self.k]
        self.k += 1
        return people

    def masked_depth(self, depth, person):
        return depth


def person(x, z=3.0, height=1.7) -> Person:
    return Person(1, (0, 1, 0, 1), z * 1000 - 200, z * 1000 + 200, np.array([x, 0.0, z]), height, 0.6, 0.6, 500)


def scripted(script, max_people=2, **kw) -> PeopleTracker:
    pt = PeopleTracker(FakeTracker, max_people=max_people, **kw)
    pt.segmenter = ScriptedSegmenter(script)
    return pt


def play(pt, n, fps=15.0):
    frame = np.ones((240, 320), np.uint16)
    return [pt.update(Frame(frame, int(round(i * 1e6 / fps)), i)) for i in range(n)]


def test_two_crossing_tracks_keep_their_ids():
    # Two dancers cross at the same depth (one taller): they overlap at the crossing frame.
    n = 21
    xs = np.linspace(-1.5, 1.5, n)
    script = [[person(x, height=1.6), person(-x, height=1.9)] for x in xs]
    pt = scripted(script)
    ids = []
    for i in range(n):
        out = pt.update(Frame(np.ones((240, 320), np.uint16), int(i * 1e6 / 15), i))
        assert [r.person for r in out] == [1, 2]
        ids.append({t.id: round(float(t.centroid_m[0]), 2) for t in pt.tracks})
    assert ids[0] == {1: -1.5, 2: 1.5} and ids[-1] == {1: 1.5, 2: -1.5}  # each ID went all the way across


def test_short_occlusion_coasts_and_keeps_the_id():
    script = [[person(0.1 * i)] for i in range(5)] + [[]] * 5 + [[person(1.0)]] * 3
    results = play(scripted(script), len(script))
    assert all(r[0].person == 1 for r in results)
    assert [r[0].state for r in results[5:10]] == [NO_PERSON] * 5  # coasting: a clear state, the ID kept
    assert results[-1][0].state == "tracking"


def test_leave_and_re_enter_new_ids_never_reused():
    script = ([[person(0.0)]] * 3 + [[]] * 6 + [[person(0.3)]] * 2  # back within coast_seconds: the same ID
              + [[]] * 20 + [[person(0.0)], [person(0.0), person(1.5)], [person(0.0), person(1.5)]])
    pt = scripted(script, coast_seconds=1.0)
    results = play(pt, len(script))
    assert results[10][0].person == 1
    assert results[30] == [TrackResult(30, results[30][0].timestamp_us, None, "", 0.0,
                                       results[30][0].latency_ms, NO_PERSON, None)]  # track 1 ended: nobody
    assert [r.person for r in results[-1]] == [2, 3]


def test_max_people_and_pick_and_single_output():
    three = [[person(-1.0, z=2.0), person(0.0, z=3.0), person(1.0, z=4.0)]] * 3
    pt = scripted(three, max_people=2)
    out = play(pt, 3)
    assert [r.person for r in out[-1]] == [1, 2] and len(pt.tracks) == 2
    single = scripted(three, max_people=1)
    res = play(single, 3)
    assert all(isinstance(r, TrackResult) and r.person is None for r in res)
    assert single.tracks[0].centroid_m[0] == -1.0  # the first-ranked blob (the segmenter ranks by --pick)
    assert scripted([[]], max_people=1).update(Frame(np.zeros((240, 320), np.uint16), 0, 0)).state == NO_PERSON
    with pytest.raises(ValueError, match="max_people"):
        PeopleTracker(FakeTracker, max_people=0)


def test_associate_gate_widens_while_unseen():
    t = Track(1, FakeTracker(), np.array([0.0, 0.0, 3.0]), 1.7, 0, 0)
    assert associate([t], [person(1.0)], 66_667) == []  # 1 m in one frame: outside the gate
    t.unseen_s = 0.5
    assert associate([t], [person(1.0)], 500_000) == [(0, 0)]


def test_segmenting_tracker_on_rendered_two_dancers():
    """Real segmentation, fake per-person trackers: two dancers walking towards each other stay apart."""
    rng = np.random.default_rng(0)
    room = Room.from_frames(np.stack([scene_frame((), rng) for _ in range(5)]), KINECT_V1)
    pt = PeopleTracker(FakeTracker, max_people=2, room=room)
    pt.configure(15.0, KINECT_V1)
    firsts = []
    for i in range(20):
        frame = scene_frame([(-1.2 + 0.03 * i, 3.0, i), (1.2 - 0.03 * i, 3.4, i + 7)], rng, room=room_z())
        out = pt.update(Frame(frame, int(i * 1e6 / 15), i))
        firsts.append({r.person: r.state for r in out})
    assert all(f == {1: "tracking", 2: "tracking"} for f in firsts)
    left = min(pt.tracks, key=lambda t: t.centroid_m[0])
    assert left.id == 1 or left.id == 2
    masked = left.tracker.frames[-1].depth_mm
    assert 0 < (masked > 0).sum() < 0.2 * masked.size  # one dancer, nothing else


# --- end to end with the tiny model ---------------------------------------------------------------------------------
def _two_dancer_clip(n=24, seed=0):
    rng = np.random.default_rng(seed)
    empty = np.stack([scene_frame((), rng) for _ in range(4)])
    clip = np.stack([scene_frame([(-1.0 + 0.02 * i, 2.8, i), (1.0, 3.3, 2 * i)], rng) for i in range(n)])
    return empty, clip


def test_end_to_end_two_dancers_tracked_with_stable_ids(tiny_model, tmp_path):  # noqa: F811
    from kerasdance_edge.interpreter import EdgeModel
    from kerasdance_edge.tracker import Tracker

    empty, clip = _two_dancer_clip()
    room = Room.from_frames(empty, KINECT_V1)
    model = EdgeModel(tiny_model.path)
    pt = PeopleTracker(lambda: Tracker(model), max_people=2, room=room)
    sink = RecordingSink()
    stats = run(ArraySource(clip), pt, [sink])
    assert stats.frames == len(clip)
    by_frame: dict[int, dict] = {}
    for r in sink.results:
        by_frame.setdefault(r.index, {})[r.person] = r
    both = sum(set(v) == {1, 2} and all(r.joints_ready for r in v.values()) for v in by_frame.values())
    assert both >= 0.9 * len(clip)
    assert {r.person for r in sink.results} == {1, 2}  # no ID switch, nobody else
    for pid in (1, 2):  # each ID stays on its side (dancer 1 on the left)
        xs = [r.joints_m[:, 0].mean() for r in sink.results if r.person == pid and r.joints_ready]
        assert len(set(np.sign(xs))) == 1


def test_cli_calibrate_and_track_two_people(tiny_model, tmp_path):  # noqa: F811
    from kerasdance_edge.cli import main

    empty, clip = _two_dancer_clip(n=12)
    write_npz_recording(tmp_path / "empty.npz", empty)
    write_npz_recording(tmp_path / "clip.npz", clip)
    runner = CliRunner()
    model, room, rec = str(tiny_model.path), str(tmp_path / "room.npz"), str(tmp_path / "clip.npz")
    res = runner.invoke(main, ["calibrate", "--source", str(tmp_path / "empty.npz"), "--out", room])
    assert res.exit_code == 0, res.output
    assert "floor 1.0" in res.output and "m below the camera" in res.output
    res = runner.invoke(main, ["track", "--model", model, "--source", rec, "--fast", "--room", room,
                               "--max-people", "2", "--jsonl", "-"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) >= 2 * len(clip) - 2
    res = runner.invoke(main, ["track", "--model", model, "--source", rec, "--no-segment", "--max-people", "2"])
    assert res.exit_code != 0 and "drop --no-segment" in res.output
    res = runner.invoke(main, ["calibrate", "--source", str(tmp_path / "missing.npz"), "--out", room])
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_cli_track_default_segments_an_msr_style_recording(tiny_model, tmp_path):  # noqa: F811
    """The single-dancer default (segmentation on, background learned): a dancer on a 0 background is tracked."""
    from kerasdance_edge.cli import main

    path = write_npz_recording(tmp_path / "rec.npz", person_depth(20))
    res = CliRunner().invoke(main, ["-v", "track", "--model", str(tiny_model.path), "--source", str(path), "--fast",
                                    "--jsonl", "-"])
    assert res.exit_code == 0, res.output
    assert "learning the background" in res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 20 and sum(x["state"] != "no-person" for x in lines) >= 19


def test_one_dancer_who_jumps_keeps_the_track_and_its_window():
    """Single-person mode: the dancer is whoever the pick rule puts first, wherever they appear (a cut between
    recordings replayed back to back); the same tracker (its window) goes on, no frames without a person."""
    script = [[person(-1.0)]] * 3 + [[person(1.5, z=4.5)]] * 3
    pt = scripted(script, max_people=1)
    out = play(pt, 6)
    assert all(r.state == "tracking" for r in out) and len(pt.tracks) == 1 and pt.tracks[0].id == 1
    assert len(pt.tracks[0].tracker.frames) == 6 and pt.tracks[0].centroid_m[0] == 1.5
    two = scripted(script, max_people=2)  # several dancers: a jump beyond the gate is somebody else
    assert [r.person for r in play(two, 6)[-1]] == [1, 2]
