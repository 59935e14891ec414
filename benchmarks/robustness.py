r"""Robustness to the starting learning rate (issue 4, part 3).

Metric: for each method, the width in decades of the widest run of
consecutive grid values of ``lr0`` whose mean final test accuracy is within
1 point of the best mean accuracy any method reaches on the protocol (one grid
value alone counts as 0 decades).

Protocol: the reference MLP (784-20-10, batch 1000, 10 epochs) on [0, 1]
inputs, ``lr0`` on ``logspace(-6, 0, 13)`` (half-decade steps), 3 seeds. Each
method has one knob that sets its starting step size, swept over the grid:
``learning_rate`` for SGD, Adam, schedule-free SGD, COCOB (a multiplier) and
hill climbing; the initial step estimate for Prodigy and D-Adaptation
(``estim_lr0``), DoG (``init_step=("learning_rate", lr0)``) and Mechanic
(``s_init``, on SGD with learning rate 1); Adam's learning rate under
``reduce_on_plateau``.

  python -m benchmarks.robustness                 # docs/results/
  python -m benchmarks.robustness --quick --out /tmp/robustness

With ``--cnn``, the smaller check instead: Flax's MNIST CNN, 3 epochs, batch
128, one seed, hill climbing (defaults, and the former defaults: fixed 1%
step, ties lower lr) against SGD with momentum 0.9 at lr0 = 1e-4, 1e-2 and 1,
on a subset of the training set (``--cnn-train``; all 10000 test images);
writes ``robustness_cnn.md``.
"""

import argparse
import json
import os
import time

import numpy as np
import optax
from optax import contrib

import optax_hillclimb as ohc

from . import _data
from . import _example
from . import _report
from . import _vtrain
from ._report import plt

WITHIN = 0.01  # one accuracy point
GRID_STEP_DECADES = 0.5


def _plateau_learning_rate(state, lr0):
  return lr0 * optax.tree.get(state, "scale")


def _hillclimb(name, **kwargs):
  return _vtrain.Method(
    name,
    lambda lr0: ohc.hillclimb(lr0, **kwargs),
    learning_rate=_vtrain.hillclimb_learning_rate,
  )


def _hillclimb_adam(name, **kwargs):
  return _vtrain.Method(
    name,
    lambda lr0: ohc.hillclimb_adam(lr0, **kwargs),
    learning_rate=_vtrain.hillclimb_learning_rate,
  )


# Settings are spelled out, so that the labels stay true when defaults change.
# The fixed 1% step with ties lowering lr: the reference rule's adaptation.
OLD = dict(lrlr_growth=1.0, tie_break="down")
DEFAULT_HILLCLIMB = "hillclimb (defaults: lrlr_growth=1.5, ties up)"

METHODS = [
  _vtrain.Method("SGD", optax.sgd),
  _vtrain.Method("SGD momentum 0.9", lambda lr: optax.sgd(lr, momentum=0.9)),
  _vtrain.Method("Adam", optax.adam),
  _vtrain.Method(
    "Adam + reduce_on_plateau",
    lambda lr: optax.chain(
      optax.adam(lr),
      contrib.reduce_on_plateau(factor=0.5, patience=5, accumulation_size=10),
    ),
    learning_rate=_plateau_learning_rate,
  ),
  _vtrain.Method(
    "prodigy", lambda lr: contrib.prodigy(estim_lr0=lr), knob="estim_lr0"
  ),
  _vtrain.Method(
    "dadapt_adamw",
    lambda lr: contrib.dadapt_adamw(estim_lr0=lr),
    knob="estim_lr0",
  ),
  _vtrain.Method(
    "dog",
    lambda lr: contrib.dog(init_step=("learning_rate", lr)),
    knob="init_step learning_rate",
  ),
  _vtrain.Method(
    "cocob", lambda lr: contrib.cocob(learning_rate=lr), knob="multiplier"
  ),
  _vtrain.Method(
    "mechanize(SGD)",
    lambda lr: contrib.mechanize(optax.sgd(1.0), s_init=lr),
    knob="s_init",
  ),
  _vtrain.Method(
    "schedule_free_sgd",
    lambda lr: contrib.schedule_free_sgd(learning_rate=lr),
    eval_params=contrib.schedule_free_eval_params,
  ),
  _hillclimb("hillclimb, reference rule", guard=False, **OLD),
  _hillclimb("hillclimb, 1% step, ties down (former defaults)", **OLD),
  _hillclimb(
    "hillclimb, guard_rtol=0, 1% step, ties down", guard_rtol=0, **OLD
  ),
  _hillclimb(
    "hillclimb, lrlr_growth=1.5, ties down", lrlr_growth=1.5, tie_break="down"
  ),
  _hillclimb(
    "hillclimb, lrlr_growth=1.5, max_lrlr=0.1, ties down",
    lrlr_growth=1.5,
    max_lrlr=0.1,
    tie_break="down",
  ),
  _hillclimb(
    "hillclimb, guard_rtol=0, lrlr_growth=1.5, ties down",
    guard_rtol=0.0,
    lrlr_growth=1.5,
    tie_break="down",
  ),
  _hillclimb(DEFAULT_HILLCLIMB),
  _hillclimb_adam(
    "hillclimb_adam, 1% step, ties down (former defaults)", **OLD
  ),
  _hillclimb_adam(
    "hillclimb_adam, lrlr_growth=1.5, ties down",
    lrlr_growth=1.5,
    tie_break="down",
  ),
  _hillclimb_adam(
    "hillclimb_adam, lrlr_growth=1.5, max_lrlr=0.1, ties down",
    lrlr_growth=1.5,
    max_lrlr=0.1,
    tie_break="down",
  ),
  _hillclimb_adam(
    "hillclimb_adam, guard_rtol=0, lrlr_growth=1.5, ties down",
    guard_rtol=0.0,
    lrlr_growth=1.5,
    tie_break="down",
  ),
  _hillclimb_adam("hillclimb_adam (defaults: lrlr_growth=1.5, ties up)"),
]
QUICK_METHODS = ("SGD", "prodigy", DEFAULT_HILLCLIMB)


def robust_range(
  accuracy: np.ndarray, lr0s: np.ndarray, best: float
) -> tuple[float, float, float]:
  """Widest run of consecutive lr0s within 1 point of ``best``.

  Args:
    accuracy: mean accuracy per lr0.
    lr0s: the grid, increasing.
    best: best mean accuracy of any method.

  Returns:
    ``(decades, lowest lr0, highest lr0)``; ``(0, nan, nan)`` if no lr0 is
    within 1 point.
  """
  good = accuracy >= best - WITHIN
  widest, lo, hi = 0.0, np.nan, np.nan
  start = None
  for i, ok in enumerate([*good, False]):
    if ok and start is None:
      start = i
    elif not ok and start is not None:
      width = float(np.log10(lr0s[i - 1] / lr0s[start]))
      if np.isnan(lo) or width > widest:
        widest, lo, hi = width, lr0s[start], lr0s[i - 1]
      start = None
  return widest, lo, hi


CNN_LR0S = (1e-4, 1e-2, 1.0)


def run_cnn(args) -> None:
  """The CNN check: SGD with momentum against hill climbing at three lr0s."""
  from . import _cnn

  datasets = _example.module("datasets")

  if args.quick:
    ds = datasets.load(source="sample")
    train, epochs = 1000, 1
  else:
    ds = datasets.load(
      source="idx", data_dir=_data.DEBIAN_FASHION_MNIST, name="fashion_mnist"
    )
    train, epochs = args.cnn_train, 3
  images = datasets.to_float(ds.train_images[:train])
  labels = ds.train_labels[:train]
  test_images = datasets.to_float(ds.test_images)
  label = (
    f"{ds.name} ({ds.source}), first {len(labels)} training images, all"
    f" {len(ds.test_labels)} test images, inputs in [0, 1]"
  )
  hc_lr = ohc.get_learning_rate
  methods = [
    ("SGD momentum 0.9", lambda lr: optax.sgd(lr, momentum=0.9), None),
    (
      "hillclimb, 1% step, ties down (former defaults)",
      lambda lr: ohc.hillclimb(lr, **OLD),
      hc_lr,
    ),
    (DEFAULT_HILLCLIMB, ohc.hillclimb, hc_lr),
  ]
  start = time.time()
  rows, summary = [], {}
  for name, make, lr_of in methods:
    for lr0 in CNN_LR0S:
      r = _cnn.train(
        make,
        lr0,
        images,
        labels,
        test_images,
        ds.test_labels,
        epochs=epochs,
        learning_rate=lr_of,
      )
      print(name, lr0, r, flush=True)
      summary[f"{name} @ {lr0:g}"] = r
      rows.append(
        [
          name,
          f"{lr0:g}",
          _report.percent(r["accuracy"]),
          "-" if lr_of is None else f"{r['final_lr']:.3g}",
        ]
      )
  seconds = time.time() - start
  table = _report.markdown_table(
    ["method", "lr0", "test accuracy", "final lr"], rows
  )
  with open(os.path.join(args.out, "robustness_cnn.md"), "w") as f:
    f.write(
      "# Robustness check on Flax's MNIST CNN: the numbers\n\n"
      f"Data: {label}. {epochs} epochs, batch 128"
      f" ({r['steps']} steps), one seed.\n\n"
      + _report.machine_notes(seconds)
      + "\n"
      + table
    )
  with open(os.path.join(args.out, "robustness_cnn.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(table)


def plot_accuracy(
  path: str,
  lr0s: np.ndarray,
  mean_acc: dict[str, np.ndarray],
  best: float,
  label: str,
) -> None:
  """Accuracy against lr0, one line per method; the right panel zooms in."""
  fig, axes = plt.subplots(1, 2, figsize=(14, 5.8))
  for ax, low in zip(axes, (0, 100 * best - 8), strict=True):
    for i, (name, acc) in enumerate(mean_acc.items()):
      ax.plot(
        lr0s,
        100 * acc,
        "-" if name.startswith("hillclimb") else "--",
        marker=".",
        lw=1.2,
        color=plt.cm.tab20(i % 20),
        label=name,
      )
    ax.axhline(100 * (best - WITHIN), color="k", lw=0.6, ls=":")
    ax.set(
      xscale="log",
      xlabel="lr0 (starting learning rate or its method's equivalent)",
      ylabel="final test accuracy, %, mean of seeds",
      ylim=(low, 100 * best + 1),
    )
  axes[0].set_title(f"Robustness to lr0: {label}", fontsize=9)
  axes[1].set_title("zoom; dotted: 1 point below the best", fontsize=9)
  axes[0].legend(fontsize=6.5, loc="lower left", ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def replot(out: str) -> None:
  """Redraws robustness.png from robustness.json."""
  with open(os.path.join(out, "robustness.json")) as f:
    summary = json.load(f)
  lr0s = np.array(summary.pop("_lr0"))
  best, label = summary.pop("_best"), summary.pop("_data")
  mean_acc = {k: np.array(v["accuracy_mean"]) for k, v in summary.items()}
  plot_accuracy(
    os.path.join(out, "robustness.png"), lr0s, mean_acc, best, label
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument(
    "--cnn", action="store_true", help="run the CNN check instead"
  )
  parser.add_argument(
    "--cnn-train",
    type=int,
    default=20000,
    help="training images for the CNN check",
  )
  parser.add_argument(
    "--data", default=None, help="fashion_mnist (default), mnist or sample"
  )
  parser.add_argument("--out", default="docs/results")
  parser.add_argument(
    "--replot",
    action="store_true",
    help="only redraw robustness.png from robustness.json in --out",
  )
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if args.replot:
    replot(args.out)
    return
  if args.cnn:
    run_cnn(args)
    return
  if args.quick:
    data_name = args.data or "sample"
    lr0s = np.logspace(-6, 0, 5)
    grid = dict(num_seeds=1, batch_size=200, epochs=2)
    methods = [m for m in METHODS if m.name in QUICK_METHODS]
  else:
    data_name = args.data or "fashion_mnist"
    lr0s = np.logspace(-6, 0, 13)
    grid = dict(num_seeds=3, batch_size=1000, epochs=10)
    methods = METHODS
  os.makedirs(args.out, exist_ok=True)

  start = time.time()
  data = _data.load_flat(data_name, "unit")
  results = {}
  for method in methods:
    t = time.time()
    results[method.name] = _vtrain.train_grid(method, data, lr0s=lr0s, **grid)
    acc = results[method.name].accuracy.mean(0)
    print(
      f"{method.name}: {time.time() - t:.0f} s, best {acc.max():.3f}",
      flush=True,
    )
  seconds = time.time() - start

  mean_acc = {k: r.accuracy.mean(0) for k, r in results.items()}
  best = max(float(a.max()) for a in mean_acc.values())
  rows, summary = [], {}
  for method in methods:
    acc = mean_acc[method.name]
    decades, lo, hi = robust_range(acc, lr0s, best)
    i = int(np.argmax(acc))
    rows.append(
      [
        method.name,
        f"`{method.knob}`",
        _report.percent(acc[i]),
        f"{lr0s[i]:.0e}",
        f"{decades:.1f}",
        "-" if np.isnan(lo) else f"{lo:.0e} to {hi:.0e}",
      ]
    )
    summary[method.name] = {
      "accuracy_mean": acc.tolist(),
      "accuracy_std": results[method.name].accuracy.std(0).tolist(),
      "decades": decades,
      "final_lr_median": _report.nan_median(
        results[method.name].learning_rate[:, :, -1], 0
      ).tolist(),
    }
  summary_table = _report.markdown_table(
    [
      "method",
      "knob swept as lr0",
      "best accuracy",
      "at lr0",
      "decades within 1 pt",
      "range",
    ],
    rows,
  )
  grid_table = _report.markdown_table(
    ["method", *[f"{x:.0e}" for x in lr0s]],
    [[m.name, *[f"{100 * a:.1f}" for a in mean_acc[m.name]]] for m in methods],
  )

  plot_accuracy(
    os.path.join(args.out, "robustness.png"),
    lr0s,
    {m.name: mean_acc[m.name] for m in methods},
    best,
    data.label,
  )

  with open(os.path.join(args.out, "robustness.md"), "w") as f:
    f.write(
      "# Robustness to the starting learning rate: the numbers\n\n"
      f"Data: {data.label}. Grid {grid}; best mean accuracy of any method"
      f" {_report.percent(best)}; the band is 1 point below it.\n\n"
      + _report.machine_notes(seconds)
      + "\n## Summary\n\n"
      + summary_table
      + "\n## Mean test accuracy (%) at each lr0\n\n"
      + grid_table
      + "\n![accuracy against lr0](robustness.png)\n"
    )
  summary["_best"] = best
  summary["_lr0"] = lr0s.tolist()
  summary["_data"] = data.label
  with open(os.path.join(args.out, "robustness.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(summary_table)


if __name__ == "__main__":
  main()
