"""The one Keras kerasdance uses: tf_keras (the Keras 2 API).

tensorflow-model-optimization (QAT, pruning) only accepts tf_keras models and flips
``TF_USE_LEGACY_KERAS`` for the whole process when imported, and tf_keras' LSTM exports
as the fused TFLite ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (see ../shared/DEPENDENCIES.md), so
the package decides once, here, and every module imports ``keras`` from this module.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
