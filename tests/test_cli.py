import json

import pytest
from click.testing import CliRunner

from kerasdance import __version__
from kerasdance.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_version_and_help(runner):
    res = runner.invoke(cli, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    res = runner.invoke(cli, ["-h"])
    assert res.exit_code == 0 and "kerasdance train" in res.output
    for cmd in (["train", "-h"], ["evaluate", "-h"], ["export", "-h"], ["synth", "-h"], ["data", "inspect", "-h"]):
        res = runner.invoke(cli, cmd)
        assert res.exit_code == 0, cmd
        assert "Usage:" in res.output


def test_model_summary_prints_params_and_flops(runner):
    res = runner.invoke(cli, ["model", "summary", "--classes", "11"])
    assert res.exit_code == 0, res.output
    assert "parameters:" in res.output and "FLOPs per window" in res.output


def test_evaluate_refuses_a_folder_that_is_not_a_run(runner, tmp_path):
    res = runner.invoke(cli, ["evaluate", str(tmp_path)])
    assert res.exit_code == 1
    assert "has no model.keras" in res.output and "Traceback" not in res.output


def test_train_refuses_an_empty_data_folder(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "Error:" in res.output and "Traceback" not in res.output


def test_bad_config_file_is_one_line(runner, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"train": {"epochz": 3}}))
    (tmp_path / "d").mkdir()
    res = runner.invoke(cli, ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--config",
                              str(cfg)])
    assert res.exit_code == 1 and "epochz" in res.output


def test_flip_test_is_refused_for_skeleton_runs_and_warned_about_without_mirror(caplog):
    from kerasdance.config import RunConfig
    from kerasdance.errors import KerasdanceError
    from kerasdance.predict import check_flip_test

    with pytest.raises(KerasdanceError, match="predicts no key-points: the flip test does not apply"):
        check_flip_test(RunConfig().replace(model={"input_mode": "skeleton"}), "runs/s")
    check_flip_test(RunConfig().replace(train={"mirror_augment": True}), "runs/m")
    assert "--mirror" not in caplog.text
    check_flip_test(RunConfig(), "runs/d")
    assert "runs/d was not trained with --mirror" in caplog.text


def test_data_inspect_exits_non_zero_when_a_file_fails_to_load(runner, tiny_msr, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_msr, data)
    res = runner.invoke(cli, ["data", "inspect", str(data)])
    assert res.exit_code == 0, res.output
    assert "problems   none" in res.output
    victim = sorted(data.rglob("*_sdepth.bin"))[0]
    victim.write_bytes(victim.read_bytes()[:5000])  # the head of a recording: a truncated copy
    res = runner.invoke(cli, ["data", "inspect", str(data), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 1, res.output
    assert "dataset " in res.output  # the summary is still printed, then the error
    total = json.loads((tmp_path / "s.json").read_text())["num_sequences"]
    assert f"1 of {total} sequences failed to load" in res.output
    assert victim.name.replace("_sdepth.bin", "") in res.output and "Traceback" not in res.output
