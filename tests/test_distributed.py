import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdance.training.trainer import make_strategy


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_mirrored_strategy_builds():
    assert make_strategy("mirrored").num_replicas_in_sync >= 1


def test_multiworker_needs_tf_config(monkeypatch):
    from kerasdance.errors import KerasdanceError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KerasdanceError, match="TF_CONFIG"):
        make_strategy("multiworker")


@pytest.mark.slow
def test_two_workers_on_loopback_end_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    script = Path(__file__).parent / "multiworker_worker.py"
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(Path(__file__).parents[1]))
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{i}.npz")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    a, b = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(a.files) == len(b.files) > 0
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
