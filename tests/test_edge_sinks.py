"""Sinks: JSON lines, OSC received by a real python-osc server, WebSocket received by a real client (127.0.0.1)."""

import io
import json
import time

import numpy as np
import pytest

from kerasdance.skeleton import JOINT_NAMES
from kerasdance_edge.sinks import JsonlSink, OscSink, WebSocketSink, result_to_dict
from kerasdance_edge.tracker import TrackResult

JOINTS = np.arange(60, dtype=np.float32).reshape(20, 3) / 10
TRACKING = TrackResult(7, 466_669, JOINTS, "spin", 0.875, 3.25, "tracking")
WARMUP = TrackResult(1, 66_667, JOINTS + 1, "", 0.0, 1.5, "warmup")  # key-points ready, the move not yet
NOBODY = TrackResult(2, 133_334, None, "", 0.0, 1.0, "no-person")


def test_result_to_dict_keys_and_values():
    d = result_to_dict(TRACKING)
    assert set(d) == {"index", "timestamp_us", "state", "move", "confidence", "joints", "joints_ready", "move_ready",
                      "latency_ms"}
    assert d["joints_ready"] is True and d["move_ready"] is True
    assert d["index"] == 7 and d["timestamp_us"] == 466_669 and d["state"] == "tracking" and d["move"] == "spin"
    assert d["confidence"] == 0.875 and d["latency_ms"] == 3.25
    assert list(d["joints"]) == list(JOINT_NAMES)
    assert d["joints"]["head"] == pytest.approx([5.7, 5.8, 5.9])
    warm, nobody = result_to_dict(WARMUP), result_to_dict(NOBODY)
    assert warm["joints"]["head"] == pytest.approx([6.7, 6.8, 6.9]) and warm["move"] == ""
    assert (warm["joints_ready"], warm["move_ready"]) == (True, False)
    assert nobody["joints"] is None and (nobody["joints_ready"], nobody["move_ready"]) == (False, False)
    nan = result_to_dict(TRACKING._replace(joints_m=np.full((20, 3), np.nan)))
    assert nan["joints"]["head"] == [None, None, None]  # valid JSON, no NaN


def test_jsonl_sink_file_and_stream(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlSink(path) as sink:
        sink.send(WARMUP)
        sink.send(TRACKING)
    lines = path.read_text().splitlines()
    assert [json.loads(x)["state"] for x in lines] == ["warmup", "tracking"]
    buf = io.StringIO()
    JsonlSink(buf).send(TRACKING)
    assert json.loads(buf.getvalue())["joints"]["hand_left"] == pytest.approx(JOINTS[11].tolist())


def test_osc_sink_bundle_reaches_a_real_server():
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    received = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, args)))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    server.timeout = 5.0
    try:
        with OscSink("127.0.0.1", server.server_address[1]) as sink:
            sink.send(TRACKING)
            server.handle_request()  # the one bundle of the frame
            sink.send(WARMUP)
            server.handle_request()
            sink.send(NOBODY)
            server.handle_request()
    finally:
        server.server_close()
    tracking, warmup, nobody = received[:23], received[23:46], received[46:]
    joints = {a: args for a, args in tracking if a.startswith("/kerasdance/joint/")}
    assert len(joints) == 20
    assert joints["/kerasdance/joint/head"] == pytest.approx((5.7, 5.8, 5.9), abs=1e-5)
    assert ("/kerasdance/move", ("spin", pytest.approx(0.875))) in tracking
    assert ("/kerasdance/state", ("tracking",)) in tracking
    assert ("/kerasdance/ready", (1, 1)) in tracking
    assert len([a for a, _ in warmup if a.startswith("/kerasdance/joint/")]) == 20  # joints flow in the warm-up
    assert warmup[20:] == [("/kerasdance/move", ("", 0.0)), ("/kerasdance/state", ("warmup",)),
                           ("/kerasdance/ready", (1, 0))]
    assert nobody == [("/kerasdance/move", ("", 0.0)), ("/kerasdance/state", ("no-person",)),
                      ("/kerasdance/ready", (0, 0))]


def test_websocket_sink_serves_json_to_a_real_client():
    from websockets.sync.client import connect

    with WebSocketSink(0) as sink:
        assert sink.port > 0 and sink.host == "127.0.0.1"
        with connect(f"ws://127.0.0.1:{sink.port}", open_timeout=5) as a, \
                connect(f"ws://127.0.0.1:{sink.port}", open_timeout=5) as b:
            deadline = time.monotonic() + 5
            while sink.clients < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sink.clients == 2
            sink.send(TRACKING)
            for client in (a, b):
                msg = json.loads(client.recv(timeout=5))
                assert msg["move"] == "spin" and msg["joints"]["head"] == pytest.approx([5.7, 5.8, 5.9])
        # Clients gone: sending still works (nobody to send to).
        deadline = time.monotonic() + 5
        while sink.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        sink.send(WARMUP)


def test_websocket_sink_port_in_use_is_a_clear_error():
    with WebSocketSink(0) as first:
        with pytest.raises(OSError, match=f"cannot serve WebSocket on 127.0.0.1:{first.port}"):
            WebSocketSink(first.port)
