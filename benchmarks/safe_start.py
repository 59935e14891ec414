r"""Safe from the first step: a ReLU MLP trained from lr0 = 1e-6 .. 1e2.

A far too large starting learning rate can kill most ReLU units in the first
steps, before the guard reacts. This compares hill climbing with the
first-update scale search (the default) against the same optimizer without it
(``scale_search=None``, the former start), on sklearn's bundled 8x8 digits
(1437 train / 360 test, inputs in [0, 1]), a 64-64-10 ReLU MLP, batch 64,
3 epochs (66 steps), for both ``hillclimb`` and ``hillclimb_adam``.

Reported per lr0, over seeds: test accuracy, the share of hidden units dead
on the whole training set, and the worst ratio of a batch's loss after an
accepted step to before it.

  python -m benchmarks.safe_start
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _models
from . import _page
from . import _train

LR0S = tuple(10.0**k for k in range(-6, 3))
init, loss, metrics = (
  _models.digits_init,
  _models.digits_loss,
  _models.digits_metrics,
)


def train(opt, seed, epochs=3, batch=64):
  """Trains the MLP; returns (test accuracy, dead share, worst loss ratio)."""
  data = _data.digits()
  x, y = data.x_train, data.y_train
  params = init(jax.random.key(seed))
  steps = len(y) // batch
  order = jnp.concatenate(
    [
      jax.random.permutation(k, len(y))[: steps * batch]
      for k in jax.random.split(jax.random.key(seed), epochs)
    ]
  ).reshape(-1, batch)

  def step(carry, idx):
    params, state = carry
    bx, by = x[idx], y[idx]
    value, grads = jax.value_and_grad(loss)(params, bx, by)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value, x=bx, y=by
    )
    params = optax.apply_updates(params, updates)
    return (params, state), loss(params, bx, by) / value

  (params, _), growth = jax.jit(lambda c, o: jax.lax.scan(step, c, o))(
    (params, opt.init(params)), order
  )
  measured = metrics(params, data)
  return (
    float(measured["accuracy"]),
    float(measured["dead"]),
    float(jnp.max(growth)),
  )


# Each optimizer with the scale search (the default), without it (the former
# start), and without it but with a guard ten times tighter (a step may raise
# its batch's loss by 10% instead of 100%): the other way to stop early damage.
def _guarded(direction):
  """``hillclimb``'s or ``hillclimb_adam``'s chain with a guard 10x tighter."""

  def make(lr0, **settings):
    tight = ohc.scale_by_hillclimb(lr0, guard_rtol=0.1, **settings)
    return optax.chain(direction(), tight)

  return make


VARIANTS = {}
for _name, _make, _direction in (
  ("hillclimb", ohc.hillclimb, lambda: optax.ema(0.9, debias=True)),
  ("hillclimb_adam", ohc.hillclimb_adam, optax.scale_by_adam),
):
  for _label, _factory, _settings in (
    (", two probes every step, scale search", _make, {}),
    (", scale_search=None", _make, {"scale_search": None}),
    (
      ", scale_search=None, guard_rtol=0.1",
      _guarded(_direction),
      {"scale_search": None},
    ),
  ):
    VARIANTS[_name + _label] = functools.partial(
      _factory, **(_train.EVERY_STEP | _settings)
    )


# The variants that start with the scale search (the default).
SEARCHED = tuple(k for k in VARIANTS if k.endswith("scale search"))


def run(args) -> dict:
  """Trains every variant from every lr0 and seed; the summary per variant."""
  lr0s, variants = LR0S, VARIANTS
  if args.quick:
    lr0s = (1e-6, 100.0)
    variants = {k: v for k, v in VARIANTS.items() if k in SEARCHED}
  if args.methods:
    variants = {k: v for k, v in variants.items() if k in args.methods}
  summary = {}
  for name, make in variants.items():
    runs = np.array(
      [[train(make(lr0), seed) for seed in range(args.seeds)] for lr0 in lr0s]
    )  # [lr0, seed, (accuracy, dead, growth)]
    summary[name] = {
      "accuracy_mean": runs[:, :, 0].mean(1).tolist(),
      "accuracy_min": runs[:, :, 0].min(1).tolist(),
      "dead_mean": runs[:, :, 1].mean(1).tolist(),
      "dead_max": runs[:, :, 1].max(1).tolist(),
      "worst_loss_ratio": runs[:, :, 2].max(1).tolist(),
    }
    print(name, flush=True)
  summary["_lr0"] = list(lr0s)
  summary["_seeds"] = args.seeds
  return summary


COLUMNS = [
  _page.Column("optimizer", lambda r: r[0]),
  _page.Column("lr0", lambda r: f"{r[1]:g}"),
  *(
    _page.Column(header, lambda r, key=key: _page.percent(r[2][key][r[3]]))
    for header, key in (
      ("accuracy (mean)", "accuracy_mean"),
      ("accuracy (worst seed)", "accuracy_min"),
      ("dead units (mean)", "dead_mean"),
      ("dead units (worst seed)", "dead_max"),
    )
  ),
  _page.Column(
    "worst loss ratio", lambda r: f"{r[2]['worst_loss_ratio'][r[3]]:.2f}"
  ),
]


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  rows = [
    (name, lr0, row, i)
    for name, row in summary.items()
    if not name.startswith("_")
    for i, lr0 in enumerate(summary["_lr0"])
  ]
  seeds = summary["_seeds"]
  return _page.header(
    "Safe from the first step: the numbers",
    "safe_start",
    "sklearn's 8x8 digits (1437 train / 360 test), a 64-64-10 ReLU MLP,"
    f" batch 64, 3 epochs, {seeds} seeds per cell. Dead units: hidden"
    " units that output 0 on every training image. Worst loss ratio: the"
    " largest ratio of a batch's loss after an accepted step to before it.",
  ) + _page.table(COLUMNS, rows)


EXPERIMENT = _cli.Experiment(
  "safe_start",
  __doc__,
  run,
  page,
  seeds=(5, 1),
  methods=tuple(VARIANTS),
  groups={"scale-search": SEARCHED},
  merge=lambda previous, new: {**previous, **new},
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
