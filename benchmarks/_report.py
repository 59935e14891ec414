"""Writing benchmark results: Markdown tables, machine notes and figures."""

from collections.abc import Sequence
import datetime
import os
import platform
import shlex
import sys
import warnings

import jax
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")
from matplotlib import pyplot as plt


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
  """Returns a GitHub/MyST pipe table."""
  lines = [
    "| " + " | ".join(headers) + " |",
    "|" + "---|" * len(headers),
  ]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def command_line() -> str:
  """The command that is running, as one could type it again."""
  module = sys.modules["__main__"].__spec__
  prog = f"python -m {module.name}" if module else f"python {sys.argv[0]}"
  return " ".join([prog, *map(shlex.quote, sys.argv[1:])])


def machine_notes(seconds: float) -> str:
  """Markdown lines: command, machine, library versions, date, wall time."""
  return (
    f"- Command: `{command_line()}`\n"
    f"- Machine: `{platform.platform()}`, {os.cpu_count()} CPU cores,"
    f" Python {platform.python_version()}\n"
    f"- JAX {jax.__version__} on `{jax.devices()}`, optax {optax.__version__}\n"
    f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"
    f" UTC; wall time {seconds:.0f} s\n"
  )


def percent(x: float) -> str:
  return f"{100 * x:.1f}%"


def nan_median(x: np.ndarray, axis: int) -> np.ndarray:
  """Median ignoring non-finite values (NaN where none is finite)."""
  x = np.where(np.isfinite(x), x, np.nan)
  with warnings.catch_warnings():
    # An all-NaN slice (every seed diverged) is expected, not worth a warning.
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmedian(x, axis=axis)


def curves_figure(
  path: str,
  panels: Sequence[tuple[str, np.ndarray]],
  lr0s: np.ndarray,
  ylabel: str,
  title: str,
) -> None:
  """Saves one panel per entry, one log-scale curve per starting lr.

  Args:
    path: output PNG.
    panels: ``(panel title, values [num_lr, steps])`` pairs.
    lr0s: starting learning rates, for the legend.
    ylabel: label of the y axis (log scale).
    title: figure title.
  """
  fig, axes = plt.subplots(
    1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True
  )
  axes = np.atleast_1d(axes)
  colors = plt.cm.viridis(np.linspace(0, 1, len(lr0s)))
  for ax, (name, values) in zip(axes, panels, strict=True):
    for color, lr0, curve in zip(colors, lr0s, values, strict=True):
      ax.plot(curve, color=color, lw=1, label=f"{lr0:.1e}")
    ax.set_yscale("log")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("step")
  axes[0].set_ylabel(ylabel)
  axes[-1].legend(title="lr0", fontsize=6, title_fontsize=7, loc="best")
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
