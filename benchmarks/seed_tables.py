r"""Reproduces the blog post's four tables and two figures.

Protocol: MLP 784-20-10, batch 1000, 10 epochs, 10 seeds, learning rates
``logspace(1e-5, 1e-2, 10)``; plain SGD, then the rule (smoothed gradient,
``guard=False`` as in the post) every step with 1% steps, every 10 steps with
1% and every 10 steps with 10%. Run for raw 0-255 inputs and for [0, 1] inputs.

Full run (about 20 minutes on 2 CPU cores)::

  python -m benchmarks.seed_tables
"""

import numpy as np
import optax

from . import _cli
from . import _data
from . import _models
from . import _page
from . import _train

# The post's accuracy_mean column for each table, in %, for lr0s 1e-5..1e-2.
POST_ACCURACY = {
  "sgd": [21.7, 23.3, 38.8, 51.2, 63.5, 58.0, 41.4, 19.2, 18.9, 11.2],
  "every1_1pct": [73.2, 81.5, 80.0, 87.4, 87.5, 82.0, 47.8, 30.5, 12.3, 11.2],
  "every10_1pct": [22.1, 32.5, 42.2, 50.9, 68.4, 66.5, 50.4, 30.7, 12.7, 14.6],
  "every10_10pct": [69.5, 79.0, 82.8, 84.5, 84.6, 77.9, 51.5, 25.1, 14.1, 14.7],
}


def configurations() -> list[tuple[str, str, _train.Method]]:
  """The post's four configurations: (key, table title, method)."""

  def rule(lrlr, every_k):
    name = f"rule every {every_k}, {lrlr:.0%}"
    return _train.hillclimber(
      name, _train.reference_rule, lrlr=lrlr, every_k=every_k
    )

  return [
    ("sgd", "Table 1, plain SGD", _train.Method("SGD", optax.sgd)),
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


def summarize(result: _train.GridResult) -> dict:
  """One configuration's JSON: accuracy, loss and learning rate per lr0."""
  loss = result.metrics["loss"]
  finite = np.isfinite(loss)
  with np.errstate(invalid="ignore"):
    loss_mean = np.nanmean(np.where(finite, loss, np.nan), 0)
    loss_std = np.nanstd(np.where(finite, loss, np.nan), 0)
  accuracy = result.metrics["accuracy"]
  return {
    "lr0": result.lr0.tolist(),
    "accuracy_mean": accuracy.mean(0).tolist(),
    "accuracy_std": accuracy.std(0).tolist(),
    "loss_mean": loss_mean.tolist(),
    "loss_std": loss_std.tolist(),
    "diverged": (~finite).sum(0).tolist(),
    "final_lr_median": _page.nan_median(
      result.learning_rate[:, :, -1], 0
    ).tolist(),
    "peak_lr_median": _page.nan_median(
      result.learning_rate.max(-1), 0
    ).tolist(),
  }


def _loss(row, i) -> str:
  text = f"{row['loss_mean'][i]:.2f} | {row['loss_std'][i]:.2f}"
  if row["diverged"][i]:
    text += f" ({row['diverged'][i]} diverged)"
  return text


def table(key: str, row: dict) -> str:
  """One of the post's tables: lr, accuracy and loss, mean and std."""
  text = _page.table(
    [
      _page.Column(
        "lr" if key == "sgd" else "lr0", lambda i: f"{row['lr0'][i]:.6f}"
      ),
      _page.Column(
        "accuracy_mean", lambda i: _page.percent(row["accuracy_mean"][i])
      ),
      _page.Column(
        "accuracy_std", lambda i: _page.percent(row["accuracy_std"][i])
      ),
      _page.Column("loss_mean | loss_std", lambda i: _loss(row, i)),
    ],
    range(len(row["lr0"])),
  )
  # One cell spans two columns; the separator line says so.
  return text.replace("|---|---|---|---|", "|---|---|---|---|---|", 1)


def comparison(summary: dict, scales: list[str]) -> str:
  """Mean accuracy beside the post's, one row per lr, per configuration."""
  out = []
  for key, title, _ in configurations():
    lr0s = summary[scales[0]][key]["lr0"]
    columns = [
      _page.Column("lr0", lambda i, lr0s=lr0s: f"{lr0s[i]:.6f}"),
      _page.Column(
        "post (MNIST, raw?)",
        lambda i, key=key, lr0s=lr0s: post_accuracy(key, lr0s[i]),
      ),
      *(
        _page.Column(
          f"ours, {s} inputs",
          lambda i, s=s, key=key: _page.percent(
            summary[s][key]["accuracy_mean"][i]
          ),
        )
        for s in scales
      ),
    ]
    out.append(f"**{title.split(',', 1)[1].strip()}**\n\n")
    out.append(_page.table(columns, range(len(lr0s))) + "\n")
  return "".join(out)


SCALES = ["raw", "unit"]


def run(args) -> dict:
  if args.quick:
    data_name = args.data or "sample"
    lr0s = np.logspace(-5, -2, 4)
    grid = dict(num_seeds=args.seeds, batch_size=200, epochs=2)
  else:
    data_name = args.data or "fashion_mnist"
    lr0s = np.logspace(-5, -2, 10)
    grid = dict(num_seeds=args.seeds, batch_size=1000, epochs=10)
  summary = {"data": {}, "_grid": grid}
  # Built once, so that both scalings share the compiled programs.
  configs = configurations()
  for scale in SCALES:
    data = _data.load_flat(data_name, scale)
    summary["data"][scale] = data.label
    results = {}
    for key, _, method in configs:
      results[key] = _train.train_grid(
        method, _models.MLP, data, lr0s=lr0s, **grid
      )
      print(f"{scale} {key}", flush=True)
    summary[scale] = {key: summarize(r) for key, r in results.items()}
    figures(args.out, scale, data.label, results, configs)
  return summary


def figures(out, scale, label, results, configs) -> None:
  """Training loss and learning rate against step, one curve per lr0."""
  panels = [(m.name, results[k]) for k, _, m in configs]
  lr0s = panels[0][1].lr0
  _page.curves_figure(
    f"{out}/seed_loss_{scale}.png",
    [(n, _page.nan_median(r.train_loss, 0)) for n, r in panels],
    lr0s,
    "training loss (median of seeds)",
    f"Training loss, {label}",
  )
  _page.curves_figure(
    f"{out}/seed_lr_{scale}.png",
    [(n, _page.nan_median(r.learning_rate, 0)) for n, r in panels[1:]],
    lr0s,
    "learning rate (median of seeds)",
    f"Learning rate, {label}",
  )


def page(summary: dict, out: str) -> str:
  del out  # The figures are drawn by the run: they need every step.
  grid = summary["_grid"]
  lr0s = summary[SCALES[0]]["sgd"]["lr0"]
  md = [
    _page.header(
      "Seed tables: the post's four tables, re-run",
      "seed_tables",
      f"MLP 784-20-10, batch {grid['batch_size']}, {grid['epochs']} epochs,"
      f" {grid['num_seeds']} seeds, {len(lr0s)} learning rates from"
      f" {lr0s[0]:g} to {lr0s[-1]:g}. Accuracy and loss are on the test set"
      " after the last step; `loss` averages the seeds whose loss is finite.",
    ),
    "## Mean accuracy beside the post's\n\n",
    comparison(summary, SCALES),
  ]
  for scale in SCALES:
    md.append(f"## {summary['data'][scale]}\n\n")
    for key, title, _ in configurations():
      md.append(f"### {title}\n\n{table(key, summary[scale][key])}\n")
    md.append(
      f"![training loss](seed_loss_{scale}.png)\n\n"
      f"![learning rate](seed_lr_{scale}.png)\n\n"
    )
  return "".join(md)


def _arguments(parser) -> None:
  parser.add_argument(
    "--data",
    default=None,
    help="fashion_mnist (default), mnist (TFDS) or sample",
  )


EXPERIMENT = _cli.Experiment(
  "seed_tables", __doc__, run, page, seeds=(10, 2), arguments=_arguments
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
