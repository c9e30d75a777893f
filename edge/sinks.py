"""Where results go: JSON lines, OSC (light/sound desks, TouchDesigner, Max, SuperCollider), WebSocket (browsers).

Every sink has ``send(result: TrackResult)`` and ``close()`` and is a context manager. Network
sinks bind / send to 127.0.0.1 unless given another host. A send that fails raises; ``run``
catches, counts and logs it, so a receiver that goes away never stops the tracker.

JSON (``JsonlSink``, one object per line, and ``WebSocketSink``, one text message per frame)::

    {"index": 42, "timestamp_us": 2800000, "person": null, "state": "tracking", "move": "turn", "confidence": 0.93,
     "joints": {"shoulder_left": [x, y, z], ...}, "joints_ready": true, "move_ready": true, "latency_ms": 4.1}

``state`` is ``"warmup"`` (a person is seen: key-points ready, the move not yet, as the window is still
filling), ``"tracking"`` (key-points and move) or ``"no-person"`` (neither); ``joints_ready`` and
``move_ready`` say the same per part. ``joints`` is null when not ready; metres in camera coordinates
(x right, y up, z away from the camera). ``move`` is "" and ``confidence`` 0 unless the move is ready.
``person`` is the dancer's track ID when several dancers are tracked, null for the single-person tracker.

OSC (``OscSink``, UDP): one bundle per result (time tag "immediately"; in the ``osceleton`` format none when
there is nothing to say: nobody seen, nobody lost), in one of ``OSC_FORMATS`` (``kerasdance-edge track
--osc-format``).

``kerasdance`` (the default):

=================================  ==========================  =====================================
address                            arguments                   when
=================================  ==========================  =====================================
``/kerasdance/joint/<joint_name>``  x y z (float32, metres)    joints ready, one message per joint
``/kerasdance/move``               move (string), confidence   every frame ("" and 0.0 unless tracking)
                                   (float32)
``/kerasdance/state``              state (string)              every frame
``/kerasdance/ready``              joints, move (int32 0/1)    every frame
=================================  ==========================  =====================================

``<joint_name>`` is a name of ``kerasdance.skeleton.JOINT_NAMES`` (e.g. ``/kerasdance/joint/hand_left``);
x y z are camera metres as in the JSON. When the result has a ``person`` (several dancers), every
address carries it after the prefix: ``/kerasdance/<person>/joint/<joint_name>``,
``/kerasdance/<person>/move``, ``/kerasdance/<person>/state``, ``/kerasdance/<person>/ready``.

``osceleton`` (what OSCeleton, the OpenNI/NITE skeleton-to-OSC bridge, sends by default, and what many
TouchDesigner, Max, Processing and Unity patches read):

==========================  ==========================================  ==========================================
address                     arguments                                   when
==========================  ==========================================  ==========================================
``/new_user``               user (int32)                                a user's key-points appear
``/new_skel``               user (int32)                                right after ``/new_user`` (key-points flow
                                                                        from the first frame: no calibration pose)
``/joint``                  name (string), user (int32), x y z          joints ready, one message per joint
                            (float32)
``/lost_user``              user (int32)                                a user's result says no-person
==========================  ==========================================  ==========================================

``user`` is the ``person`` track ID, or 1 for the single-person tracker (OpenNI numbers users from 1).
Joint names are OSCeleton's (``OSCELETON_JOINTS``): head, neck (shoulder_center), torso (spine), waist
(hip_center), l_/r_shoulder, l_/r_elbow, l_/r_wrist, l_/r_hand, l_/r_hip, l_/r_knee, l_/r_ankle, l_/r_foot
(``l_`` is the model's ``_left``); waist, wrists and ankles are in OSCeleton's list but NITE never sent
them, so a patch written for NITE's 15 joints ignores those 5. Coordinates use OSCeleton's default
normalisation (its ``-mx/-my/-mz`` multipliers 1, ``-ox/-oy/-oz`` offsets 0), applied to the camera
coordinates in millimetres: ``x = (1280 - x_mm) / 2560``, ``y = (960 - y_mm) / 1920`` (0..1 over 2.56 m by
1.92 m around the optical axis; y grows downwards), ``z = z_mm / 1280`` (7.8125 at 10 m). OSCeleton has no
real-world-millimetre output: its ``-r`` flag only turns mirroring off; receivers that expect ``-r`` use
``1 - x``. Its ``-k`` (Animata) and ``-q`` (Quartz Composer) variants are not produced.
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
#: ``OscSink(fmt=...)`` and ``kerasdance-edge track --osc-format``: the OSC address spaces (module docstring).
OSC_FORMATS = ("kerasdance", "osceleton")
#: OSCeleton's name of each of the 20 Kinect v1 joints (``kerasdance.skeleton.JOINT_NAMES``).
OSCELETON_JOINTS: dict[str, str] = {
    "shoulder_left": "l_shoulder", "shoulder_right": "r_shoulder", "shoulder_center": "neck", "spine": "torso",
    "hip_left": "l_hip", "hip_right": "r_hip", "hip_center": "waist", "elbow_left": "l_elbow",
    "elbow_right": "r_elbow", "wrist_left": "l_wrist", "wrist_right": "r_wrist", "hand_left": "l_hand",
    "hand_right": "r_hand", "knee_left": "l_knee", "knee_right": "r_knee", "ankle_left": "l_ankle",
    "ankle_right": "r_ankle", "foot_left": "l_foot", "foot_right": "r_foot", "head": "head",
}
#: The OSCeleton user ID of the single-person tracker's dancer (``TrackResult.person`` is None).
OSCELETON_SINGLE_USER = 1


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
        "person": None if result.person is None else int(result.person),
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


def osceleton_coords(xyz_m) -> tuple[float, float, float]:
    """Camera metres ``(x right, y up, z away)`` -> OSCeleton's default normalised ``(x, y, z)`` (module docstring)."""
    x_mm, y_mm, z_mm = (1000.0 * float(v) for v in xyz_m)
    return (1280.0 - x_mm) / 2560.0, (960.0 - y_mm) / 1920.0, z_mm / 1280.0


class OscSink(Sink):
    """OSC over UDP (python-osc), one bundle per result, in the address space ``fmt`` (module docstring).

    Args:
        host: receiver address (default this machine).
        port: receiver UDP port.
        joint_names: names of the ``joints_m`` rows (the model's).
        fmt: one of ``OSC_FORMATS``: ``"kerasdance"`` or ``"osceleton"``.

    Raises:
        ValueError: an unknown ``fmt``, or ``"osceleton"`` with a joint that has no OSCeleton name.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, joint_names=JOINT_NAMES, fmt: str = "kerasdance"):
        if fmt not in OSC_FORMATS:
            raise ValueError(f"unknown OSC format: choose one of {', '.join(OSC_FORMATS)}. Received: fmt={fmt!r}")
        self.joint_names = tuple(joint_names)
        if fmt == "osceleton":
            unknown = [n for n in self.joint_names if n not in OSCELETON_JOINTS]
            if unknown:
                raise ValueError(f"the OSCeleton format names the 20 Kinect v1 joints only; no OSCeleton name for "
                                 f"{unknown}")
        from pythonosc.udp_client import SimpleUDPClient

        self.host, self.port, self.fmt = host, int(port), fmt
        self._client = SimpleUDPClient(host, self.port)
        #: OSCeleton users announced with /new_user and not yet lost.
        self.users: set[int] = set()

    @staticmethod
    def _message(address: str, *args):
        from pythonosc.osc_message_builder import OscMessageBuilder

        m = OscMessageBuilder(address=address)
        for a in args:
            m.add_arg(a)
        return m.build()

    def _kerasdance(self, result: TrackResult) -> list:
        prefix = OSC_PREFIX if result.person is None else f"{OSC_PREFIX}/{int(result.person)}"
        out = []
        if result.joints_ready:
            for name, xyz in zip(self.joint_names, np.asarray(result.joints_m, np.float64)):
                out.append(self._message(f"{prefix}/joint/{name}", *(float(v) for v in xyz)))
        out.append(self._message(f"{prefix}/move", result.move, float(result.confidence)))
        out.append(self._message(f"{prefix}/state", result.state))
        out.append(self._message(f"{prefix}/ready", int(result.joints_ready), int(result.move_ready)))
        return out

    def _osceleton(self, result: TrackResult) -> list:
        user = OSCELETON_SINGLE_USER if result.person is None else int(result.person)
        out = []
        if not result.joints_ready:
            if user in self.users:
                self.users.discard(user)
                out.append(self._message("/lost_user", user))
            return out
        if user not in self.users:
            self.users.add(user)
            out += [self._message("/new_user", user), self._message("/new_skel", user)]
        for name, xyz in zip(self.joint_names, np.asarray(result.joints_m, np.float64)):
            if np.isfinite(xyz).all():
                out.append(self._message("/joint", OSCELETON_JOINTS[name], user, *osceleton_coords(xyz)))
        return out

    def _bundle(self, result: TrackResult):
        """The bundle of one result, or None when this format has nothing to say about it."""
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

        messages = self._osceleton(result) if self.fmt == "osceleton" else self._kerasdance(result)
        if not messages:
            return None
        bundle = OscBundleBuilder(IMMEDIATELY)
        for m in messages:
            bundle.add_content(m)
        return bundle.build()

    def send(self, result: TrackResult) -> None:
        bundle = self._bundle(result)
        if bundle is not None:
            self._client.send(bundle)

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
