"""The language-model benchmark's page (lm.md, lm.png), from lm.json."""

from collections.abc import Sequence
import os

import numpy as np

from . import _page
from ._page import plt


def _num(x: float, fmt: str = ".3f") -> str:
  return format(x, fmt) if np.isfinite(x) else "diverged"


def _seeds(runs: Sequence[dict], key: str) -> str:
  return " / ".join(_num(r[key]) for r in sorted(runs, key=lambda r: r["seed"]))


def _cells(runs: Sequence[dict]) -> list[str]:
  """Final, best, worst final/best, largest spike, settled rate over seeds."""
  collapse = max(r["final"] / r["best"] - 1 for r in runs)
  spike = max(r["max_spike"] for r in runs)
  settled = np.median([r["lr_settled"] for r in runs])
  return [
    _seeds(runs, "final"),
    _seeds(runs, "best"),
    f"{100 * collapse:+.1f}%" if np.isfinite(collapse) else "diverged",
    _num(spike, ".2f"),
    # Only the climbing methods' records hold a trajectory of their own.
    f"{settled:.2g}" if "learning_rate" in runs[0] else "-",
  ]


HEADERS = [
  "final bits/byte",
  "best bits/byte",
  "final vs best (worst seed)",
  "largest spike",
  "rate (median, last 20%)",
]


def _grid(runs: Sequence[dict]) -> dict[float, list[dict]]:
  by_lr = {}
  for r in runs:
    by_lr.setdefault(r["lr0"], []).append(r)
  return by_lr


def _chosen(grid: dict[float, list[dict]]) -> float:
  """A tuned grid's rate: the one run at more seeds, else seed 0's best."""
  return min(
    grid, key=lambda lr: (-len(grid[lr]), finite(grid[lr][0]["final"]))
  )


def tuned_peak(runs: Sequence[dict]) -> float:
  """The peak that the tables mark tuned, among one method's runs."""
  return _chosen(_grid(runs))


def finite(x: float) -> float:
  """``x``, or ``inf`` where it diverged."""
  return x if np.isfinite(x) else np.inf


def _mean_final(runs: Sequence[dict]) -> float:
  return float(np.mean([finite(r["final"]) for r in runs]))


def goals_table(summary: dict) -> str:
  """Each climbing rule against the language-model goals, over its lr0s.

  The goals: from every lr0, a final loss (mean over seeds) no higher than
  ``dadapt_adamw``'s, ``prodigy``'s and ``schedule_free_adamw``'s at their
  defaults, and within 2% of the tuned AdamW-cosine; no run ending more than
  5% above its best; no spike above 1.5.
  """
  baselines = summary["groups"].get("baselines", {}).get("runs", [])
  by_method = {m: _grid([r for r in baselines if r["method"] == m])
               for m in {r["method"] for r in baselines}}  # fmt: skip
  defaults = [by_method.get(m, {}).get(0.0) for m in
              ("dadapt_adamw", "prodigy")]  # fmt: skip
  defaults.append(by_method.get("schedule_free_adamw", {}).get(2.5e-3))
  if "adamw_cosine" not in by_method or None in defaults:
    return "(The goals need every baseline's runs.)\n"
  bar = min(_mean_final(runs) for runs in defaults)
  adamw = 1.02 * _mean_final(by_method["adamw_cosine"][
    _chosen(by_method["adamw_cosine"])])  # fmt: skip
  rows = []
  groups = summary["groups"]
  runs = [r for g in ("climb", "directions")
          for r in groups.get(g, {}).get("runs", [])
          if "learning_rate" in r]  # fmt: skip
  for method in dict.fromkeys(r["method"] for r in runs):
    grid = _grid([r for r in runs if r["method"] == method])
    finals = [_mean_final(v) for v in grid.values()]
    method_runs = [r for v in grid.values() for r in v]
    rows.append([
      method,
      " / ".join(f"{lr0:g}" for lr0 in grid),
      " / ".join(_num(f) for f in finals),
      f"{sum(f <= bar for f in finals)} of {len(finals)}",
      f"{sum(f <= adamw for f in finals)} of {len(finals)}",
      *_cells(method_runs)[2:4],
    ])  # fmt: skip
  return (
    f"Bars: {bar:.3f} (the best of `dadapt_adamw`, `prodigy` and"
    f" `schedule_free_adamw` at their defaults, mean over seeds) and"
    f" {adamw:.3f} (the tuned AdamW-cosine's mean plus 2%).\n\n"
    + _page.markdown_table(
      [
        "rule",
        "lr0s",
        "final, mean over seeds",
        "at or below the defaults",
        "within 2% of AdamW-cosine",
        "final vs best (worst run)",
        "largest spike",
      ],
      rows,
    )
  )


def summary_table(
  summary: dict, groups: Sequence[str] = ("baselines", "climb")
) -> str:
  """One line per method (tuned: its chosen rate) and per climbing lr0.

  A climbing run that repeats another (the same state after its first
  update) names the lr0 of the run it repeats.
  """
  rows = []
  for group in groups:
    runs = summary["groups"].get(group, {}).get("runs", [])
    for method in dict.fromkeys(r["method"] for r in runs):
      method_runs = [r for r in runs if r["method"] == method]
      grid = _grid(method_runs)
      climbing = "learning_rate" in method_runs[0]
      if not climbing and len(grid) > 1:
        chosen = _chosen(grid)
        rows.append([method, f"{chosen:g} (tuned)", *_cells(grid[chosen])])
        continue
      for lr0, lr_runs in grid.items():
        label = f"{lr0:g}" if lr0 else "default"
        twins = sorted({f"{r['same_run_as']:g}" for r in lr_runs
                        if "same_run_as" in r})  # fmt: skip
        if twins:
          label += f" (the run of {' / '.join(twins)})"
        rows.append([method, label, *_cells(lr_runs)])
  return _page.markdown_table(["method", "lr (peak / lr0)", *HEADERS], rows)


def spread_table(summary: dict) -> str:
  """How much the starting rate matters: each method over its lr0 grid.

  The final loss is averaged over the seeds run at each lr0 (a tuned
  baseline's grid: seed 0 but at its chosen rate); the spread is the worst
  mean over the best one.
  """
  rows = []
  for group in summary["groups"].values():
    by_method = {}
    for r in group["runs"]:
      by_method.setdefault(r["method"], []).append(r)
    for method, method_runs in by_method.items():
      grid = _grid(method_runs)
      if len(grid) < 2:
        continue
      means = {lr0: _mean_final(lr_runs) for lr0, lr_runs in grid.items()}
      best, worst = min(means.values()), max(means.values())
      worst_lr0 = max(means, key=means.get)
      rows.append([
        method,
        str(len(means)),
        _num(float(np.mean(list(means.values())))),
        _num(best),
        f"{_num(worst)} ({worst_lr0:g})",
        f"{100 * (worst / best - 1):.1f}%" if np.isfinite(worst) else "-",
      ])  # fmt: skip
  return _page.markdown_table(
    ["method", "lr0s", "mean", "best", "worst (its lr0)", "spread"], rows
  )


def tuning_table(summary: dict) -> str:
  """Every grid point of the tuned baselines, seed 0."""
  rows = []
  for r in summary["groups"].get("baselines", {}).get("runs", []):
    if r["seed"] == 0 and r["lr0"] > 0:
      rows.append([r["method"], f"{r['lr0']:g}", _num(r["final"]),
                   _num(r["best"]), _num(r["max_spike"], ".2f")])  # fmt: skip
  return _page.markdown_table(
    ["method", "lr", "final", "best", "largest spike"], rows
  )


def directions_table(summary: dict) -> str:
  """Other directions, climbed and scheduled, with the tuned AdamW-cosine.

  Every run of the ``directions`` group, one line per method and rate, and
  for reference the tuned AdamW-cosine and ``hillclimb_adam, total_steps``.
  """
  groups = summary["groups"]
  runs = groups.get("directions", {}).get("runs", [])
  if not runs:
    return "No runs yet: `python -m benchmarks.lm --methods directions`.\n"
  rows = []
  baselines = _grid(
    [r for r in _runs(summary, "baselines") if r["method"] == "adamw_cosine"]
  )
  if baselines:
    chosen = _chosen(baselines)
    reference = [("adamw_cosine", f"{chosen:g} (tuned)", baselines[chosen])]
  else:
    reference = []
  climb = _grid(_runs(summary, "climb", "hillclimb_adam, total_steps"))
  reference += [("hillclimb_adam, total_steps", f"{lr0:g}", lr_runs)
                for lr0, lr_runs in climb.items()]  # fmt: skip
  for method in dict.fromkeys(r["method"] for r in runs):
    grid = _grid([r for r in runs if r["method"] == method])
    reference += [(method, f"{lr0:g}", lr_runs)
                  for lr0, lr_runs in grid.items()]  # fmt: skip
  for method, label, lr_runs in reference:
    rows.append([method, label, _num(_mean_final(lr_runs)), *_cells(lr_runs)])
  return _page.markdown_table(
    ["method", "lr (peak / lr0)", "final, mean over seeds", *HEADERS], rows
  )


def runs(summary: dict) -> str:
  lines = [f"- Data: {summary['data']}"]
  for name, group in summary["groups"].items():
    lines.append(
      f"- Group {name}: {len(group['runs'])} runs,"
      f" {group['seconds'] / 60:.0f} min of wall time"
    )
  return "\n".join(lines) + "\n"


def page(summary: dict, out: str) -> str:
  figure(summary, os.path.join(out, "lm.png"))
  s = summary["settings"]
  c = s["config"]
  return (
    _page.header(
      "A byte-level transformer language model",
      "lm",
      f"A decoder transformer ({c['num_layers']} layers, width"
      f" {c['width']}, {c['num_heads']} heads, {c['length']}-byte context)"
      " learns to predict the next byte of Debian's fortunes, in batches of"
      f" 32 random windows of the training records, for {s['steps']} steps;"
      " the score is the loss in bits per byte on held-out records (about"
      " one in ten, chosen by the CRC-32 of the record's bytes), measured"
      f" every {s['eval_every']} steps on {s['validation_windows']} windows"
      f" ({s['validation_windows'] * c['length']} predicted bytes) spread"
      " over the held-out text. A seed fixes the initial parameters and the"
      " batches, the same for every optimizer. Cells list seeds 0 / 1. The"
      " largest spike is the largest ratio of a batch loss to the running"
      " average (decay 0.95) of the batch losses before it, after the first"
      " 5% of the steps; final vs best compares the last validation loss"
      " with the lowest measured in the run.",
    )
    + "## Baselines and hill climbing at their defaults\n\n"
    + summary_table(summary)
    + "\n## Across starting rates\n\n"
    + "Each method's final loss, averaged over the seeds at each lr0 of its"
    + " grid, and how far the worst lr0 ends above the best one.\n\n"
    + spread_table(summary)
    + "\n## Against the language-model goals\n\n"
    + goals_table(summary)
    + "\n## Tuning grids (seed 0)\n\n"
    + tuning_table(summary)
    + "\n## Other directions\n\n"
    + directions_table(summary)
    + "\n![validation curves and learning rates](lm.png)\n\n"
    + "## Runs\n\n"
    + runs(summary)
  )


def _runs(summary, group, method=None):
  runs = summary["groups"].get(group, {}).get("runs", [])
  return [r for r in runs if method is None or r["method"] == method]


def figure(summary: dict, path: str) -> None:
  """Validation curves of the best of each method, and climbed rates."""
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
  for name, r in _best_runs(summary).items():
    label = f"{name} {r['lr0']:g}" if r["lr0"] else f"{name} (default)"
    axes[0].plot(r["eval_steps"], r["validation"], lw=1, label=label)
  axes[0].set_ylim(top=min(5.0, axes[0].get_ylim()[1]))
  axes[0].set_title("validation bits/byte, seed 0, best setting", fontsize=9)
  for ax, group, method, title in (
    (
      axes[1],
      "climb",
      "hillclimb_adam, total_steps",
      "hillclimb_adam, total_steps: climbed rate",
    ),
    (
      axes[2],
      "directions",
      "hillclimb_muon, total_steps",
      "hillclimb_muon, total_steps: climbed rate",
    ),
  ):
    for r in _runs(summary, group, method):
      if r["seed"] == 0:
        steps = 10 * np.arange(1, len(r["learning_rate"]) + 1)
        label = f"{r['lr0']:g}" if method else f"{r['method']} {r['lr0']:g}"
        ax.plot(steps, r["learning_rate"], lw=1, label=label)
    ax.set_yscale("log")
    ax.set_title(f"{title}, seed 0", fontsize=9)
  for ax in axes:
    ax.set_xlabel("step")
    if ax.lines:
      ax.legend(fontsize=6)
  _page.save(fig, path)


def _best_runs(summary) -> dict[str, dict]:
  """Seed 0's run of each method at its lowest final validation loss."""
  best = {}
  for group in summary["groups"]:
    for r in _runs(summary, group):
      old = best.get(r["method"])
      if r["seed"] == 0 and (old is None or _lower(r["final"], old["final"])):
        best[r["method"]] = r
  return best


def _lower(x: float, y: float) -> bool:
  """``x < y``, where non-finite numbers are the highest."""
  return np.isfinite(x) and not x >= y
