"""The synthetic benchmark sets, rendered once into ``benchmarks/.data`` (ignored by git)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"
CACHE = DATA / "cache"


def synthetic_set(name: str, seed: int = 0) -> Path:
    """Path of the rendered set ``name`` (``msr20`` or ``dance11``), rendering it on first use."""
    from kerasdance.data.synthetic import write_set

    out = DATA / f"{name}-seed{seed}"
    done = out / ".complete"
    if not done.exists():
        write_set(name, out, seed=seed)
        done.write_text("ok\n")
    return out
