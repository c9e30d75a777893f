"""Export tools: TFLite conversion (in a child process), quantisation-aware training and pruning, and
``export_run`` which turns a run folder into a verified ``MODEL.tflite`` + ``MODEL.tflite.json``.

* ``tools.convert``: SavedModel -> ``.tflite`` with ``TFLITE_BUILTINS`` only (so a Flex op is an error),
  run as ``python -m tools.convert`` so that a converter crash becomes a ``KerasdanceError``.
* ``tools.quantize``: calibration windows, the QAT and pruning wrappers (tf-keras + tfmot) and a compact
  fine-tuning loop.
* ``tools.export``: the whole export of a run, its sidecar and its verification on the test split.
"""
