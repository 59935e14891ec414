"""The language-model benchmark's summary (lm.json) and page (lm.md, lm.png)."""

import dataclasses
import json
import os
import platform

import flax
import jax
import numpy as np
import optax

from ._page import command_line  # noqa: F401  (re-exported for lm.py)
from ._page import plt


def load_summary(path: str, settings, data_label: str) -> dict:
  """The summary in ``path`` if it was made with ``settings``, else a new one.

  Groups run separately (``--group``) are merged into one summary; a summary
  made with other settings (a ``--quick`` one, say) is started afresh.
  """
  wanted = json.loads(json.dumps(dataclasses.asdict(settings)))
  if os.path.exists(path):
    with open(path) as f:
      summary = json.load(f)
    if summary.get("settings") == wanted:
      return summary
  return {
    "settings": wanted,
    "data": data_label,
    "machine": machine(),
    "groups": {},
  }


def machine() -> dict:
  """Hardware and library versions, as facts for the page."""
  return {
    "platform": platform.platform(),
    "cpus": os.cpu_count(),
    "python": platform.python_version(),
    "jax": jax.__version__,
    "devices": str(jax.devices()),
    "optax": optax.__version__,
    "flax": flax.__version__,
  }


def write_page(summary: dict, out: str) -> None:
  """Writes lm.md and lm.png in ``out`` from ``summary``."""
  from . import _lm_tables

  text = _lm_tables.page(summary)
  with open(os.path.join(out, "lm.md"), "w") as f:
    f.write(text)
  figure(summary, os.path.join(out, "lm.png"))


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
    (axes[1], "climb", "hillclimb_adam", "hillclimb_adam: climbed rate"),
    (axes[2], "candidates", None, "candidates: judged rate"),
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
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


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
