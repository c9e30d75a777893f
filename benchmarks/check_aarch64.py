"""Which device requirements install on a 64-bit ARM board (Raspberry Pi OS, JetPack): wheels on the index.

Reads the core requirements and the device extras (``edge``, ``realsense``, ``oakd``, ``camera``) from
setup.cfg and, for each requirement, asks pip for a wheel for Linux aarch64 without installing anything::

    pip download --no-deps --only-binary=:all: --platform manylinux_2_35_aarch64 ... --platform manylinux2014_aarch64
        --python-version 3.11 -d TMP REQUIREMENT

The platform tags accepted are every manylinux tag up to glibc 2.35 (JetPack 6 / Ubuntu 22.04 has 2.35,
Raspberry Pi OS bookworm 2.36). A requirement's environment marker is evaluated for the board (pip would
evaluate it for *this* machine), so the table says both whether a wheel exists and whether the extra installs
the package there. Writes BENCHMARKS.md "Device install (aarch64)". Needs the network (the package index):
not a test. ``make check-aarch64``::

    python -m benchmarks.check_aarch64 [--python-version 3.11] [--extras edge,realsense,oakd,camera]
"""

from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from benchmarks.common import ROOT, table, write_section

#: glibc of the boards: JetPack 6 (Ubuntu 22.04) 2.35, Raspberry Pi OS bookworm 2.36; the lower one bounds the tags.
MAX_GLIBC_MINOR = 35
DEVICE_EXTRAS = ("edge", "realsense", "oakd", "camera")


def platform_tags(max_glibc_minor: int = MAX_GLIBC_MINOR) -> list[str]:
    """Every manylinux aarch64 tag a board with glibc 2.``max_glibc_minor`` accepts, newest first."""
    return [f"manylinux_2_{m}_aarch64" for m in range(max_glibc_minor, 16, -1)] + ["manylinux2014_aarch64"]


def board_environment(python_version: str = "3.11") -> dict[str, str]:
    """The PEP 508 marker environment of a Linux aarch64 board with CPython ``python_version``."""
    env = default_environment()
    env.update(platform_machine="aarch64", sys_platform="linux", platform_system="Linux", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython",
               python_version=python_version, python_full_version=f"{python_version}.0")
    return env


def read_requirements(setup_cfg: Path, extras=DEVICE_EXTRAS) -> list[tuple[str, Requirement]]:
    """``[(group, Requirement)]``: ``install_requires`` as group "core", then each extra's lines, in file order.

    Raises:
        KeyError: an extra that setup.cfg does not define.
    """
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)

    def lines(text: str) -> list[str]:
        return [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]

    out = [("core", Requirement(x)) for x in lines(cfg["options"].get("install_requires", ""))]
    defined = cfg["options.extras_require"]
    for extra in extras:
        if extra not in defined:
            raise KeyError(f"setup.cfg has no extra {extra!r} (it has: {', '.join(defined)})")
        out += [(extra, Requirement(x)) for x in lines(defined[extra])]
    return out


def check(req: Requirement, python_version: str, tags: list[str], timeout_s: float = 600.0) -> dict:
    """Ask pip for an aarch64 wheel of ``req`` (marker dropped): ``{"ok", "wheels", "size_mb", "error"}``."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    spec = f"{req.name}{extras}{req.specifier}"
    with tempfile.TemporaryDirectory(prefix="kd-aarch64-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
               python_version, "--disable-pip-version-check", "-q", "-d", tmp]
        for tag in tags:
            cmd += ["--platform", tag]
        proc = subprocess.run([*cmd, spec], capture_output=True, text=True, timeout=timeout_s)
        wheels = sorted(p.name for p in Path(tmp).glob("*.whl"))
        size_mb = sum(p.stat().st_size for p in Path(tmp).glob("*.whl")) / 2**20
    errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR")]
    return {"ok": proc.returncode == 0 and bool(wheels), "wheels": wheels, "size_mb": size_mb,
            "error": errors[0] if errors else (proc.stderr.strip().splitlines() or [""])[-1]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python-version", default="3.11", help="The board's Python (default 3.11).")
    ap.add_argument("--extras", default=",".join(DEVICE_EXTRAS), help="Extras to check, comma-separated.")
    ap.add_argument("--no-write", action="store_true", help="Print the table, leave BENCHMARKS.md alone.")
    args = ap.parse_args(argv)
    env = board_environment(args.python_version)
    tags = platform_tags()
    rows, seen = [], {}
    for group, req in read_requirements(ROOT / "setup.cfg", tuple(x for x in args.extras.split(",") if x)):
        key = str(req)
        if key not in seen:
            print(f"checking {req.name}{req.specifier} ...", file=sys.stderr, flush=True)
            seen[key] = check(req, args.python_version, tags)
            seen[key]["groups"] = []
        seen[key]["groups"].append(group)
        if len(seen[key]["groups"]) > 1:
            continue
        r = seen[key]
        installs = req.marker is None or req.marker.evaluate(env)
        rows.append({"req": f"`{req.name}{req.specifier}`", "_key": key,
                     "marker": f"`{req.marker}`" if req.marker else "",
                     "on_board": "yes" if installs else "no (marker)",
                     "wheel": "OK" if r["ok"] else "no wheel",
                     "file": ", ".join(f"`{w}`" for w in r["wheels"]) or r["error"].replace("|", "/"),
                     "size": f"{r['size_mb']:.1f}" if r["ok"] else ""})
    for row in rows:
        row["groups"] = ", ".join(seen[row.pop("_key")]["groups"])
    body = [
        "### Device install (aarch64): which requirements have wheels for a 64-bit ARM board",
        "",
        f"`pip download --no-deps --only-binary=:all:` for CPython {args.python_version} on Linux aarch64, platform "
        f"tags manylinux_2_17 ... manylinux_2_{MAX_GLIBC_MINOR} and manylinux2014 (JetPack 6 / Ubuntu 22.04 has "
        "glibc 2.35, Raspberry Pi OS bookworm 2.36), one requirement at a time from setup.cfg (core "
        "`install_requires` and the device extras). *On the board*: the requirement's environment marker "
        "evaluated for aarch64 (what `pip install \".[extra]\"` does there). Nothing was installed or run on a "
        "board: a wheel's existence is not a test of the package on the device.",
        "",
        table(rows, [("req", "requirement"), ("groups", "extras"), ("marker", "marker"),
                     ("on_board", "installed on the board"), ("wheel", "aarch64 wheel"),
                     ("file", "wheel (or pip's error)"), ("size", "MB")]),
    ]
    missing = [r["req"] for r in rows if r["wheel"] != "OK" and r["on_board"] == "yes"]
    body += ["", ("Every requirement the extras install on the board has a wheel." if not missing else
                  f"**No wheel for a requirement the extras install on the board: {', '.join(missing)}.**")]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("aarch64", text, f"python -m benchmarks.check_aarch64 --python-version {args.python_version}")


if __name__ == "__main__":
    main()
