r"""Robustness to the starting learning rate, checked on Flax's MNIST CNN.

The smaller check beside ``robustness.py``: Flax's MNIST CNN, 3 epochs,
batch 128, one seed, on a subset of Fashion-MNIST's training set
(``--train``; all 10000 test images). Hill climbing (its defaults, the former
defaults: fixed 1% step, ties lower lr, no scale search) against SGD with
momentum 0.9, at lr0 = 1e-4, 1e-2 and 1. The CNN trains in a Python loop of
jitted steps: on XLA:CPU its step ran 45 times slower inside ``lax.scan``.

  python -m benchmarks.robustness_cnn
"""

import functools

import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _models
from . import _page
from . import _train

LR0S = (1e-4, 1e-2, 1.0)


EVERY = _train.EVERY_STEP
# name: make(lr0); all but the defaults vary the two-probe rule at every step
# (the aliases' defaults before the stretch decision).
CLIMBERS = {
  "hillclimb, 1% step, ties down, no scale search": lambda lr0: optax.chain(
    optax.ema(0.9, debias=True),
    ohc.scale_by_hillclimb(
      lr0, **EVERY, lrlr_growth=1.0, tie_break="down", scale_search=None
    ),
  ),
  "hillclimb, two probes every step": functools.partial(ohc.hillclimb, **EVERY),
  "hillclimb (defaults)": ohc.hillclimb,
  # Told the run's length: 3 epochs of 156 batches (the default --train).
  "hillclimb, total_steps=468": functools.partial(
    ohc.hillclimb, total_steps=468
  ),
}
METHODS = [
  _train.Method(
    "SGD momentum 0.9",
    lambda lr: optax.sgd(lr, momentum=0.9),
    # No learning rate of its own to report.
    learning_rate=lambda state, lr0: jnp.float32(jnp.nan),
  ),
  *(_train.hillclimber(n, make) for n, make in CLIMBERS.items()),
]
NAMES = [m.name for m in METHODS]


def run(args) -> dict:
  data = _data.load_images(
    "sample" if args.quick else "fashion_mnist",
    1000 if args.quick else args.train,
  )
  epochs = 1 if args.quick else 3
  run = _page.provenance(0)
  summary = {}
  for method in METHODS:
    if args.methods and method.name not in args.methods:
      continue
    grid = dict(num_seeds=1, batch_size=128, epochs=epochs, loop="python")
    r = _train.train_grid(method, _models.CNN_TASK, data, lr0s=LR0S, **grid)
    for j, lr0 in enumerate(LR0S):
      summary[f"{method.name} @ {lr0:g}"] = {
        "accuracy": float(r.metrics["accuracy"][0, j]),
        "final_lr": float(r.learning_rate[0, j, -1]),
        "steps": r.train_loss.shape[-1],
        "run": run["command"],
        "date": run["date"],
      }
      print(method.name, lr0, summary[f"{method.name} @ {lr0:g}"], flush=True)
  summary["_data"] = data.label + ", inputs in [0, 1]"
  summary["_epochs"] = epochs
  return summary


def _run(row: dict) -> str:
  """The run that made a row (rows of the first runs do not say)."""
  return f"`{row['run']}` ({row['date']})" if "run" in row else "an earlier run"


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  keys = [
    f"{n} @ {lr0:g}"
    for n in NAMES
    for lr0 in LR0S
    if f"{n} @ {lr0:g}" in summary
  ]
  runs = list(dict.fromkeys(_run(summary[k]) for k in keys))

  table = _page.table(
    [
      _page.Column("method", lambda k: k.rsplit(" @ ", 1)[0]),
      _page.Column("lr0", lambda k: k.rsplit(" @ ", 1)[1]),
      _page.Column(
        "test accuracy", lambda k: _page.percent(summary[k]["accuracy"])
      ),
      _page.Column(
        "final lr",
        lambda k: (
          f"{summary[k]['final_lr']:.3g}"
          if np.isfinite(summary[k]["final_lr"])
          else "-"
        ),
      ),
      _page.Column("run", lambda k: str(runs.index(_run(summary[k])) + 1)),
    ],
    keys,
  )
  return (
    _page.header(
      "Robustness check on Flax's MNIST CNN: the numbers",
      "robustness_cnn",
      f"Data: {summary['_data']}. {summary['_epochs']} epochs, batch 128"
      f" ({summary[keys[0]]['steps']} steps), one seed.",
    )
    + table
    + _page.details(
      "Runs (the last column of the table)",
      "".join(f"{i}. {run}\n" for i, run in enumerate(runs, 1))
      + "\n`--merge` keeps the rows not run again.",
    )
  )


def _arguments(parser) -> None:
  parser.add_argument(
    "--train", type=int, default=20000, help="training images (default 20000)"
  )


EXPERIMENT = _cli.Experiment(
  "robustness_cnn",
  __doc__,
  run,
  page,
  methods=NAMES,
  merge=lambda previous, new: {**previous, **new},
  arguments=_arguments,
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
