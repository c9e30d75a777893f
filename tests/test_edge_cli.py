"""kerasdance-edge through click's CliRunner (and once as ``python -m kerasdance_edge``)."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from edge_fixtures import ROOT, person_depth, tiny_model, write_bin  # noqa: F401

from kerasdance import __version__
from kerasdance.modelmeta import sidecar_path
from kerasdance_edge.cli import main


@pytest.fixture
def recording(tmp_path):
    return write_bin(tmp_path / "a01_s01_e01_sdepth.bin", person_depth(20))


def test_help_and_version():
    runner = CliRunner()
    res = runner.invoke(main, ["-h"])
    assert res.exit_code == 0 and "track" in res.output and "bench" in res.output
    res = runner.invoke(main, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    res = runner.invoke(main, ["track", "--help"])
    assert res.exit_code == 0 and "--max-frames" in res.output and "--osc" in res.output


def test_track_recording_jsonl_on_stdout(tiny_model, recording):  # noqa: F811
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(recording), "--fast",
                                    "--jsonl", "-", "--max-frames", "12"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    objs = [json.loads(x) for x in lines]  # stdout carries only JSON lines
    assert len(objs) == 12 and [o["index"] for o in objs] == list(range(12))
    assert [o["state"] for o in objs] == ["warmup"] * 7 + ["tracking"] * 5
    assert len(objs[-1]["joints"]) == 20 and objs[-1]["move"] in ("sway", "spin", "jump")
    assert "done: 12 frames (5 tracked)" in res.stderr


def test_track_stops_at_the_end_of_the_recording(tiny_model, recording, tmp_path):  # noqa: F811
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(recording), "--fast",
                                    "--jsonl", str(out), "--no-smooth"])
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 20


def test_track_to_osc(tiny_model, recording):  # noqa: F811
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    received = []
    dispatcher = Dispatcher()
    dispatcher.map("/kerasdance/state", lambda address, *args: received.append(args[0]))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    server.timeout = 0.5
    try:
        osc = f"127.0.0.1:{server.server_address[1]}"
        res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(recording),
                                        "--fast", "--osc", osc, "--max-frames", "9"])
        for _ in range(9):
            server.handle_request()
    finally:
        server.server_close()
    assert res.exit_code == 0, res.output
    assert received == ["warmup"] * 7 + ["tracking"] * 2


def test_track_on_synthetic_source(tiny_model):  # noqa: F811
    pytest.importorskip("kerasdance.data.synthetic")
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", "synthetic", "--fast",
                                    "--jsonl", "-", "--max-frames", "10"])
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 10


def test_bench_json(tiny_model):  # noqa: F811
    res = CliRunner().invoke(main, ["bench", "--model", str(tiny_model.path), "--frames", "20", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert {"fps", "latency_ms_p50", "latency_ms_p99", "model_latency_ms_p50"} <= set(rep)
    assert rep["fps"] > 0 and 0 < rep["latency_ms_p50"] <= rep["latency_ms_p99"] and rep["frames"] == 20
    res = CliRunner().invoke(main, ["bench", "--model", str(tiny_model.path), "--frames", "5"])
    assert res.exit_code == 0 and "p50" in res.output and "fps" in res.output
    res = CliRunner().invoke(main, ["bench", "--model", str(tiny_model.path), "--frames", "5", "--flip-test"])
    assert res.exit_code == 0 and "flip test" in res.output


def _one_line_error(res, pattern):
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    err = [line for line in res.stderr.strip().splitlines() if line.startswith("Error: ")]
    assert len(err) == 1 and res.stderr.strip().splitlines()[-1] == err[0], res.stderr
    assert pattern in err[0], err[0]


def test_tampered_sidecar_missing_model_bad_source(tiny_model, tmp_path, recording):  # noqa: F811
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_model.path, model)
    meta = json.loads(sidecar_path(tiny_model.path).read_text())
    meta["sha256"] = "0" * 64
    sidecar_path(model).write_text(json.dumps(meta))
    runner = CliRunner()
    for cmd in (["track", "--source", str(recording)], ["bench"]):
        _one_line_error(runner.invoke(main, [*cmd, "--model", str(model)]), "does not match its sidecar")
    _one_line_error(runner.invoke(main, ["bench", "--model", str(tmp_path / "none.tflite")]), "no such model file")
    _one_line_error(runner.invoke(main, ["track", "--model", str(tiny_model.path), "--source", "webcam"]),
                    "not 'realsense', 'synthetic' or an existing recording")
    bad = tmp_path / "a01_s01_e01_sdepth.bin"
    bad.write_bytes(b"\1\0")
    _one_line_error(runner.invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(bad)]),
                    "shorter than the 12-byte header")


def test_realsense_without_driver_is_a_one_line_error(tiny_model, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", "realsense"])
    _one_line_error(res, "pip install kerasdance[camera]")


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "kerasdance_edge", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and __version__ in proc.stdout
