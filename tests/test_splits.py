"""Validation discipline: subject-disjoint validation, custom splits, and evaluate reading the run's own split."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerasdance.cli import cli
from kerasdance.config import RunConfig, TrainConfig
from kerasdance.data import msr
from kerasdance.data.dataset import SequenceRef
from kerasdance.data.splits import auto_val_subjects, read_split_file, run_split, split


def ref(label, subject, name):
    return SequenceRef(name, label, subject, 1, ("depth",), {})


def msr_refs(subjects=range(1, 11), actions=range(1, 21)):
    return [ref(a - 1, s, msr.format_name(a, s, 1, "")) for a in actions for s in subjects]


def subjects_of(refs):
    return {r.subject for r in refs}


# --- split ---------------------------------------------------------------------------------------------------
def test_a_runs_split_replayed_on_data_with_its_test_subjects_only():
    """A model trained with validation subject 9, replayed (kerasdance-edge eval) on recordings of the test subjects
    alone: strict=False ignores the members that data lacks; strict (training) names them."""
    refs = msr_refs(subjects=(2, 4, 6))
    with pytest.raises(ValueError, match="no subject 9 in the data"):
        split(refs, "cross-subject", msr.MSR_ACTIONS, val=(9,))
    sp = split(refs, "cross-subject", msr.MSR_ACTIONS, val=(9,), test=(2, 4), strict=False)
    assert subjects_of(sp.test) == {2, 4} and not sp.val and subjects_of(sp.train) == {6}


def test_val_subjects_are_carved_out_of_training_and_disjoint():
    refs = msr_refs()
    sp = split(refs, "cross-subject", msr.MSR_ACTIONS, val=(5, 9))
    assert subjects_of(sp.train) == {1, 3, 7} and subjects_of(sp.val) == {5, 9}
    assert subjects_of(sp.test) == {2, 4, 6, 8, 10}  # the test split is the protocol's, untouched
    assert len(sp.train) + len(sp.val) + len(sp.test) == len(refs) and sp.val_subjects == (5, 9)
    names = [{r.name for r in part} for part in (sp.train, sp.val, sp.test)]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    # under an action set too: the same subjects, the set's actions only
    sp = split(refs, "as2", msr.MSR_ACTIONS, val=(3,))
    assert subjects_of(sp.val) == {3} and len(sp.val) == 8 and subjects_of(sp.train) == {1, 5, 7, 9}


def test_auto_is_seeded_about_a_fifth_and_at_least_one():
    assert auto_val_subjects([1, 3, 5, 7, 9], 0) == auto_val_subjects([9, 7, 5, 3, 1], 0)
    assert len(auto_val_subjects([1, 3, 5, 7, 9], 0)) == 1 and len(auto_val_subjects([1, 3], 0)) == 1
    assert len(auto_val_subjects(range(1, 21), 0)) == 4
    picks = {auto_val_subjects([1, 3, 5, 7, 9], seed) for seed in range(12)}
    assert len(picks) > 1 and all(p[0] in (1, 3, 5, 7, 9) for p in picks)  # the seed decides, among training subjects
    a = split(msr_refs(), "cross-subject", msr.MSR_ACTIONS, val="auto", seed=3)
    b = split(msr_refs(), "cross-subject", msr.MSR_ACTIONS, val="auto", seed=3)
    assert a.val_subjects == b.val_subjects == auto_val_subjects([1, 3, 5, 7, 9], 3)
    assert [r.name for r in a.val] == [r.name for r in b.val] and subjects_of(a.val) == set(a.val_subjects)
    with pytest.raises(ValueError, match="at least two training subjects"):
        split(msr_refs(subjects=(1, 2)), "cross-subject", msr.MSR_ACTIONS, val="auto")


def test_custom_test_subjects_and_sequence_names():
    refs = msr_refs()
    sp = split(refs, "cross-subject", msr.MSR_ACTIONS, test=(3, 7))
    assert subjects_of(sp.test) == {3, 7} and subjects_of(sp.train) == {1, 2, 4, 5, 6, 8, 9, 10}
    sp = split(refs, "cross-subject", msr.MSR_ACTIONS, train=(1, 2), val=("a01_s03_e01",), test=(4,))
    assert subjects_of(sp.train) == {1, 2} and [r.name for r in sp.val] == ["a01_s03_e01"]
    assert subjects_of(sp.test) == {4}  # the other subjects are in no split


@pytest.mark.parametrize("kwargs, match", [
    ({"val": (2,)}, r"validation \[2\] is in the test split .*protocol's test subjects"),
    ({"test": (11,)}, r"test: no subject 11 in the data; its subjects are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"),
    ({"val": ("nope",)}, "val: no sequence named 'nope'"),
    ({"train": (1,), "test": (1,)}, "in both train and test"),
    ({"val": ("a01_s05_e01",), "train": (5,)}, "in both train and val"),
    ({"train": (2,)}, r"train lists \[2\], which the test split has too"),
    ({"val": "sometimes"}, "'auto'"),
])
def test_split_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split(msr_refs(), "cross-subject", msr.MSR_ACTIONS, **kwargs)


def test_a_named_split_without_a_sequence_is_an_error():
    refs = msr_refs(actions=(1, 4))  # action set 1 has neither action 1 nor action 4
    with pytest.raises(ValueError, match=r"the test \(3\) split has no sequence of the as1 protocol's classes"):
        split(refs, "as1", msr.MSR_ACTIONS, test=(3,))


def test_train_config_checks_and_round_trip(tmp_path):
    t = TrainConfig(val_subjects=[5, "a01_s09_e01"], test_subjects=[2], train_subjects=[1, 3])
    assert t.val_subjects == (5, "a01_s09_e01") and hash(t)
    cfg = RunConfig(train=t)
    cfg.save(tmp_path / "c.json")
    assert RunConfig.load(tmp_path / "c.json") == cfg
    assert TrainConfig(val_subjects="auto").val_subjects == "auto"
    with pytest.raises(ValueError, match="use one"):
        TrainConfig(val_subjects=(5,), validation_fraction=0.1)
    with pytest.raises(ValueError, match="in both val_subjects and test_subjects"):
        TrainConfig(val_subjects=(5,), test_subjects=(5,))
    with pytest.raises(ValueError, match='or "auto"'):
        TrainConfig(val_subjects="all")


def test_old_saved_run_without_split_fields_loads(tmp_path):
    d = RunConfig().to_dict()
    for key in ("val_subjects", "test_subjects", "train_subjects"):
        del d["train"][key]
    (tmp_path / "config.json").write_text(json.dumps(d))
    cfg = RunConfig.of_run(tmp_path)
    assert cfg.train.val_subjects == () and cfg.train.test_subjects == () and cfg.train.train_subjects == ()
    sp = run_split(msr_refs(), msr.MSR_ACTIONS, cfg.train)
    assert subjects_of(sp.train) == set(msr.CROSS_SUBJECT_TRAIN) and sp.val == []


def test_read_split_file(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [1, 3], "val": ["a01_s05_e01"], "test": [2]}))
    assert read_split_file(path) == {"train": (1, 3), "val": ("a01_s05_e01",), "test": (2,)}
    for bad, match in [({"tests": [1]}, "unknown keys"), ({"test": []}, "non-empty list"),
                       ({"test": [1.5]}, "subject id"), ({"train": [1], "test": [1]}, "in both")]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            read_split_file(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_split_file(path)


@pytest.mark.parametrize("train, n_val", [({"val_subjects": (3,)}, 3), ({"validation_fraction": 0.34}, 2)])
def test_load_split_gives_the_validation_sequences_training_held_out(tiny_msr, tmp_path, train, n_val):
    from conftest import TINY_CONFIG

    from kerasdance.data.splits import load_split, load_train_data

    cfg = RunConfig.from_dict({**TINY_CONFIG, "train": {**TINY_CONFIG["train"], **train}})
    data, test = load_train_data(tiny_msr, cfg, tmp_path)
    val, names = load_split(tiny_msr, cfg, "val", tmp_path)
    assert val.names == data.val.names and list(val.labels) == list(data.val.labels) and len(val) == n_val
    assert load_split(tiny_msr, cfg, "train", tmp_path)[0].names == data.train.names
    assert load_split(tiny_msr, cfg, "test", tmp_path)[0].names == test.names and names == data.class_names
    assert not set(val.names) & set(data.train.names) and (data.val.labels >= 0).all()
    if "val_subjects" in train:
        assert set(val.subjects) == {3} and set(data.train.subjects) == {1}
    with pytest.raises(ValueError, match="part must be"):
        load_split(tiny_msr, cfg, "dev", tmp_path)


# --- train and evaluate through the CLI (tiny_msr: 3 moves x subjects 1-4; protocol: 1, 3 train, 2, 4 test) -----
def _train(data, run: Path, cfg, *extra):
    return CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(run), "--config", str(cfg),
                                    "--cache-dir", str(run.parent / "cache"), "--epochs", "2", *extra])


def test_val_subjects_run_records_and_evaluate_reads_them(tiny_msr, tiny_config, tmp_path):
    run = tmp_path / "run"
    res = _train(tiny_msr, run, tiny_config, "--val-subjects", "auto", "--seed", "1")
    assert res.exit_code == 0, res.output
    chosen = auto_val_subjects([1, 3], 1)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["val_subjects"] == list(chosen)  # "auto" recorded as the subjects it chose
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"]["val"] == list(chosen) and metrics["split"]["protocol"] == "cross-subject"
    assert metrics["n_train"] == 3 and metrics["val"]["n"] == 3 and metrics["n_test"] == 6
    log = (run / "train_log.csv").read_text().splitlines()
    assert "val_acc" in log[0] and len(log) == 3
    val_acc = [float(row.split(",")[log[0].split(",").index("val_acc")]) for row in log[1:]]
    assert metrics["best_epoch"] == max(i + 1 for i, v in enumerate(val_acc) if v == max(val_acc))  # ties: later

    res = CliRunner().invoke(cli, ["evaluate", str(run), "--split", "val", "--json", str(tmp_path / "v.json")])
    assert res.exit_code == 0, res.output
    assert "validation sequences: 3" in res.output and (run / "confusion_val.png").exists()
    val = json.loads((tmp_path / "v.json").read_text())
    assert val["split"] == "val" and val["accuracy"] == pytest.approx(metrics["val"]["accuracy"])
    assert val["mpjpe_mm"] == pytest.approx(metrics["val"]["mpjpe_mm"], rel=1e-4)
    res = CliRunner().invoke(cli, ["evaluate", str(run), "--json", str(tmp_path / "t.json")])
    assert res.exit_code == 0 and "test sequences: 6" in res.output, res.output


def test_split_file_is_stored_and_reused_by_evaluate(tiny_msr, tiny_config, tmp_path):
    spec = tmp_path / "split.json"
    spec.write_text(json.dumps({"train": [2, 4], "val": [3], "test": [1]}))
    run = tmp_path / "run"
    res = _train(tiny_msr, run, tiny_config, "--split", str(spec))
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["train_subjects"], saved["val_subjects"], saved["test_subjects"]) == ([2, 4], [3], [1])
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["val"]["n"], metrics["n_test"]) == (6, 3, 3)
    spec.unlink()  # evaluate reads the split from the run, not the file
    res = CliRunner().invoke(cli, ["evaluate", str(run), "--json", str(tmp_path / "t.json")])
    assert res.exit_code == 0 and "test sequences: 3" in res.output, res.output
    assert json.loads((tmp_path / "t.json").read_text())["accuracy"] == pytest.approx(metrics["accuracy"])


def test_cli_split_errors(tiny_msr, tiny_config, tmp_path):
    res = _train(tiny_msr, tmp_path / "a", tiny_config, "--test-subjects", "3,9")
    assert res.exit_code == 1 and "no subject 9 in the data; its subjects are 1, 2, 3, 4" in res.output
    res = _train(tiny_msr, tmp_path / "b", tiny_config, "--val-subjects", "3", "--val-fraction", "0.2")
    assert res.exit_code == 2 and "use one" in res.output
    res = _train(tiny_msr, tmp_path / "c", tiny_config, "--val-subjects", "2")
    assert res.exit_code == 1 and "validation [2] is in the test split" in res.output
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"test": [1]}))
    res = _train(tiny_msr, tmp_path / "d", tiny_config, "--split", str(spec), "--test-subjects", "2")
    assert res.exit_code == 2 and "not with --test-subjects" in res.output
    res = _train(tiny_msr, tmp_path / "e", tiny_config, "--val-subjects", ",")
    assert res.exit_code == 2 and "comma-separated" in res.output
    for d in "abcde":
        assert not (tmp_path / d / "model.keras").exists()


def test_evaluate_val_without_a_validation_split(tiny_msr, tiny_config, tmp_path):
    run = tmp_path / "run"
    res = _train(tiny_msr, run, tiny_config, "--epochs", "1", "--test-subjects", "4")
    assert res.exit_code == 0, res.output
    assert json.loads((run / "metrics.json").read_text())["n_test"] == 3
    res = CliRunner().invoke(cli, ["evaluate", str(run), "--split", "val"])
    assert res.exit_code == 1 and "no validation split" in res.output


# --- kerasdance-edge eval: the split recorded in the model's sidecar -------------------------------------------
def test_edge_eval_replays_the_split_the_sidecar_records(tmp_path):
    import types

    import numpy as np
    from edge_fixtures import CLASS_NAMES, person_depth

    from kerasdance.camera import KINECT_V1
    from kerasdance.config import DataConfig
    from kerasdance.data.dataset import write_generic
    from kerasdance.data.types import Sequence
    from kerasdance_edge.live_eval import evaluate_live, format_live_report

    seqs = [Sequence(f"s{s}_{k}", person_depth(10), None, label=k, subject=s, episode=1)
            for s in (1, 2, 3, 4, 5) for k in range(2)]
    write_generic(tmp_path, seqs, CLASS_NAMES, KINECT_V1)
    calls = []

    def predict(x):
        calls.append(1)
        return np.zeros((8, 20, 3), np.float32), np.array([0.8, 0.1, 0.1], np.float32)

    def model(split_record):
        extra = {} if split_record is None else {"split": split_record}
        return types.SimpleNamespace(predict=predict, data_config=DataConfig(frames=8, crop_size=32),
                                     intrinsics=KINECT_V1, class_names=CLASS_NAMES, input_mode="depth", path="m",
                                     meta=types.SimpleNamespace(extra=extra))

    record = {"protocol": "cross-subject", "train": [], "val": [3], "test": [4, 5], "seed": 0}
    rep = evaluate_live(model(record), tmp_path, modes=("alone",), part="val")
    assert rep["recordings"] == 2 and rep["split"] == "val" and len(calls) == 2 * 10
    assert "cross-subject validation split" in format_live_report(rep)
    assert evaluate_live(model(record), tmp_path, modes=("alone",))["recordings"] == 4  # test: subjects 4, 5
    assert evaluate_live(model(None), tmp_path, modes=("alone",))["recordings"] == 4  # no record: 2 and 4
    with pytest.raises(ValueError, match="records no validation subjects"):
        evaluate_live(model(None), tmp_path, modes=("alone",), part="val")
