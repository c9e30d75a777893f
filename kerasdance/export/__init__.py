"""Export: TFLite conversion (in a child process), quantisation-aware training and pruning, and
``export_run`` which turns a run folder into a verified ``MODEL.tflite`` + ``MODEL.tflite.json``.

* ``kerasdance.export.convert``: SavedModel -> ``.tflite`` with ``TFLITE_BUILTINS`` only (so a Flex op is an
  error), run as ``python -m kerasdance.export.convert`` so that a converter crash becomes a ``KerasdanceError``.
* ``kerasdance.export.quantize``: calibration windows, the QAT and pruning wrappers (tf-keras + tfmot) and a
  compact fine-tuning loop.
* ``kerasdance.export.verify``: the ``.tflite`` run through ``kerasdance.litert`` (what the device runs) on the
  test split next to Keras.
* ``kerasdance.export.exporter``: the whole export of a run, its sidecar and its verification.

The submodules are imported where they are used (the child converter needs only ``convert``).
"""
