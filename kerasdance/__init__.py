"""kerasdance: depth sequences of dancers -> 3-D key-points and move labels.

Importing the package is cheap and TensorFlow-free: the modules that need
TensorFlow (``models``, ``training``, ``losses``...) import it themselves, so
that the edge runtime can reuse ``skeleton``, ``camera`` and
``data.preprocess`` on a device without TensorFlow.
"""

__version__ = "0.1.0"
