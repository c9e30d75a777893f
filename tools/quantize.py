"""``python tools/quantize.py RUN_DIR [OPTIONS]``: ``kerasdance export`` with int8 and QAT unless ``--format`` is given.

Without ``--format`` it is ``kerasdance export RUN_DIR --format int8 --qat``; with it, exactly
``kerasdance export`` (e.g. ``--format float16``). A thin script over the library (``kerasdance.export``).
"""

import sys

from kerasdance.cli import export

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a in ("-h", "--help") or a.startswith("--format") for a in args):
        args = [*args, "--format", "int8", "--qat"]
    export.main(args, prog_name="python tools/quantize.py")
