"""``python tools/convert.py SAVED_MODEL OUT.tflite --format int8 --calibration windows.npy``.

Converts a fixed-shape SavedModel to TFLite with builtin ops only; the same as
``python -m kerasdance.export.convert`` (``kerasdance export`` runs it in a child process).
"""

from kerasdance.export.convert import main

if __name__ == "__main__":
    raise SystemExit(main())
