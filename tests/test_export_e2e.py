"""End to end: synthesize a tiny set -> ``train`` (1 epoch) -> ``export_run`` in every format -> verify."""

import json

import numpy as np
import pytest

from kerasdance.config import RunConfig

pytest.importorskip("kerasdance.data.synthetic")

CFG = RunConfig().replace(
    data={"frames": 8, "crop_size": 32},
    model={"stem_filters": (4, 4, 4, 4), "lstm_units": 8, "conv_filters": (8, 8, 8)},
    train={"epochs": 1, "batch_size": 4},
)
# Relative to the Keras outputs' range over the test split; see test_export.py for where they come from.
RELATIVE_BOUND = {"float16": 0.01, "dynamic": 0.05, "int8": 0.15}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kerasdance.data.pipeline import WindowSampler
    from kerasdance.data.splits import load_train_data
    from kerasdance.data.synthetic import write_set
    from kerasdance.predict import load_run
    from kerasdance.training.trainer import train

    root = tmp_path_factory.mktemp("export_e2e")
    write_set("dance11", root / "data", seed=0, limit_per_class=2)  # 11 moves x (1 train + 1 test subject)
    train(root / "data", root / "run", CFG, cache_dir=root / "cache", verbose=0)
    cfg, names, model = load_run(root / "run")
    _, test = load_train_data(root / "data", cfg, root / "cache")
    windows = WindowSampler(test, cfg.data, "depth", augment=None).eval_windows()["x"]
    span = max(float(np.ptp(np.asarray(v))) for v in model(windows, training=False).values())
    return root, names, span


@pytest.mark.parametrize("fmt", ["float32", "float16", "dynamic", "int8"])
def test_synth_train_export_verify(trained, fmt):
    from kerasdance.export.exporter import export_run
    from kerasdance.export.verify import check_exported

    root, names, span = trained
    out = root / "out" / f"{fmt}.tflite"
    rep = export_run(root / "run", out, format=fmt, max_drop=100.0, cache_dir=root / "cache",
                     report_path=root / "out" / f"{fmt}.json", latency_runs=5)
    meta = check_exported(out)  # sidecar hash, then the model's tensors against the sidecar
    assert meta.class_names == tuple(names) and meta.quantization == fmt and meta.unrolled
    assert meta.data_config == CFG.data and meta.extra["run_dir"] == str((root / "run").resolve())
    assert rep["n_test"] == 11 and rep["size_bytes"] == out.stat().st_size
    assert json.loads((root / "out" / f"{fmt}.json").read_text())["sha256"] == meta.sha256
    assert np.isfinite(rep["mpjpe_tflite_mm"]) and rep["latency_ms_p50"] > 0
    if fmt == "float32":
        assert rep["max_abs_diff"] <= 1e-4 and rep["accuracy_tflite"] == rep["accuracy_keras"]
    else:
        assert rep["max_abs_diff"] / span <= RELATIVE_BOUND[fmt]
