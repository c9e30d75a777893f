"""benchmarks/check_aarch64: the requirement parsing and the board's marker environment, offline (no pip call)."""

import pytest

from benchmarks.check_aarch64 import DEVICE_EXTRAS, ROOT, board_environment, platform_tags, read_requirements


def test_reads_core_and_extras_in_file_order(tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("""[options]
install_requires =
    numpy>=1.26
    click>=8.1

[options.extras_require]
edge =
    ai-edge-litert==2.3.*
    # a comment line
    python-osc>=1.8
realsense =
    pyrealsense2>=2.54; platform_machine == "x86_64" or platform_machine == "AMD64"
train =
    tensorflow==2.21.*
""")
    got = read_requirements(cfg, ("edge", "realsense"))
    assert [(g, r.name, str(r.specifier)) for g, r in got] == [
        ("core", "numpy", ">=1.26"), ("core", "click", ">=8.1"), ("edge", "ai-edge-litert", "==2.3.*"),
        ("edge", "python-osc", ">=1.8"), ("realsense", "pyrealsense2", ">=2.54")]
    board, here = board_environment("3.11"), {"platform_machine": "x86_64"}
    marker = got[-1][1].marker
    assert not marker.evaluate(board) and marker.evaluate(here)  # the marker is evaluated for the board
    with pytest.raises(KeyError, match="no extra 'oakd'"):
        read_requirements(cfg, ("oakd",))


def test_the_projects_device_extras():
    got = read_requirements(ROOT / "setup.cfg", DEVICE_EXTRAS)
    names = {(g, r.name) for g, r in got}
    assert {("edge", "ai-edge-litert"), ("oakd", "depthai"), ("camera", "depthai"), ("realsense", "pyrealsense2"),
            ("camera", "pyrealsense2")} <= names
    assert not any(r.name.startswith("tensorflow") for _, r in got)  # the device never installs TensorFlow
    env = board_environment()
    for _, r in got:  # on the board, pyrealsense2 (x86_64 wheels only) is left out; everything else installs
        assert (r.marker is None or r.marker.evaluate(env)) == (r.name != "pyrealsense2"), r


def test_platform_tags_cover_glibc_2_17_to_2_35():
    tags = platform_tags()
    assert tags[0] == "manylinux_2_35_aarch64" and "manylinux_2_28_aarch64" in tags
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"] and len(tags) == 20
    assert board_environment("3.12")["python_version"] == "3.12"
