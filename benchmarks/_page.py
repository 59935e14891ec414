"""Results pages: Markdown tables, figures and where the numbers came from."""

from collections.abc import Callable, Sequence
import dataclasses
import datetime
import os
import platform
import shlex
import subprocess
import sys
from typing import Any
import warnings

import jax
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")
from matplotlib import pyplot as plt


@dataclasses.dataclass(frozen=True)
class Column:
  """A table column: its header, and how a row becomes its cell."""

  header: str
  cell: Callable[[Any], str]


def table(columns: Sequence[Column], rows: Sequence[Any]) -> str:
  """A pipe table with one line per row, cells made by ``columns``."""
  return markdown_table(
    [c.header for c in columns],
    [[c.cell(row) for c in columns] for row in rows],
  )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
  """Returns a GitHub/MyST pipe table."""
  lines = [
    "| " + " | ".join(headers) + " |",
    "|" + "---|" * len(headers),
  ]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def percent(x: float) -> str:
  return f"{100 * x:.1f}%"


def nan_median(x: np.ndarray, axis: int) -> np.ndarray:
  """Median ignoring non-finite values (NaN where none is finite)."""
  x = np.where(np.isfinite(x), x, np.nan)
  with warnings.catch_warnings():
    # An all-NaN slice (every seed diverged) is expected, not worth a warning.
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmedian(x, axis=axis)


def script_name() -> str:
  """The running experiment's name (``python -m benchmarks.<name>``)."""
  return sys.modules["__main__"].__spec__.name.rsplit(".", 1)[-1]


def command(name: str, args: Sequence[str] = ()) -> str:
  """A benchmark's command as a reader types it, from the repository root."""
  return " ".join([f"python -m benchmarks.{name}", *map(shlex.quote, args)])


def command_line(argv: Sequence[str] | None = None) -> str:
  """The running command as a reader would type it again.

  ``--out`` is left out: the page it writes is the one being read.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  kept = []
  while argv:
    arg = argv.pop(0)
    if arg == "--out":
      argv.pop(0)
    elif not arg.startswith("--out="):
      kept.append(arg)
  return command(script_name(), kept)


def provenance(seconds: float) -> dict[str, str]:
  """Where a run happened, as facts: command, hardware, versions, date."""
  device = jax.devices()[0]
  now = datetime.datetime.now(datetime.timezone.utc)
  if device.platform == "cpu":
    hardware = f"{os.cpu_count()}-core {platform.machine()} CPU"
  else:
    hardware = f"{jax.device_count()} x {device.device_kind}"
  return {
    "command": command_line(),
    "hardware": hardware,
    "software": (
      f"Python {platform.python_version()}, jax {jax.__version__},"
      f" optax {optax.__version__}"
    ),
    "date": f"{now:%Y-%m-%d %H:%M} UTC",
    "seconds": round(seconds),
  }


def details(summary: str, body: str) -> str:
  """A collapsible block: ``summary`` shows, ``body`` (Markdown) unfolds."""
  return (
    f"\n<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n"
    "</details>\n"
  )


def provenance_block(runs: Sequence[dict[str, str]]) -> str:
  """A collapsible block saying how each run behind a page was made."""
  lines = []
  for run in runs:
    when = [str(run[k]) + unit for k, unit in (("date", ""), ("seconds", " s"))
            if run.get(k) is not None]  # fmt: skip
    lines.append(
      f"- `{run['command']}`: {run['hardware']}, {run['software']}"
      + ("; " + ", ".join(when) if when else "")
    )
  return details("How these numbers were made", "\n".join(lines))


def header(title: str, name: str, text: str, args: Sequence[str] = ()) -> str:
  """A page's title, what it measures, and the command that regenerates it.

  Args:
    title: the page's title.
    name: the benchmark's name.
    text: what the page measures, and how.
    args: the arguments of the full run behind the page's numbers.
  """
  return (
    f"# {title}\n\n{text}\n\nRegenerate these numbers with"
    f" `{command(name, args)}` (add `--quick` for a small run that checks the"
    f" plumbing); redraw this page from its JSON with"
    f" `{command(name, ['--page-only'])}`.\n\n"
  )


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
  save(fig, path, dpi=110)


def save(fig, path: str, dpi: int = 100) -> None:
  """Saves and closes a figure."""
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)


def run_facts() -> dict[str, Any]:
  """The device, the checkout and the versions a measurement ran with."""
  device = jax.devices()[0]
  return {
    "device": {
      "platform": device.platform,
      "device_kind": device.device_kind,
      "num_devices": jax.device_count(),
      "cpu_count": os.cpu_count(),
      "machine": platform.machine(),
    },
    "git": git_version(),
    "jax_version": jax.__version__,
    "optax_version": optax.__version__,
  }


def git_version() -> str:
  """The checkout's commit, with ``-dirty`` if files differ from it."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    out = subprocess.run(
      ["git", "describe", "--always", "--dirty"],
      cwd=root,
      capture_output=True,
      text=True,
      check=True,
      timeout=30,
    )
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return out.stdout.strip()
