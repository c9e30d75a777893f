"""The live view (``kerasdance-edge track --web``): page, feed, and a real headless Chromium reading the pixels.

The browser test needs Debian's ``chromium`` (``/usr/bin/chromium``); ``make test`` installs it when it
is missing and we are root (``make chromium``). It is driven through the DevTools protocol (a WebSocket,
with the ``websockets`` client the edge runtime already depends on).
"""

from __future__ import annotations

import base64
import configparser
import fnmatch
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from edge_fixtures import ROOT, ArraySource, person_depth, tiny_model, write_bin  # noqa: F401

from kerasdance.skeleton import BONES, JOINT_NAMES
from kerasdance_edge.cli import main
from kerasdance_edge.tracker import Faults, RunStats, TrackResult
from kerasdance_edge.webview import ASSETS, LiveView, depth_preview, load_assets

CHROMIUM = Path("/usr/bin/chromium")
JOINT_RGB = (255, 0, 255)  # view.js JOINT_COLOUR
BONE_RGB = (0x4F, 0xC3, 0xF7)  # view.js BONE_COLOURS[0]
JOINT_RADIUS = 4
METRES_ACROSS = 3.0


def _result(index: int, joints=None, person=None, state="tracking") -> TrackResult:
    joints = np.arange(60, dtype=np.float32).reshape(20, 3) / 100 if joints is None else joints
    return TrackResult(index, index * 66_667, joints, "spin" if state == "tracking" else "", 0.75, 2.5, state, person)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def _recv(ws) -> dict:
    return json.loads(ws.recv(timeout=10))


# --- pieces ---------------------------------------------------------------------------------------------------
def test_depth_preview_maps_depth_to_grey_and_downsamples():
    d = np.zeros((240, 320), np.uint16)
    d[:120, :160] = 500  # top-left quarter: near
    d[:120, 160:] = 4500  # top-right: far
    d[120:, :160] = 2500  # bottom-left: half way; bottom-right: no reading
    img = depth_preview(d, 80, 60)
    assert img.shape == (60, 80) and img.dtype == np.uint8
    assert (img[:30, :40] == 255).all() and (img[:30, 40:] == 40).all()
    assert (img[30:, :40] == 148).all() and (img[30:, 40:] == 0).all()  # 255 - 2000 * 215 / 4000 = 147.5
    assert depth_preview(np.full((4, 4), 9000, np.uint16), 2, 2).tolist() == [[40, 40], [40, 40]]
    with pytest.raises(ValueError, match="2-D"):
        depth_preview(np.zeros(7, np.uint16))


def test_every_page_file_is_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    globs = [g.strip() for g in cfg["options.package_data"]["kerasdance_edge"].split(",")]
    files = sorted(p.relative_to(ROOT / "edge").as_posix() for p in (ROOT / "edge" / "web").iterdir())
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), (files, globs)
    assets = load_assets()  # through importlib.resources, as installed
    assert set(assets) == set(ASSETS)
    for path, (body, _) in assets.items():
        assert body == (ROOT / "edge" / "web" / ASSETS[path][0]).read_bytes()
    html = assets["/"][0].decode()
    assert "view.js" in html and "view.css" in html and "http" not in html  # nothing from elsewhere


def test_serves_the_page_and_the_feed():
    from websockets.sync.client import connect

    source = ArraySource(person_depth(3))
    view = LiveView(0)
    try:
        assert view.url == f"http://127.0.0.1:{view.port}/"
        status, ctype, body = _get(view.url)
        assert status == 200 and ctype.startswith("text/html") and b"<canvas" in body
        status, ctype, _ = _get(view.url + "view.js")
        assert status == 200 and ctype.startswith("text/javascript")
        assert _get(view.url + "nothing-here")[0] == 404
        frames = list(view.tap(source).frames())  # the tap keeps the frames for the depth image
        with connect(f"ws://127.0.0.1:{view.port}/ws") as ws:
            hello = _recv(ws)
            assert hello["type"] == "hello" and hello["joint_names"] == list(JOINT_NAMES)
            assert hello["bones"] == [[JOINT_NAMES[a], JOINT_NAMES[b]] for a, b in BONES]
            stats = RunStats(frames=3, tracked=2, elapsed_s=1.0, faults=Faults(dropped_frames=2))
            stats.latencies_ms.extend([1.0, 2.0, 3.0])
            view.observe(stats)
            view.send(_result(2))
            msg = _recv(ws)
            assert msg["type"] == "frame" and msg["index"] == 2 and len(msg["people"]) == 1
            person = msg["people"][0]
            assert person["state"] == "tracking" and person["move"] == "spin" and person["person"] is None
            assert person["joints"]["head"] == pytest.approx([0.57, 0.58, 0.59])
            depth = msg["depth"]
            assert (depth["width"], depth["height"]) == (80, 60)
            pixels = np.frombuffer(base64.b64decode(depth["data"]), np.uint8).reshape(60, 80)
            np.testing.assert_array_equal(pixels, depth_preview(frames[2].depth_mm))
            assert msg["stats"]["fps"] == 3.0 and msg["stats"]["latency_ms_p50"] == 2.0
            assert msg["stats"]["faults"]["dropped_frames"] == 2 and msg["stats"]["faults_total"] == 2
            # several dancers: the results of one frame are shown together, with their IDs
            view.send(_result(3, person=4))
            view.send(_result(3, person=7, state="warmup"))
            msg = _recv(ws)
            while len(msg["people"]) < 2:  # the first of the two may have gone out alone
                msg = _recv(ws)
            assert [p["person"] for p in msg["people"]] == [4, 7] and msg["depth"] is None  # frame 3 not tapped
    finally:
        view.close()
    assert not view._thread.is_alive()


def test_nothing_is_encoded_while_nobody_watches_and_the_newest_frame_wins():
    from websockets.sync.client import connect

    view = LiveView(0)
    try:
        for i in range(50):
            view.send(_result(i))
        assert view.encoded == 0 and view.clients == 0
        with connect(f"ws://127.0.0.1:{view.port}/ws") as ws:
            assert _recv(ws)["type"] == "hello"
            assert _recv(ws)["index"] == 49  # straight to the newest
            for i in range(50, 250):
                view.send(_result(i))
            seen = [49]
            while seen[-1] != 249:
                seen.append(_recv(ws)["index"])
            assert all(b > a for a, b in zip(seen, seen[1:]))  # never an old frame after a newer one
            assert view.encoded <= 201
    finally:
        view.close()


def test_track_with_web_starts_and_stops_the_server(tiny_model, tmp_path):  # noqa: F811
    recording = write_bin(tmp_path / "a01_s01_e01_sdepth.bin", person_depth(12))
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(recording), "--fast",
                                    "--web", "0", "--max-frames", "10"])
    assert res.exit_code == 0, res.output
    assert "live view: http://127.0.0.1:" in res.stderr and "done: 10 frames" in res.stderr
    with socket.socket() as busy:  # a port in use: a one-line error, no traceback
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(recording),
                                        "--web", str(port)])
    assert res.exit_code == 1 and "cannot serve the live view" in res.output and "Traceback" not in res.output
    assert "--web-host" in CliRunner().invoke(main, ["track", "--help"]).output


# --- a real browser -------------------------------------------------------------------------------------------
def _wait_for(what: str, check, detail=lambda: "", timeout_s: float = 90.0, step_s: float = 0.2):
    """Poll ``check()`` until it returns something truthy (a deadline for a hung process, not a timing check)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s} s\n{detail()[-3000:]}")


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page (commands in order, events ignored)."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0

    def __call__(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str):
        result = self("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> np.ndarray:
        from PIL import Image

        png = base64.b64decode(self("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(np.int32)

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.geteuid() == 0:
            pytest.fail(f"{CHROMIUM} is missing: `make chromium` (or `make test`) installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is missing and this is not root, so it cannot be installed "
                    "(as root: `make chromium`, i.e. apt-get install chromium)")
    return CHROMIUM


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _expected_xy(joints: dict, rect: dict, yaw: float = 0.0) -> dict[str, tuple[float, float]]:
    """Where view.js draws each joint (page pixels): orthographic, turned by ``yaw`` about (0, 0, mean z)."""
    pts = {k: np.array(v, float) for k, v in joints.items() if all(c is not None for c in v)}
    pivot_z = float(np.mean([p[2] for p in pts.values()]))
    w, h = rect["width"], rect["height"]
    s = h / METRES_ACROSS
    out = {}
    for name, (x, y, z) in pts.items():
        x1 = np.cos(yaw) * x + np.sin(yaw) * (z - pivot_z)
        out[name] = (rect["left"] + w / 2 + s * x1, rect["top"] + h / 2 - s * y)
    return out


def _near(img: np.ndarray, rgb, tol: int) -> np.ndarray:
    return (np.abs(img - np.array(rgb)) <= tol).all(axis=-1)


def _check_skeleton(img: np.ndarray, expected: dict, rect: dict, bones: list) -> None:
    """Joint-coloured pixels exactly where the joints are, and nowhere else on the page; bones between them."""
    inside = {k: (x, y) for k, (x, y) in expected.items()
              if rect["left"] + 6 <= x <= rect["left"] + rect["width"] - 6
              and rect["top"] + 6 <= y <= rect["top"] + rect["height"] - 6}
    assert len(inside) >= 15, f"only {len(inside)} joints inside the view: {expected}"
    for name, (x, y) in inside.items():
        centre = img[int(y), int(x)]
        assert _near(centre, JOINT_RGB, 12), f"{name}: no joint colour at ({x:.1f}, {y:.1f}) but {centre}"
    rows, cols = np.nonzero(_near(img, JOINT_RGB, 12))
    assert len(rows) >= len(inside) * 9  # discs, not stray pixels
    centres = np.array(list(expected.values()))
    dist = np.hypot(cols[:, None] + 0.5 - centres[None, :, 0], rows[:, None] + 0.5 - centres[None, :, 1]).min(axis=1)
    assert dist.max() <= JOINT_RADIUS + 1.5, f"joint colour {dist.max():.1f} px from every joint"
    checked = 0
    for a, b in bones:
        if a not in inside or b not in inside:
            continue
        (xa, ya), (xb, yb) = inside[a], inside[b]
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        if np.hypot(xb - xa, yb - ya) < 20 or np.hypot(centres[:, 0] - mx, centres[:, 1] - my).min() < 8:
            continue
        patch = img[int(my) - 1 : int(my) + 2, int(mx) - 1 : int(mx) + 2]
        assert _near(patch, BONE_RGB, 40).any(), f"no bone colour half way along {a}-{b} at ({mx:.0f}, {my:.0f})"
        checked += 1
    assert checked >= 2, f"only {checked} bones could be checked"


@pytest.mark.slow
def test_browser_shows_the_skeleton_where_the_joints_are(tiny_model, chromium, tmp_path):  # noqa: F811
    jsonl, track_err, chrome_err = tmp_path / "out.jsonl", tmp_path / "track.err", tmp_path / "chromium.err"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    track = subprocess.Popen(
        [sys.executable, "-m", "kerasdance_edge", "track", "--model", str(tiny_model.path), "--source", "synthetic",
         "--web", "0", "--jsonl", str(jsonl), "--max-frames", "100000"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=track_err.open("w"))
    browser = devtools = None
    try:
        def address():
            lines = [x for x in _read(track_err).splitlines() if x.startswith("live view: ")]
            return lines[0] if lines else track.poll() is not None

        line = _wait_for("the live view's address", address, lambda: _read(track_err))
        assert track.poll() is None, _read(track_err)
        url = line.split()[2]
        browser = subprocess.Popen(
            [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--force-color-profile=srgb", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1000,650", "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL, stderr=chrome_err.open("w"))
        port = _wait_for("Chromium's DevTools port", lambda: next(
            (x.rsplit(":", 1)[1].split("/")[0] for x in _read(chrome_err).splitlines()
             if x.startswith("DevTools listening on ws://")), None), lambda: _read(chrome_err))

        def page_target():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                    targets = json.loads(r.read())
            except OSError:
                return None
            return next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page" and t["url"] == url), None)

        devtools = DevTools(_wait_for("the page in Chromium", page_target, lambda: _read(chrome_err)))
        devtools("Emulation.setDeviceMetricsOverride", width=1000, height=650, deviceScaleFactor=1, mobile=False)
        _wait_for("a frame with joints and figures on the page", lambda: devtools.eval(
            "!!(window.kdView && kdView.shown && kdView.shown.stats && kdView.shown.depth"
            " && kdView.shown.people.some(p => p.joints))"), lambda: _read(track_err))
        page = json.loads(devtools.eval(
            "kdView.pause(); kdView.resetView(); JSON.stringify({shown: kdView.shown, hello: kdView.hello,"
            " rect: document.getElementById('skeleton').getBoundingClientRect(),"
            " depthRect: document.getElementById('depth').getBoundingClientRect(),"
            " text: Object.fromEntries(['state', 'move', 'fps', 'latency', 'faults', 'frame', 'connection']"
            ".map(k => [k, document.getElementById(k).textContent]))})"))
        img = devtools.screenshot()
        shown, rect, text = page["shown"], page["rect"], page["text"]

        # the page shows what the tracker sent (the JSON lines of the same run)
        sent = {o["index"]: o for o in map(json.loads, jsonl.read_text().splitlines())}
        person = shown["people"][0]
        assert shown["index"] in sent and person["joints"] == sent[shown["index"]]["joints"]
        assert (rect["width"], rect["height"]) == (480, 480)
        expected = _expected_xy(person["joints"], rect)
        _check_skeleton(img, expected, rect, page["hello"]["bones"])
        # the depth image: 80x60 preview drawn pixelated into 320x240 (4x4 screen pixels per value)
        d = page["depthRect"]
        grey = np.frombuffer(base64.b64decode(shown["depth"]["data"]), np.uint8).reshape(60, 80)
        region = img[int(d["top"]) : int(d["top"]) + 240, int(d["left"]) : int(d["left"]) + 320]
        np.testing.assert_array_equal(region[2::4, 2::4], np.repeat(grey[..., None], 3, axis=-1))
        assert grey.max() > 100  # the dancer is there
        # the figures
        assert text["state"] == person["state"] and text["frame"] == str(shown["index"])
        assert text["connection"] == "live"
        assert text["move"] == (person["move"] if person["move_ready"] else "-")
        assert float(text["fps"]) > 0 and text["latency"].endswith(")") and text["faults"].split()[0].isdigit()

        # drag the view: the joints turn about the vertical axis (yaw = 0.01 rad per pixel)
        cx, cy = rect["left"] + 240, rect["top"] + 240
        for kind, x in (("mousePressed", cx), ("mouseMoved", cx + 60), ("mouseReleased", cx + 60)):
            devtools("Input.dispatchMouseEvent", type=kind, x=x, y=cy, button="left", buttons=1, clickCount=1)
        assert devtools.eval("kdView.yaw") == pytest.approx(0.6)
        _check_skeleton(devtools.screenshot(), _expected_xy(person["joints"], rect, yaw=0.6), rect,
                        page["hello"]["bones"])
    finally:
        if devtools is not None:
            devtools.close()
        if browser is not None:
            browser.terminate()
            browser.wait(timeout=30)
        track.send_signal(signal.SIGINT)  # Ctrl-C: the tracker closes its sinks, the server stops
        try:
            rc = track.wait(timeout=60)
        except subprocess.TimeoutExpired:
            track.kill()
            raise
    assert rc == 0, _read(track_err)
    assert "interrupted" in _read(track_err)
