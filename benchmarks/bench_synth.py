"""How long rendering the whole synthetic msr20 set takes (issue 2 target: under 2 minutes on 2 cores).

    python -m benchmarks.bench_synth
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time

from benchmarks.common import write_section


def run() -> dict:
    from kerasdance.data.synthetic import write_set

    out = tempfile.mkdtemp(prefix="kd-synth-")
    try:
        t0 = time.time()
        n = write_set("msr20", out, seed=0)
        dt = time.time() - t0
        frames = sum(1 for _ in __import__("pathlib").Path(out).glob("*_sdepth.bin"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"sequences": n, "files": frames, "seconds": dt}


def main(argv=None) -> None:
    r = run()
    body = (f"### Synthetic set rendering (issue 2)\n\nWhole msr20 set ({r['sequences']} sequences, depth + both "
            f"skeleton files, written to disk): **{r['seconds']:.0f} s** (target < 120 s).")
    write_section("synth", body, "python -m benchmarks.bench_synth")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
