"""One worker of the two-worker test: ``python multiworker_worker.py OUT.npz`` with TF_CONFIG set."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from conftest import make_prepared  # noqa: E402

from kerasdance.config import RunConfig  # noqa: E402
from kerasdance.data import pipeline  # noqa: E402
from kerasdance.data.splits import TrainData
from kerasdance.training.trainer import Trainer, make_strategy  # noqa: E402

cfg = RunConfig().replace(
    data={"frames": 8, "crop_size": 32},
    model={"num_classes": 3, "stem_filters": (4, 4, 4, 4), "lstm_units": 8, "conv_filters": (8, 8, 8)},
    train={"epochs": 2, "batch_size": 4, "strategy": "multiworker", "labelled_fraction": 0.5},
)
data = make_prepared(8)
hidden = pipeline.hide_labels(data, np.arange(8) < 4)
out = Path(sys.argv[1])
tr = Trainer(cfg, out.parent / out.stem, TrainData(hidden, None, ["a", "b", "c"], data.labels),
             make_strategy("multiworker"))
for epoch in range(2):
    tr.run_epoch(epoch, None)
np.savez(out, *tr.model.get_weights())
