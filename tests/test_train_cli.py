"""End to end through the CLI on a tiny MSR-layout folder: train, evaluate, predict, kill -9 + --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from kerasdance.cli import cli
from kerasdance.data.pipeline import EDGE_CUT_SHARE


def _train_args(data, run, cfg, *extra):
    return ["train", "--data", str(data), "--out", str(run), "--config", str(cfg), "--cache-dir",
            str(run.parent / "cache"), *extra]


def test_train_evaluate_predict(tiny_msr, tiny_config, tmp_path, caplog):
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, _train_args(tiny_msr, run, tiny_config, "--labelled-fraction", "0.5"))
    assert res.exit_code == 0, res.output
    assert "accuracy:" in res.output and "MPJPE" in res.output
    for name in ("config.json", "model.keras", "train_log.csv", "metrics.json", "checkpoints/latest.json"):
        assert (run / name).exists(), name
    log = (run / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + 3 and "pseudo_count" in log[0]
    assert "val_" not in log[0] and all(",NA" not in row for row in log)  # no empty validation columns
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("accuracy", "mpjpe_mm", "map_10cm", "rmse_norm", "n_test"):
        assert key in metrics
    assert metrics["n_test"] == 6 and metrics["n_labelled"] == 3  # 2 train subjects x 3 moves, half labelled
    # Self-training started from a supervised-only stage on the labelled sequences, kept beside the run.
    stage = run / "supervised_stage"
    assert json.loads((stage / "config.json").read_text())["train"]["self_training"] is False
    assert "pseudo_count" not in (stage / "train_log.csv").read_text().splitlines()[0]
    assert json.loads((stage / "metrics.json").read_text())["n_labelled"] == 3

    res = runner.invoke(cli, ["evaluate", str(run), "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == pytest.approx(metrics["accuracy"])
    assert (run / "confusion.png").exists()
    res = runner.invoke(cli, ["evaluate", str(run), "--flip-test", "--json", str(tmp_path / "f.json")])
    assert res.exit_code == 0 and "with the flip test" in res.output, res.output
    assert "was not trained with --mirror" in caplog.text  # and says that it may not help this run
    flip = json.loads((tmp_path / "f.json").read_text())
    assert flip["flip_test"] is True and flip["accuracy"] == pytest.approx(metrics["accuracy"])
    assert np.isfinite(flip["mpjpe_mm"]) and flip["mpjpe_mm"] != pytest.approx(metrics["mpjpe_mm"], abs=1e-6)

    rec = tiny_msr / "a02_s02_e01_sdepth.bin"
    res = runner.invoke(cli, ["predict", str(run), str(rec), "--joints-out", str(tmp_path / "j.json"),
                              "--render", str(tmp_path / "a.gif")])
    assert res.exit_code == 0, res.output
    assert "confidence" in res.output
    joints = json.loads((tmp_path / "j.json").read_text())
    assert np.asarray(joints["joints_m"]).shape == (8, 20, 3)
    res = runner.invoke(cli, ["predict", str(run), str(rec), "--flip-test", "--joints-out", str(tmp_path / "f.json")])
    assert res.exit_code == 0, res.output
    flipped = np.asarray(json.loads((tmp_path / "f.json").read_text())["joints_m"])
    assert flipped.shape == (8, 20, 3) and not np.allclose(flipped, joints["joints_m"])
    assert (tmp_path / "a.gif").stat().st_size > 0
    assert "one move for the whole recording" not in caplog.text
    # a continuous recording (per-frame labels of two moves): predict says it gives one move and what to use instead
    from kerasdance.data.dataset import Dataset, write_generic

    seq = Dataset.open(tiny_msr).load(Dataset.open(tiny_msr).refs[0])
    seq.frame_labels = np.where(np.arange(seq.num_frames) < seq.num_frames // 2, 0, 1)
    write_generic(tmp_path / "cont", [seq], ["a", "b", "c"], seq.intrinsics)
    res = runner.invoke(cli, ["predict", str(run), str(tmp_path / "cont" / f"{seq.name}.npz")])
    assert res.exit_code == 0, res.output
    assert "hold 2 moves" in caplog.text and "kerasdance-edge track" in caplog.text

    res = runner.invoke(cli, _train_args(tiny_msr, run, tiny_config))
    assert res.exit_code == 1 and "--resume" in res.output  # never overwrites a run


def test_self_training_from_scratch_has_no_supervised_stage(tiny_msr, tiny_config, tmp_path):
    run = tmp_path / "run"
    res = CliRunner().invoke(cli, _train_args(tiny_msr, run, tiny_config, "--labelled-fraction", "0.5",
                                              "--supervised-epochs", "0", "--epochs", "2", "--mirror",
                                              "--edge-cuts", "--live-windows"))
    assert res.exit_code == 0, res.output
    assert not (run / "supervised_stage").exists()
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["supervised_stage_epochs"] == 0 and saved["mirror_augment"] is True
    assert saved["edge_cut_share"] == EDGE_CUT_SHARE > 0 and saved["live_windows"] is True


def test_second_round_starts_from_the_stage_under_the_first_rounds_model_held_fixed(tiny_msr, tiny_config, tmp_path):
    from kerasdance.config import RunConfig
    from kerasdance.data.splits import load_train_data
    from kerasdance.keras_backend import tf
    from kerasdance.models.lstm_cnn import load_model
    from kerasdance.training.trainer import Trainer

    run = tmp_path / "run"
    res = CliRunner().invoke(cli, _train_args(tiny_msr, run, tiny_config, "--labelled-fraction", "0.5",
                                              "--epochs", "2", "--rounds", "2"))
    assert res.exit_code == 0, res.output
    first = run / "round_1"
    assert (first / "metrics.json").exists() and (run / "supervised_stage" / "metrics.json").exists()
    assert not (first / "supervised_stage").exists()  # both rounds start from the one stage beside them
    assert json.loads((first / "config.json").read_text())["train"]["self_training_rounds"] == 1
    assert "pseudo_count" in (run / "train_log.csv").read_text().splitlines()[0]
    assert f"pseudo-labels from {first}" in res.output

    # After two epochs of round 2 its teacher still holds round 1's final weights (no EMA) while the student trained.
    cfg = RunConfig.of_run(run)
    data, _ = load_train_data(tiny_msr, cfg, run.parent / "cache")
    trainer = Trainer(cfg, run, data, tf.distribute.get_strategy())
    assert trainer.restore_latest() is not None
    round_one = load_model(first / "model.keras").get_weights()
    for got, want in zip(trainer.teacher.get_weights(), round_one, strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(trainer.model.get_weights(), round_one, strict=True))


def test_rounds_without_unlabelled_sequences_train_once_and_say_so(tiny_msr, tiny_config, tmp_path, caplog):
    run = tmp_path / "run"
    with caplog.at_level("WARNING", logger="kerasdance.training"):
        res = CliRunner().invoke(cli, _train_args(tiny_msr, run, tiny_config, "--epochs", "1", "--rounds", "2"))
    assert res.exit_code == 0, res.output
    assert not (run / "round_1").exists()
    assert "self_training_rounds=2 has no effect: every training sequence is labelled" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["supervised_stage", "self_training"])
def test_kill_dash_9_then_resume_matches_uninterrupted_run(tiny_msr, tmp_path, phase):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": {"frames": 8, "crop_size": 32},
                               "model": {"stem_filters": [4, 8, 8, 8], "lstm_units": 8, "conv_filters": [8, 8, 8]},
                               "train": {"epochs": 6, "batch_size": 2, "warmup_epochs": 1,
                                         "labelled_fraction": 0.5, "supervised_stage_epochs": 4}}))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    base = [sys.executable, "-m", "kerasdance.cli"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(base + _train_args(tiny_msr, full, cfg), check=True, env=env, capture_output=True, timeout=300)

    proc = subprocess.Popen(base + _train_args(tiny_msr, killed, cfg), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # killed in the supervised stage (RUN/supervised_stage) or in the self-training that follows it
    latest = (killed / "supervised_stage" if phase == "supervised_stage" else killed) / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    subprocess.run(base + _train_args(tiny_msr, killed, cfg, "--resume"), check=True, env=env, capture_output=True,
                   timeout=300)

    from kerasdance.keras_backend import keras

    a = keras.models.load_model(full / "model.keras", safe_mode=True, compile=False).get_weights()
    b = keras.models.load_model(killed / "model.keras", safe_mode=True, compile=False).get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert json.loads((full / "metrics.json").read_text())["accuracy"] == \
        json.loads((killed / "metrics.json").read_text())["accuracy"]


def test_the_shipped_keypoint_config_is_what_the_readme_says():
    from pathlib import Path

    from kerasdance.config import RunConfig

    configs = Path(__file__).parents[1] / "configs"
    for name, epochs, mirror in (("keypoints.json", 200, False), ("keypoints_mirror.json", 300, True)):
        cfg = RunConfig.load(configs / name)
        assert (cfg.train.epochs, cfg.train.edge_cut_share, cfg.train.ohem_ranking, cfg.train.mirror_augment) == \
            (epochs, EDGE_CUT_SHARE, "class", mirror), name
        assert cfg.model == RunConfig().model and cfg.data == RunConfig().data  # the defaults otherwise
