"""kerasdance on the device: depth camera -> key-points and the current move, live.

TensorFlow-free: the model runs on the LiteRT interpreter (``ai_edge_litert``, falling back to
``tflite_runtime``) and preprocessing is ``kerasdance.data.preprocess``, the very code used in
training. Modules: ``interpreter`` (the model), ``sources`` (depth cameras and recordings),
``tracker`` (windowing, faults, the run loop), ``smoothing`` (One-Euro), ``sinks`` (JSON lines,
OSC, WebSocket) and ``cli`` (``kerasdance-edge``).
"""

from kerasdance import __version__

__all__ = ["__version__"]
