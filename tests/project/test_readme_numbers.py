"""The numbers in README.md's results come from the committed results.

Each number the README states is recomputed here from the JSON its results
page is drawn from, and must read the same at the README's precision.
"""

import collections
import json
import pathlib
import re
import statistics

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


@pytest.fixture(scope="module")
def results():
  text = (ROOT / "README.md").read_text()
  return text[text.index("## Results") :]


def _stated(results, pattern):
  match = re.search(pattern, results, flags=re.DOTALL)
  assert match, f"README's results no longer say {pattern!r}"
  return match.groups()


def test_language_model_numbers(results):
  data = json.loads((RESULTS / "lm.json").read_text())
  finals = collections.defaultdict(list)
  for group in data["groups"].values():
    for run in group["runs"]:
      finals[run["method"], run["lr0"]].append(run["final"])
  means = {key: statistics.mean(v) for key, v in finals.items()}
  climbed = {lr0: m for (name, lr0), m in means.items()
             if name == "hillclimb_adam, total_steps"}  # fmt: skip
  worst_lr0 = max(climbed, key=climbed.get)
  best, worst, worst_again, lr0 = _stated(
    results,
    r"`hillclimb_adam` ends at ([\d.]+) to ([\d.]+) bits per byte.*?"
    r"the worst, ([\d.]+), is from lr0 =\s+(\d+(?:\.\d+)?e-?\d+)",
  )
  assert f"{min(climbed.values()):.3f}" == best
  assert f"{max(climbed.values()):.3f}" == worst == worst_again
  assert float(lr0) == pytest.approx(worst_lr0)
  tuned, prodigy, dadapt = _stated(
    results,
    r"cosine decay ends at ([\d.]+),\s+Prodigy at ([\d.]+) and "
    r"D-Adaptation at (\d+\.\d+)",
  )
  best_cosine = min(m for (n, _), m in means.items() if n == "adamw_cosine")
  assert f"{best_cosine:.3f}" == tuned
  assert f"{means['prodigy', 0.0]:.3f}" == prodigy
  assert f"{means['dadapt_adamw', 0.0]:.3f}" == dadapt


def test_robustness_numbers(results):
  data = json.loads((RESULTS / "robustness.json").read_text())

  def accuracies(name):
    return [100 * a for a in data[name]["accuracy_mean"]]

  low, high = _stated(
    results, r"`hillclimb_adam`\s+reaches ([\d.]+)% to ([\d.]+)%"
  )
  adam = accuracies("hillclimb_adam, total_steps=600")
  assert (f"{min(adam):.1f}", f"{max(adam):.1f}") == (low, high)
  low, high = _stated(
    results, r"`hillclimb` reaches\s+([\d.]+)% .*?to ([\d.]+)%"
  )
  sgd = accuracies("hillclimb, total_steps=600")
  assert (f"{min(sgd):.1f}", f"{max(sgd):.1f}") == (low, high)
  (family,) = _stated(
    results, r"best SGD-family method, at its\s+best rate, reaches ([\d.]+)%"
  )
  names = [n for n in data if not n.startswith("_")]
  sgd_family = [n for n in names if "SGD" in n or n == "schedule_free_sgd"]
  assert f"{max(max(accuracies(n)) for n in sgd_family):.1f}" == family
