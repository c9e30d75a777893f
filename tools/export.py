"""``python tools/export.py RUN_DIR [OPTIONS]``: quantise, convert and verify a run; the same as ``kerasdance export``.

A thin script over the library (``kerasdance.export.exporter.export_run``); ``--help`` lists the options.
"""

from kerasdance.cli import export

if __name__ == "__main__":
    export.main(prog_name="python tools/export.py")
