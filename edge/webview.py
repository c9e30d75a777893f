"""A live view in the browser: one page over HTTP and a WebSocket feed on the same port (``track --web PORT``).

``LiveView`` is a sink (``send(result)``, ``close()``) that serves, from one ``websockets`` server in a
background thread:

* ``GET /`` (and ``/view.js``, ``/view.css``): the page, shipped as package data (``kerasdance_edge/web/``);
  plain JavaScript, no build step, nothing fetched from elsewhere;
* ``/ws``: the WebSocket feed. A client first gets one ``hello`` message, then ``frame`` messages::

    {"type": "hello", "joint_names": [...], "bones": [["hip_center", "spine"], ...], "depth_range_mm": [500, 4500]}
    {"type": "frame", "index": 42, "timestamp_us": 2800000,
     "people": [{...the JSON of each result of this frame (sinks.result_to_dict), "person": id or null...}],
     "depth": {"width": 80, "height": 60, "data": "<base64 of width*height uint8, row-major, 0 = no reading,
               255 = nearest>"} or null,
     "stats": {"fps": 14.9, "latency_ms_p50": 3.2, "frames": 420, "tracked": 400, "faults": {...},
               "faults_total": 0}}

Nothing is encoded while nobody watches: ``send`` keeps a reference to the newest result (and, through
``tap``, to its depth frame) and only wakes the server thread when a client is connected. Each client
has its own sender that always sends the newest frame (latest frame wins): a slow browser gets fewer
frames and never slows the tracker or the other clients.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.resources
import json
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np

from kerasdance.skeleton import BONES, JOINT_NAMES
from kerasdance_edge.sinks import Sink, result_to_dict
from kerasdance_edge.tracker import RunStats, TrackResult

log = logging.getLogger("kerasdance.edge")

#: URL path -> (file in kerasdance_edge/web, content type).
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/view.js": ("view.js", "text/javascript; charset=utf-8"),
    "/view.css": ("view.css", "text/css; charset=utf-8"),
}
WS_PATH = "/ws"
#: Depths mapped to grey: NEAR_MM and nearer -> 255, FAR_MM and farther -> 40, no reading (0) -> 0.
NEAR_MM, FAR_MM = 500, 4500
#: Frames kept for ``send`` to find the depth of its result's frame (results lag their frame by at most one).
_RING = 8


def load_assets() -> dict[str, tuple[bytes, str]]:
    """The page's files from the installed package data, by URL path.

    Raises:
        FileNotFoundError: a file of the page is missing (a broken install).
    """
    folder = importlib.resources.files("kerasdance_edge") / "web"
    out = {}
    for path, (name, ctype) in ASSETS.items():
        try:
            out[path] = ((folder / name).read_bytes(), ctype)
        except (FileNotFoundError, OSError) as e:
            raise FileNotFoundError(f"the live view's page file {name!r} is not installed in kerasdance_edge/web "
                                    f"(package data): {e}") from None
    return out


def depth_preview(depth_mm: np.ndarray, width: int = 80, height: int = 60) -> np.ndarray:
    """A small grey image of a depth frame: ``(height, width)`` uint8, nearest-neighbour downsampled.

    Near is bright: ``NEAR_MM`` and nearer -> 255, ``FAR_MM`` and farther -> 40, no reading (0) -> 0.

    Args:
        depth_mm: ``(H, W)`` depth in millimetres.
        width, height: the preview's size.

    Raises:
        ValueError: ``depth_mm`` is not a non-empty 2-D array.
    """
    d = np.asarray(depth_mm)
    if d.ndim != 2 or not d.size:
        raise ValueError(f"depth_mm must be a non-empty 2-D array. Received: shape={d.shape!r}")
    rows = ((np.arange(height) + 0.5) * d.shape[0] / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * d.shape[1] / width).astype(np.intp)
    small = d[rows][:, cols].astype(np.float32)
    grey = 255.0 - (np.clip(small, NEAR_MM, FAR_MM) - NEAR_MM) * (215.0 / (FAR_MM - NEAR_MM))
    return np.where(small > 0, np.round(grey), 0).astype(np.uint8)


class _TappedSource:
    """A depth source that hands every frame it delivers to ``on_frame`` (everything else is the source's)."""

    def __init__(self, source, on_frame):
        self._source, self._on_frame = source, on_frame

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __enter__(self):
        self._source.__enter__()
        return self

    def __exit__(self, *exc):
        return self._source.__exit__(*exc)

    def frames(self) -> Iterator:
        for frame in self._source.frames():
            self._on_frame(frame)
            yield frame


class LiveView(Sink):
    """Serves the live page and feeds it the newest frame (see the module docstring).

    Args:
        port: TCP port of the page and the feed (0: any free port; the bound one is in ``self.port``).
        host: interface to bind (default this machine only; ``0.0.0.0`` to watch from another computer).
        joint_names: names of the ``joints_m`` rows (the model's).
        depth_size: ``(width, height)`` of the depth preview.
        stats_interval_s: how often the run's statistics are summarised for the page (only while watched).

    Raises:
        ImportError: ``websockets`` (13 or newer) is missing.
        FileNotFoundError: the page is not installed.
        OSError: the port cannot be bound.
    """

    def __init__(self, port: int = 8080, host: str = "127.0.0.1", joint_names=JOINT_NAMES,
                 depth_size: tuple[int, int] = (80, 60), stats_interval_s: float = 0.5, start_timeout_s: float = 10.0):
        try:
            from websockets.asyncio.server import serve  # noqa: F401 - fail here when missing or too old
        except ImportError:
            raise ImportError("the live view (--web) needs websockets>=13: pip install 'kerasdance[edge]'") from None
        self.host, self.port = host, int(port)
        self.joint_names = tuple(joint_names)
        self.depth_size = (int(depth_size[0]), int(depth_size[1]))
        self.stats_interval_s = float(stats_interval_s)
        self._assets = load_assets()
        self._hello = json.dumps({
            "type": "hello", "joint_names": list(self.joint_names),
            "bones": [[JOINT_NAMES[a], JOINT_NAMES[b]] for a, b in BONES], "depth_range_mm": [NEAR_MM, FAR_MM]})
        self._frames: list = [None] * _RING  # the newest frames by index % _RING (written by the source's thread)
        self._latest: tuple | None = None  # (version, index, results, depth) of the newest frame
        self._version = 0
        self._stats: dict | None = None
        self._stats_t = -np.inf
        self._cache: tuple[int, str] | None = None  # (version, message)
        self._wakers: set[asyncio.Event] = set()
        self.encoded = 0  # frame messages built (none while nobody watches)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve_forever, name="kerasdance-liveview", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout_s):
            raise OSError(f"the live view on {host}:{port} did not start within {start_timeout_s} s")
        if self._error is not None:
            raise OSError(f"cannot serve the live view on {host}:{port}: {self._error}") from None

    # --- the tracker's side (main thread) ------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    @property
    def clients(self) -> int:
        return len(self._wakers)

    def tap(self, source):
        """``source`` with its frames shown as the depth image (pass the result to ``run``)."""
        return _TappedSource(source, self._on_frame)

    def _on_frame(self, frame) -> None:
        self._frames[int(frame.index) % _RING] = frame

    def send(self, result: TrackResult) -> None:
        """Keep ``result`` as the newest (results of one frame, one per person, are shown together)."""
        latest = self._latest
        if latest is not None and latest[1] == result.index:
            results = (*latest[2], result)
        else:
            results = (result,)
        frame = self._frames[int(result.index) % _RING]
        depth = frame.depth_mm if frame is not None and frame.index == result.index else None
        self._version += 1
        self._latest = (self._version, int(result.index), results, depth)
        if self._wakers:
            self._loop.call_soon_threadsafe(self._wake)

    def observe(self, stats: RunStats) -> None:
        """Summarise the run's statistics for the page (cheap; only while someone watches, a few times a second)."""
        now = time.monotonic()
        if not self._wakers or now - self._stats_t < self.stats_interval_s:
            return
        self._stats_t = now
        faults = stats.faults.to_dict()
        self._stats = {"fps": _finite(stats.fps, 2), "latency_ms_p50": _finite(stats.latency_ms(50), 2),
                       "frames": stats.frames, "tracked": stats.tracked, "faults": faults,
                       "faults_total": stats.faults.total()}

    def close(self) -> None:
        if self._thread.is_alive() and self._stopped is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:  # loop already closed
                pass
            self._thread.join(timeout=5.0)

    # --- the server's side (its own thread and asyncio loop) -----------------------------------------------
    def _wake(self) -> None:
        for event in self._wakers:
            event.set()

    def _message(self) -> tuple[int, str] | None:
        """The newest frame as a JSON message, built once per frame whoever asks."""
        latest = self._latest
        if latest is None:
            return None
        version, index, results, depth = latest
        if self._cache is not None and self._cache[0] == version:
            return self._cache
        people = []
        for r in results:
            d = result_to_dict(r, self.joint_names)
            d.setdefault("person", None if r.person is None else int(r.person))
            people.append(d)
        image = None
        if depth is not None and np.ndim(depth) == 2 and np.size(depth):
            w, h = self.depth_size
            image = {"width": w, "height": h,
                     "data": base64.b64encode(depth_preview(depth, w, h).tobytes()).decode("ascii")}
        msg = json.dumps({"type": "frame", "index": index, "timestamp_us": int(results[-1].timestamp_us),
                          "people": people, "depth": image, "stats": self._stats},
                         separators=(",", ":"), allow_nan=False)
        self.encoded += 1
        self._cache = (version, msg)
        return self._cache

    def _process_request(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return None  # the WebSocket handshake
        if path not in self._assets:
            return connection.respond(404, f"not found: {path}\n")
        body, ctype = self._assets[path]
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-store"), ("Connection", "close")])
        return Response(200, "OK", headers, body)

    async def _handler(self, ws) -> None:
        event = asyncio.Event()
        event.set()  # send the newest frame at once
        closed = asyncio.ensure_future(ws.wait_closed())  # the browser left or the server stops
        closed.add_done_callback(lambda _: event.set())
        self._wakers.add(event)
        try:
            await ws.send(self._hello)
            sent = -1
            while True:
                await event.wait()
                event.clear()
                if closed.done():
                    break
                message = self._message()
                if message is not None and message[0] != sent:
                    sent = message[0]
                    await ws.send(message[1])  # waits for this client only; newer frames meanwhile are merged
        except Exception:  # noqa: BLE001 - the browser went away
            pass
        finally:
            self._wakers.discard(event)
            closed.cancel()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stopped = asyncio.Event()
        quiet = logging.getLogger("kerasdance.edge.web.server")  # handshake noise (browser pre-connects) stays out
        quiet.setLevel(logging.CRITICAL)
        try:
            server = await serve(self._handler, self.host, self.port, process_request=self._process_request,
                                 logger=quiet, max_size=2**16)
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

    def _serve_forever(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()


def _finite(x: float, digits: int) -> float | None:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None
