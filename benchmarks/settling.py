r"""Where the climb settles, against the best fixed rate along its direction.

``hillclimb`` moves along the debiased moving average of the gradient,
:math:`u_t`, with the learning rate its probes choose. The same direction
with a *fixed* learning rate is ``optax.chain(optax.ema(0.9, debias=True),
optax.scale(-lr))``, so the two learning rates are in the same units and can
be compared directly. On the robustness benchmark's MLP (784-20-10,
Fashion-MNIST with pixels in [0, 1], batch 1000, 10 epochs) this reports:

* the learning rate the climb holds after 10, 50, ..., 600 steps (median over
  seeds) from lr0 = 1e-3 and lr0 = 10**-2.5, half a decade apart (the scale
  search rounds the rates it scores to quarter decades, so both start from
  the same searched rate);
* the test accuracy of the fixed rate along the same direction over a grid;
* the climb with its applied step multiplied by a constant ``horizon`` (the
  probes keep scoring the climbed rate itself), the simplest correction of a
  rate that settles too low.

  python -m benchmarks.settling
"""

import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _models
from . import _page
from . import _train

CLIMB_LR0S = (1e-3, 10**-2.5)
FIXED_LRS = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0)
HORIZONS = (2.0, 4.0)
SMOOTHING = 0.9


def _climb(horizon: float = 1.0) -> _train.Method:
  def make(lr0):
    climb = ohc.hillclimb(lr0, smoothing=SMOOTHING, **_train.EVERY_STEP)
    return climb if horizon == 1.0 else optax.chain(climb, optax.scale(horizon))

  name = "hillclimb, two probes every step"
  if horizon != 1.0:
    name = f"hillclimb, applied step x{horizon:g}"
  return _train.Method(name, make, learning_rate=_train.hillclimb_learning_rate)


CLIMBS = [_climb(), *(_climb(h) for h in HORIZONS)]
FIXED = _train.Method(
  "fixed rate along the same direction",
  lambda lr: optax.chain(optax.ema(SMOOTHING, debias=True), optax.scale(-lr)),
)


def checkpoints(steps: int) -> list[int]:
  """Steps after which the learning rate is reported (1-based)."""
  marks = [1, 10, 50, 100, 200, 400, steps]
  return sorted({s for s in marks if s <= steps})


def run(args) -> dict:
  data_name = "sample" if args.quick else "fashion_mnist"
  grid = dict(
    num_seeds=args.seeds,
    batch_size=200 if args.quick else 1000,
    epochs=2 if args.quick else 10,
  )
  data = _data.load_flat(data_name, "unit")
  steps = grid["epochs"] * (len(data.y_train) // grid["batch_size"])
  marks = checkpoints(steps)
  summary = {"steps": steps, "checkpoints": marks, "climbs": {}}
  for method in CLIMBS:
    lr0s = (1e-3,) if "applied step" in method.name else CLIMB_LR0S
    r = _train.train_grid(method, _models.MLP, data, lr0s=lr0s, **grid)
    for j, lr0 in enumerate(lr0s):
      lr = _page.nan_median(r.learning_rate[:, j], axis=0)
      accuracy = r.metrics["accuracy"][:, j]
      summary["climbs"][f"{method.name}, lr0 {lr0:.3g}"] = {
        "lr0": lr0,
        "learning_rate_at": [float(lr[s - 1]) for s in marks],
        "accuracy_mean": float(accuracy.mean()),
        "accuracy_std": float(accuracy.std()),
      }
    print(method.name, flush=True)
  r = _train.train_grid(FIXED, _models.MLP, data, lr0s=FIXED_LRS, **grid)
  accuracy = r.metrics["accuracy"]
  summary["fixed"] = {
    "learning_rate": list(FIXED_LRS),
    "accuracy_mean": accuracy.mean(0).tolist(),
    "accuracy_std": accuracy.std(0).tolist(),
  }
  best = int(np.argmax(accuracy.mean(0)))
  summary["best_fixed_learning_rate"] = FIXED_LRS[best]
  summary["_setting"] = {"data": data_name, "seeds": args.seeds, **grid}
  return summary


def _accuracy(mean: float, std: float) -> str:
  return f"{_page.percent(mean)} ± {100 * std:.1f}"


def climb_table(summary: dict) -> str:
  """The climbs' learning rate at each checkpoint, and their accuracy."""
  climbs = summary["climbs"]
  return _page.table(
    [
      _page.Column("method", lambda k: k.rsplit(", lr0", 1)[0]),
      _page.Column("lr0", lambda k: f"{climbs[k]['lr0']:.3g}"),
      *(
        _page.Column(
          f"step {s}", lambda k, i=i: f"{climbs[k]['learning_rate_at'][i]:.3g}"
        )
        for i, s in enumerate(summary["checkpoints"])
      ),
      _page.Column(
        "test accuracy",
        lambda k: _accuracy(
          climbs[k]["accuracy_mean"], climbs[k]["accuracy_std"]
        ),
      ),
    ],
    list(climbs),
  )


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  setting, climbs, fixed = (
    summary["_setting"],
    summary["climbs"],
    summary["fixed"],
  )
  lrs, mean, std = (
    fixed[k] for k in ("learning_rate", "accuracy_mean", "accuracy_std")
  )
  fixed_table = _page.markdown_table(
    ["learning rate", "test accuracy"],
    [
      [f"{lr:g}", _accuracy(m, s)]
      for lr, m, s in zip(lrs, mean, std, strict=True)
    ],
  )

  def settled(method):
    return ", ".join(
      f"{row['learning_rate_at'][-1]:.3g}"
      for name, row in climbs.items()
      if name.startswith(method.name + ", lr0")
    )

  best = int(np.argmax(mean))
  return (
    _page.header(
      "Where the climb settles: the numbers",
      "settling",
      f"Data: {setting['data']}, pixels in [0, 1], MLP 784-20-10, batch"
      f" {setting['batch_size']}, {summary['steps']} steps,"
      f" {setting['seeds']} seeds per cell. All learning rates are in the"
      f" units of the debiased moving average (decay {SMOOTHING}) that"
      " `hillclimb` moves along.",
    )
    + "## The climb's learning rate after each number of steps (median"
    " over seeds)\n\n"
    + climb_table(summary)
    + "\n## A fixed learning rate along the same direction\n\n"
    + fixed_table
    + f"\nThe best fixed rate here is {lrs[best]:g}"
    f" ({_page.percent(mean[best])}); the climb ends at {settled(CLIMBS[0])}"
    " from its two starts.\n"
  )


EXPERIMENT = _cli.Experiment("settling", __doc__, run, page, seeds=(5, 1))

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
