"""Where results go: JSON lines, OSC (light/sound desks, TouchDesigner, Max, SuperCollider), WebSocket (browsers).

Every sink has ``send(result: TrackResult)`` and ``close()`` and is a context manager. Network
sinks bind / send to 127.0.0.1 unless given another host. A send that fails raises; ``run``
catches, counts and logs it, so a receiver that goes away never stops the tracker.

JSON (``JsonlSink``, one object per line, and ``WebSocketSink``, one text message per frame)::

    {"index": 42, "timestamp_us": 2800000, "state": "tracking", "move": "turn", "confidence": 0.93,
     "joints": {"shoulder_left": [x, y, z], ...}, "joints_ready": true, "move_ready": true, "latency_ms": 4.1}

``state`` is ``"warmup"`` (a person is seen: key-points ready, the move not yet, as the window is still
filling), ``"tracking"`` (key-points and move) or ``"no-person"`` (neither); ``joints_ready`` and
``move_ready`` say the same per part. ``joints`` is null when not ready; metres in camera coordinates
(x right, y up, z away from the camera). ``move`` is "" and ``confidence`` 0 unless the move is ready.

OSC (``OscSink``, UDP): one bundle per frame (time tag "immediately") holding

=================================  ==========================  =====================================
address                            arguments                   when
=================================  ==========================  =====================================
``/kerasdance/joint/<joint_name>``  x y z (float32, metres)    joints ready, one message per joint
``/kerasdance/move``               move (string), confidence   every frame ("" and 0.0 unless tracking)
                                   (float32)
``/kerasdance/state``              state (string)              every frame
``/kerasdance/ready``              joints, move (int32 0/1)    every frame
=================================  ==========================  =====================================

``<joint_name>`` is a name of ``kerasdance.skeleton.JOINT_NAMES`` (e.g. ``/kerasdance/joint/hand_left``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from pathlib import Path
from typing import IO

import numpy as np

from kerasdance.skeleton import JOINT_NAMES
from kerasdance_edge.tracker import TrackResult

log = logging.getLogger("kerasdance.edge")

OSC_PREFIX = "/kerasdance"


def _num(x: float, digits: int) -> float | None:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def result_to_dict(result: TrackResult, joint_names=JOINT_NAMES) -> dict:
    """The JSON object of one result (see the module docstring)."""
    joints = None
    if result.joints_m is not None:
        joints = {name: [_num(v, 4) for v in xyz] for name, xyz in zip(joint_names, np.asarray(result.joints_m))}
    return {
        "index": int(result.index),
        "timestamp_us": int(result.timestamp_us),
        "state": result.state,
        "move": result.move,
        "confidence": _num(result.confidence, 4),
        "joints": joints,
        "joints_ready": result.joints_ready,
        "move_ready": result.move_ready,
        "latency_ms": _num(result.latency_ms, 3),
    }


def result_to_json(result: TrackResult, joint_names=JOINT_NAMES) -> str:
    return json.dumps(result_to_dict(result, joint_names), separators=(",", ":"), allow_nan=False)


class Sink:
    """The interface: ``send(result)``, ``close()``, context manager."""

    def send(self, result: TrackResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlSink(Sink):
    """One JSON object per line to a file, a text stream or ``"-"`` (standard output), flushed every frame.

    Args:
        target: a path, ``"-"`` or an open text stream (not closed by ``close``).
        joint_names: names of the ``joints_m`` rows (the model's).
    """

    def __init__(self, target: str | Path | IO[str] = "-", joint_names=JOINT_NAMES):
        self.joint_names = tuple(joint_names)
        self._own = False
        if target == "-":
            self._stream = sys.stdout
        elif isinstance(target, str | Path):
            self._stream = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._own = True
        else:
            self._stream = target

    def send(self, result: TrackResult) -> None:
        self._stream.write(result_to_json(result, self.joint_names) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._own and not self._stream.closed:
            self._stream.close()


class OscSink(Sink):
    """OSC over UDP (python-osc), one bundle per frame (addresses in the module docstring).

    Args:
        host: receiver address (default this machine).
        port: receiver UDP port.
        joint_names: names used in ``/kerasdance/joint/<name>``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, joint_names=JOINT_NAMES):
        from pythonosc.udp_client import SimpleUDPClient

        self.host, self.port = host, int(port)
        self.joint_names = tuple(joint_names)
        self._client = SimpleUDPClient(host, self.port)

    def _bundle(self, result: TrackResult):
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
        from pythonosc.osc_message_builder import OscMessageBuilder

        def message(address, *args):
            m = OscMessageBuilder(address=address)
            for a in args:
                m.add_arg(a)
            return m.build()

        bundle = OscBundleBuilder(IMMEDIATELY)
        if result.joints_ready:
            for name, xyz in zip(self.joint_names, np.asarray(result.joints_m, np.float64)):
                bundle.add_content(message(f"{OSC_PREFIX}/joint/{name}", *(float(v) for v in xyz)))
        bundle.add_content(message(f"{OSC_PREFIX}/move", result.move, float(result.confidence)))
        bundle.add_content(message(f"{OSC_PREFIX}/state", result.state))
        bundle.add_content(message(f"{OSC_PREFIX}/ready", int(result.joints_ready), int(result.move_ready)))
        return bundle.build()

    def send(self, result: TrackResult) -> None:
        self._client.send(self._bundle(result))

    def close(self) -> None:
        sock = getattr(self._client, "_sock", None)
        if sock is not None:
            sock.close()


class WebSocketSink(Sink):
    """Serves every result as a JSON text message to every connected WebSocket client.

    The ``websockets`` server runs in a background thread with its own asyncio loop; ``send`` only
    schedules a broadcast (it never waits for a client: a slow or vanished client cannot slow the tracker).

    Args:
        port: TCP port (0: any free port; the bound one is in ``self.port``).
        host: interface to bind (default this machine only).
        joint_names: names of the ``joints_m`` rows.

    Raises:
        OSError: the port cannot be bound.
    """

    def __init__(self, port: int = 8765, host: str = "127.0.0.1", joint_names=JOINT_NAMES, start_timeout_s=10.0):
        import websockets  # noqa: F401 - fail here, with ImportError, when it is missing

        self.host, self.port = host, int(port)
        self.joint_names = tuple(joint_names)
        self._clients: set = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve_forever, name="kerasdance-websocket", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout_s):
            raise OSError(f"the WebSocket server on {host}:{port} did not start within {start_timeout_s} s")
        if self._error is not None:
            raise OSError(f"cannot serve WebSocket on {host}:{port}: {self._error}") from None

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def _handler(self, ws, *_path):
        self._clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self._clients.discard(ws)

    async def _main(self):
        try:
            from websockets.asyncio.server import serve
        except ImportError:  # websockets < 13
            from websockets import serve
        self._stopped = asyncio.Event()
        try:
            server = await serve(self._handler, self.host, self.port)
        except OSError as e:
            self._error = e
            self._ready.set()
            return
        self.port = int(next(iter(server.sockets)).getsockname()[1])
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            server.close()
            await server.wait_closed()

    def _serve_forever(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    def _broadcast(self, message: str) -> None:
        try:
            from websockets.asyncio.server import broadcast
        except ImportError:  # websockets < 13
            from websockets import broadcast
        broadcast(set(self._clients), message)

    def send(self, result: TrackResult) -> None:
        if not self._thread.is_alive():
            raise ConnectionError("the WebSocket server thread is not running")
        self._loop.call_soon_threadsafe(self._broadcast, result_to_json(result, self.joint_names))

    def close(self) -> None:
        if self._thread.is_alive() and self._stopped is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:  # loop already closed
                pass
            self._thread.join(timeout=5.0)
