"""Sinks: JSON lines, OSC (every format) received by a real python-osc server, WebSocket by a real client."""

import io
import json
import queue
import threading
import time

import numpy as np
import pytest

from kerasdance.skeleton import JOINT_NAMES
from kerasdance_edge.sinks import (
    OSC_FORMATS,
    OSCELETON_JOINTS,
    JsonlSink,
    OscSink,
    WebSocketSink,
    osceleton_coords,
    result_to_dict,
)
from kerasdance_edge.tracker import TrackResult

JOINTS = np.arange(60, dtype=np.float32).reshape(20, 3) / 10
TRACKING = TrackResult(7, 466_669, JOINTS, "spin", 0.875, 3.25, "tracking")
WARMUP = TrackResult(1, 66_667, JOINTS + 1, "", 0.0, 1.5, "warmup")  # key-points ready, the move not yet
NOBODY = TrackResult(2, 133_334, None, "", 0.0, 1.0, "no-person")


def test_result_to_dict_keys_and_values():
    d = result_to_dict(TRACKING)
    assert set(d) == {"index", "timestamp_us", "person", "state", "move", "confidence", "joints", "joints_ready",
                      "move_ready", "latency_ms"}
    assert d["person"] is None  # always there: null for the single-person tracker
    assert result_to_dict(TRACKING._replace(person=3))["person"] == 3
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


class _OscServer:
    """A real ``ThreadingOSCUDPServer`` on 127.0.0.1 (any free port) that collects every message it receives."""

    def __init__(self):
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        self.messages: queue.Queue = queue.Queue()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.messages.put((address, args)))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def take(self, n: int) -> list:
        """The next ``n`` messages (a bundle's messages arrive in order; the test waits for each bundle)."""
        return [self.messages.get(timeout=10) for _ in range(n)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def osc_server():
    server = _OscServer()
    yield server
    server.close()


def test_osc_kerasdance_format_carries_the_person_id(osc_server):
    with OscSink("127.0.0.1", osc_server.port, fmt="kerasdance") as sink:
        sink.send(TRACKING._replace(person=3))
        got = osc_server.take(23)
        sink.send(NOBODY._replace(person=4))
        nobody = osc_server.take(3)
    joints = {a: args for a, args in got if "/joint/" in a}
    assert len(joints) == 20 and all(a.startswith("/kerasdance/3/joint/") for a in joints)
    assert joints["/kerasdance/3/joint/head"] == pytest.approx((5.7, 5.8, 5.9), abs=1e-5)
    assert got[20:] == [("/kerasdance/3/move", ("spin", 0.875)), ("/kerasdance/3/state", ("tracking",)),
                        ("/kerasdance/3/ready", (1, 1))]
    assert nobody == [("/kerasdance/4/move", ("", 0.0)), ("/kerasdance/4/state", ("no-person",)),
                      ("/kerasdance/4/ready", (0, 0))]


def test_osceleton_names_and_coordinates():
    assert list(OSCELETON_JOINTS) == list(JOINT_NAMES) and len(set(OSCELETON_JOINTS.values())) == 20
    assert OSCELETON_JOINTS["shoulder_center"] == "neck" and OSCELETON_JOINTS["spine"] == "torso"
    assert OSCELETON_JOINTS["hand_left"] == "l_hand" and OSCELETON_JOINTS["foot_right"] == "r_foot"
    # Hand-computed: OSCeleton's normalisation of NITE millimetres, x = (1280 - X) / 2560, y = (960 - Y) / 1920,
    # z = Z * 7.8125 / 10000.
    assert osceleton_coords([0.0, 0.0, 2.0]) == pytest.approx((0.5, 0.5, 1.5625))
    assert osceleton_coords([1.28, 0.96, 10.0]) == pytest.approx((0.0, 0.0, 7.8125))
    assert osceleton_coords([-0.64, -0.48, 1.28]) == pytest.approx((0.75, 0.75, 1.0))


def test_osc_osceleton_format_users_joints_and_loss(osc_server):
    joints = np.zeros((20, 3), np.float32)
    joints[:, 2] = 2.5
    joints[19] = (0.0, 0.3, 2.5)  # head: 30 cm above the optical axis at 2.5 m
    joints[11] = (-0.64, 0.0, 2.0)  # hand_left
    joints[4] = np.nan  # hip_left unknown: not sent (OSCeleton skips joints it is not confident about)
    seen = WARMUP._replace(joints_m=joints)
    with OscSink("127.0.0.1", osc_server.port, fmt="osceleton") as sink:
        sink.send(seen)
        first = osc_server.take(2 + 19)
        sink.send(TRACKING._replace(joints_m=joints))
        second = osc_server.take(19)
        sink.send(NOBODY)
        lost = osc_server.take(1)
        assert sink._bundle(NOBODY) is None  # nobody seen, nobody lost: nothing to send
        sink.send(seen._replace(person=7))
        other = osc_server.take(2 + 19)
        assert sink.users == {7}
    assert first[:2] == [("/new_user", (1,)), ("/new_skel", (1,))]  # user 1: the single-person tracker
    assert {args[0] for _, args in first[2:]} == set(OSCELETON_JOINTS.values()) - {"l_hip"}
    assert all(a == "/joint" and args[1] == 1 for a, args in first[2:])
    by_name = {args[0]: args[2:] for _, args in first[2:]}
    assert by_name["head"] == pytest.approx((0.5, (960 - 300) / 1920, 2500 / 1280), abs=1e-6)
    assert by_name["l_hand"] == pytest.approx((0.75, 0.5, 2000 / 1280), abs=1e-6)
    assert [a for a, _ in second] == ["/joint"] * 19  # the user is known: joints only
    assert lost == [("/lost_user", (1,))]
    assert other[:2] == [("/new_user", (7,)), ("/new_skel", (7,))] and all(args[1] == 7 for _, args in other[2:])


def test_osc_format_errors():
    assert OSC_FORMATS == ("kerasdance", "osceleton")
    with pytest.raises(ValueError, match="unknown OSC format.*kerasdance, osceleton.*'nimate'"):
        OscSink(fmt="nimate")
    with pytest.raises(ValueError, match=r"no OSCeleton name for \['nose'\]"):
        OscSink(joint_names=(*JOINT_NAMES[:19], "nose"), fmt="osceleton")


def test_cli_osc_format_option():
    from click.testing import CliRunner

    from kerasdance_edge.cli import main, track

    (option,) = [p for p in track.params if p.name == "osc_format"]
    assert tuple(option.type.choices) == OSC_FORMATS and option.default == "kerasdance"
    res = CliRunner().invoke(main, ["track", "--model", "m.tflite", "--osc-format", "nimate"])
    assert res.exit_code == 2 and "'nimate' is not one of 'kerasdance', 'osceleton'" in res.output
