"""Shared by the benchmark scripts: machine facts and writing one section of BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import resource
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
HEADER = """# Benchmarks

Every figure below was written by a script under `benchmarks/` (`make bench` runs them all; each section
names the command that made it). None was measured on real MSR-Action3D recordings, which the team does not
have: the synthetic sets are for tests, demos and relative comparisons, not for judging the method
(see `../shared/CALIBRATION.md` for where a plain model lands on the real recordings).
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}"]
    for mod in ("numpy", "tensorflow", "tf_keras", "ai_edge_litert"):
        if mod in sys.modules:
            versions.append(f"{mod} {getattr(sys.modules[mod], '__version__', '?')}")
    return f"{cpu}, {os.cpu_count()} cores; " + ", ".join(versions)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children) in MiB."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return self_kb / 1024.0


def write_section(name: str, body: str, command: str) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- begin:{name} -->\n{body.rstrip()}\n\n"
             f"_Command: `{command}` · {stamp} · {machine()}_\n<!-- end:{name} -->")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` with ``columns = [(key, header), ...]``; floats to 3 significant digits."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    out = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(fmt(r.get(k, "")) for k, _ in columns) + " |" for r in rows]
    return "\n".join(out)


def mean_sd(rows: list[dict], key: str, digits: int = 1) -> str:
    """``rows``' ``key`` as "mean ± sd" (population sd), or the one value."""
    v = np.array([r[key] for r in rows], float)
    return f"{v.mean():.{digits}f}" if len(v) == 1 else f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"
