"""The numbers in README.md's results come from the committed results.

Each number the README states, each of docs/directions.md's summary table
and of its rerun on a second machine, is recomputed here from the JSON it
comes from, and must read the same at the stated precision.
"""

import collections
import json
import pathlib
import re
import statistics

import pytest

from benchmarks import lm

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


@pytest.fixture(scope="module")
def results():
  text = (ROOT / "README.md").read_text()
  return text[text.index("## Results") :]


def _stated(text, pattern):
  """The groups of ``pattern`` in ``text`` (README's results, a docs page)."""
  match = re.search(pattern, text, flags=re.DOTALL)
  assert match, f"the text no longer says {pattern!r}"
  return match.groups()


def _means(runs) -> dict[tuple[str, float], float]:
  """The final loss of each (method, lr0), averaged over the seeds."""
  finals = collections.defaultdict(list)
  for run in runs:
    finals[run["method"], run["lr0"]].append(run["final"])
  return {key: statistics.mean(v) for key, v in finals.items()}


def _only_value(means, method) -> float:
  """The one mean every lr0 of ``method`` shares (a spread of zero)."""
  values = {round(m, 6) for (name, _), m in means.items() if name == method}
  assert len(values) == 1, (method, values)
  return values.pop()


def _best(means, method) -> float:
  """The lowest mean over the lr0 of ``method``: a tuned method's best peak."""
  return min(m for (name, _), m in means.items() if name == method)


def test_language_model_numbers(results):
  data = json.loads((RESULTS / "lm.json").read_text())
  means = _means(r for g in data["groups"].values() for r in g["runs"])
  climbed, spread = _stated(
    results,
    r"`hillclimb_adam` with `total_steps` ends at ([\d.]+) bits per\s+"
    r"byte from every starting rate, a spread of ([\d.]+)%",
  )
  assert f"{_only_value(means, 'hillclimb_adam, total_steps'):.3f}" == climbed
  assert spread == "0.0"
  tuned, prodigy, dadapt = _stated(
    results,
    r"cosine decay ends at ([\d.]+),\s+Prodigy at ([\d.]+) and\s+"
    r"D-Adaptation at\s+(\d+\.\d+)",
  )
  assert f"{_best(means, 'adamw_cosine'):.3f}" == tuned
  assert f"{means['prodigy', 0.0]:.3f}" == prodigy
  assert f"{means['dadapt_adamw', 0.0]:.3f}" == dadapt
  (anytime,) = _stated(
    results, r"Without `total_steps`, `hillclimb_adam` ends at ([\d.]+)"
  )
  assert f"{_only_value(means, 'hillclimb_adam'):.3f}" == anytime
  muon, muon_cosine = _stated(
    results,
    r"`hillclimb_muon` ends at ([\d.]+) from every starting rate, below"
    r"\s+Muon\s+at its tuned peak under a cosine \(([\d.]+)\)",
  )
  assert f"{_only_value(means, 'hillclimb_muon, total_steps'):.3f}" == muon
  assert f"{_best(means, 'muon_cosine'):.3f}" == muon_cosine


def test_longer_and_larger_language_model_numbers(results):
  data = json.loads((RESULTS / "lm_scale.json").read_text())

  def means(scale):
    groups = data["scales"][scale]["groups"].values()
    return _means(r for g in groups for r in g["runs"])

  large, long = means("large"), means("long")
  stated = _stated(
    results,
    r"`hillclimb_adam` with `total_steps` ends at ([\d.]+) against the\s+"
    r"tuned AdamW-cosine's ([\d.]+)\..*?small model ends at ([\d.]+) against"
    r"\s+the tuned AdamW-cosine's ([\d.]+), and\s+without `total_steps` at"
    r"\s+([\d.]+) against Prodigy's ([\d.]+):.*?`hillclimb_muon` ([\d.]+)"
    r"\s+against\s+Muon-cosine's ([\d.]+) over 4000 steps.*?, and"
    r"\s+([\d.]+) against ([\d.]+) on the\s+larger model[.;]",
  )
  computed = (
    _only_value(large, "hillclimb_adam, total_steps"),
    _best(large, "adamw_cosine"),
    _only_value(long, "hillclimb_adam, total_steps"),
    _best(long, "adamw_cosine"),
    _only_value(long, "hillclimb_adam"),
    long["prodigy", 0.0],
    _only_value(long, "hillclimb_muon, total_steps"),
    _best(long, "muon_cosine"),
    _only_value(large, "hillclimb_muon, total_steps"),
    _best(large, "muon_cosine"),
  )
  assert tuple(f"{x:.3f}" for x in computed) == stated
  stated = _stated(
    results,
    r"AdEMAMix's direction \(seeds 0 and 1\), ([\d.]+) against"
    r"\s+AdEMAMix-cosine's\s+([\d.]+) over 4000 steps and ([\d.]+) against"
    r"\s+([\d.]+) on the larger model; over\s+Lion's, ([\d.]+) against"
    r"\s+([\d.]+) and ([\d.]+) against ([\d.]+)",
  )
  computed = (
    _only_value(long, "ademamix, climbed"),
    _best(long, "ademamix_cosine"),
    _only_value(large, "ademamix, climbed"),
    _best(large, "ademamix_cosine"),
    _only_value(long, "lion, climbed, center=1/8"),
    _best(long, "lion_cosine"),
    _only_value(large, "lion, climbed, center=1/8"),
    _best(large, "lion_cosine"),
  )
  assert tuple(f"{x:.3f}" for x in computed) == stated


def test_climbed_muon_rate_follows_the_tuned_cosine(results):
  # "from lr0 1e-6 its rate follows the tuned cosine's, within a factor of 2
  # from step A to B" (the longer run, every seed, every 500 steps).
  factor, first, last = _stated(
    results,
    r"from lr0\s+1e-6 its rate follows the tuned cosine's,\s+within\s+a"
    r"\s+factor\s+of ([\d.]+)\s+from step (\d+) to (\d+)",
  )
  entry = json.loads((RESULTS / "lm_scale.json").read_text())["scales"]["long"]
  runs = [r for g in entry["groups"].values() for r in g["runs"]]
  finals = collections.defaultdict(list)
  for r in runs:
    if r["method"] == "muon_cosine":
      finals[r["lr0"]].append(r["final"])
  peak = min(finals, key=lambda lr: statistics.mean(finals[lr]))
  cosine = lm.warmup_cosine(peak, entry["settings"]["steps"])
  climbs = [
    r["learning_rate"]
    for r in runs
    if r["method"] == "hillclimb_muon, total_steps" and r["lr0"] == 1e-6
  ]
  assert len(climbs) == len(finals[peak])  # every seed of the cosine's
  for t in range(int(first), int(last) + 1, 500):
    tuned = float(cosine(t - 1))
    for rates in climbs:
      ratio = rates[t // 10 - 1] / tuned
      assert 1 / float(factor) < ratio < float(factor), (t, ratio)


def test_robustness_numbers(results):
  data = json.loads((RESULTS / "robustness.json").read_text())

  def accuracies(name):
    return [100 * a for a in data[name]["accuracy_mean"]]

  low, high = _stated(
    results, r"`hillclimb_adam`\s+reaches ([\d.]+)% to ([\d.]+)%"
  )
  adam = accuracies("hillclimb_adam, total_steps=600")
  assert (f"{min(adam):.1f}", f"{max(adam):.1f}") == (low, high)
  (every,) = _stated(
    results, r"`hillclimb`\s+reaches ([\d.]+)% from every starting rate"
  )
  sgd = accuracies("hillclimb, total_steps=600")
  assert {f"{a:.1f}" for a in sgd} == {every}
  muon, muon_baseline = _stated(
    results,
    r"`hillclimb_muon`\s+reaches ([\d.]+)% from every starting rate, the best"
    r" of the methods tried\s+\(Muon at its best rate: ([\d.]+)%\)",
  )
  climbed = accuracies("hillclimb_muon, total_steps=600")
  assert {f"{a:.1f}" for a in climbed} == {muon}
  assert f"{max(accuracies('Muon')):.1f}" == muon_baseline
  best_of_all = max(max(accuracies(n)) for n in data if not n.startswith("_"))
  assert f"{best_of_all:.1f}" == muon
  (spread,) = _stated(results, r"the spread is\s+([\d.]+) points for both")
  spreads = [
    data["_mantissas"]["methods"][name]["spread"]
    for name in (
      "hillclimb, total_steps=600",
      "hillclimb_adam, total_steps=600",
    )
  ]
  assert {f"{100 * x:.2f}" for x in spreads} == {spread}
  (family,) = _stated(
    results, r"best SGD-family method,\s+at its best rate, reaches ([\d.]+)%"
  )
  names = [n for n in data if not n.startswith("_")]
  sgd_family = [n for n in names if "SGD" in n or n == "schedule_free_sgd"]
  assert f"{max(max(accuracies(n)) for n in sgd_family):.1f}" == family


# docs/directions.md's summary: each row's climb and the tuned schedule of
# its direction, the schedule at its best peak by the mean over the seeds.
DIRECTION_ROWS = {
  "Adam (`hillclimb_adam`)": ("hillclimb_adam, total_steps", "adamw_cosine"),
  "Muon (`hillclimb_muon`)": ("hillclimb_muon, total_steps", "muon_cosine"),
  "Lion, `center=1/8`": ("lion, climbed, center=1/8", "lion_cosine"),
  "AdEMAMix": ("ademamix, climbed", "ademamix_cosine"),
}


def test_directions_summary_table():
  lm_runs = json.loads((RESULTS / "lm.json").read_text())["groups"]
  scales = json.loads((RESULTS / "lm_scale.json").read_text())["scales"]
  columns = [
    [r for g in lm_runs.values() for r in g["runs"]],
    *([r for g in scales[s]["groups"].values() for r in g["runs"]]
      for s in ("long", "large")),
  ]  # fmt: skip
  text = (ROOT / "docs" / "directions.md").read_text()
  for label, (climb, schedule) in DIRECTION_ROWS.items():
    row = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", text, re.M)
    assert row, f"docs/directions.md has no summary row {label!r}"
    cells = [c.strip() for c in row.group(1).split("|")]
    assert len(cells) == len(columns), (label, cells)
    for cell, runs in zip(cells, columns, strict=True):
      means = _means(r for r in runs if r["seed"] in (0, 1))
      climbed = _only_value(means, climb)
      tuned = _best(means, schedule)
      change = 100 * (climbed / tuned - 1)
      assert cell == f"{climbed:.3f} vs {tuned:.3f} ({change:+.1f}%)", label


def test_muon_longer_run_on_a_second_machine():
  """docs/directions.md's rerun: same decisions, other bits, level means."""

  def runs(name):
    data = json.loads((RESULTS / name).read_text())
    groups = data["scales"]["long"]["groups"].values()
    return {
      (r["method"], r["lr0"], r["seed"]): r
      for g in groups
      for r in g["runs"]
      if "same_run_as" not in r and r["seed"] in (0, 1)
    }

  first, second = runs("lm_scale.json"), runs("lm_scale_second_machine.json")
  climb = "hillclimb_muon, total_steps"
  for seed in (0, 1):
    # The same decisions: the climbed rate equal at every recorded step.
    rates = [r[climb, 1e-6, seed]["learning_rate"] for r in (first, second)]
    assert rates[0] == rates[1], seed
  moved = {k: abs(r["final"] - first[k]["final"]) for k, r in second.items()}
  most = max(moved, key=moved.get)
  assert most == ("muon_cosine", 0.02, 0)  # "the cosine at 2e-2 on seed 0"
  means, before = _means(second.values()), _means(first.values())
  text = " ".join((ROOT / "docs" / "directions.md").read_text().split())
  stated = _stated(
    text,
    r"ended at ([\d.]+) / ([\d.]+) \(mean ([\d.]+)\) against Muon-cosine's"
    r" ([\d.]+) / ([\d.]+) \(mean ([\d.]+)\) at 2e-2 and ([\d.]+) / ([\d.]+)"
    r" at 1e-2: level to the third decimal \(([\d.]+) behind\)\..*?"
    r"single runs moved by up to ([\d.]+) bits per byte.*?more than the"
    r" ([\d.]+) by which the climb trailed on the first\.",
  )
  computed = (
    *(f"{second[climb, 1e-6, s]['final']:.3f}" for s in (0, 1)),
    f"{means[climb, 1e-6]:.3f}",
    *(f"{second['muon_cosine', 0.02, s]['final']:.3f}" for s in (0, 1)),
    f"{means['muon_cosine', 0.02]:.3f}",
    *(f"{second['muon_cosine', 0.01, s]['final']:.3f}" for s in (0, 1)),
    f"{means[climb, 1e-6] - means['muon_cosine', 0.02]:.4f}",
    f"{moved[most]:.4f}",
    f"{before[climb, 1e-6] - before['muon_cosine', 0.02]:.3f}",
  )
  assert computed == stated
  # The results index states the same bound for every page.
  index = " ".join((RESULTS / "index.md").read_text().split())
  relative = 100 * moved[most] / first[most]["final"]
  assert f"up to {moved[most]:.4f} bits per byte ({relative:.2f}%)" in index
