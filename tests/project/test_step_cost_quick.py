"""The step-cost benchmark's quick mode runs end to end and adds up.

Timings of a quick run on a shared machine are noise (a two-probe step has
timed at 0.8x SGD's), so no timing ordering is asserted; what costs more is
checked on the compiled programs' operation counts instead, and
``probe="auto"`` is checked to pick the sequential program on CPU.
"""

import json
import math
import pathlib
import subprocess
import sys

import _user_shell
import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ("mlp", "cnn", "transformer")
HEADLINE_KEYS = (
  "hillclimb_k1_over_sgd",
  "hillclimb_k10_over_sgd",
  "stretch_k10_over_sgd",
  "stretch_over_sgd",
  "floor_over_sgd",
  "linesearch_over_sgd",
  "vmap_over_sequential",
)


# Long (runs the step-cost benchmark on three models): the README's test command
# leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow
on_cpu_only = pytest.mark.skipif(
  jax.default_backend() != "cpu", reason="what XLA:CPU does"
)


def _run_benchmark(*args: str) -> subprocess.CompletedProcess:
  # A separate process: --quick changes jax's global configuration, and the
  # benchmark should see one device, not the eight conftest.py asks for.
  return _user_shell.run(
    [sys.executable, "-m", "benchmarks.step_cost", *args], ROOT, timeout=300
  )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
  out = tmp_path_factory.mktemp("step_cost")
  result = _run_benchmark("--quick", "--out", str(out))
  assert result.returncode == 0, result.stderr
  report = json.loads((out / "step_cost.json").read_text())
  return {"json": report, "stdout": result.stdout}


def test_reports_device_and_setting(report):
  data = report["json"]
  assert data["device"]["platform"] == jax.default_backend()
  assert data["device"]["device_kind"]
  assert data["quick"] is True
  assert data["rounds"] >= 1
  assert len(data["load_average_before"]) == 3


@pytest.mark.parametrize("model", MODELS)
def test_headline_ratios_are_positive_numbers(report, model):
  result = report["json"]["models"][model]
  for key in HEADLINE_KEYS:
    assert math.isfinite(result[key]), key
    assert result[key] > 0, key
    spread = result["ratios"][key]
    assert spread["estimate"] == result[key]
    assert spread["q1"] <= spread["median"] <= spread["q3"], key
  # Two loss evaluations on top of SGD's step are not free, and the
  # library's two-probe step does more work than SGD's too.
  flops = result["flops_per_step"]
  assert flops["floor"] > flops["sgd"]
  assert flops["hillclimb_k1"] > flops["sgd"]


@on_cpu_only
@pytest.mark.parametrize("model", MODELS)
def test_auto_mode_is_sequential(report, model):
  # On CPU the library documents that "auto" probes sequentially; the
  # benchmark finds this by matching the lowered programs, so a change in
  # either shows up here.
  assert report["json"]["models"][model]["auto_mode"] == "sequential"


@on_cpu_only
def test_auto_mode_is_the_faster_one_on_the_cnn(report):
  # vmapping a convolution over two weight sets makes a grouped convolution,
  # which XLA:CPU runs far more slowly than two plain ones (2x in the full
  # run); on the MLP and the transformer the two modes tie, within noise. A
  # quick run may call the CNN's modes a tie too; vmap decisively faster would
  # mean "auto" picks the wrong one.
  result = report["json"]["models"]["cnn"]
  assert result["faster_mode"] in ("sequential", "tie")
  assert result["auto_picks_faster"]


@pytest.mark.parametrize("model", MODELS)
def test_memory_and_line_search_counts(report, model):
  result = report["json"]["models"][model]
  for variant in ("sgd", "hillclimb_k1", "vmap", "sequential", "linesearch"):
    # A step's arguments hold the parameters, at least.
    memory = result["memory"][variant]
    assert memory["argument_bytes"] >= result["param_bytes"], variant
  # vmap keeps both candidates (and two sets of activations) alive at once.
  memory = result["memory"]
  assert memory["vmap"]["temp_bytes"] >= memory["sequential"]["temp_bytes"]
  copies = result["extra_temp_in_param_copies"]["step_vs_sgd_step"]
  assert set(copies) == {"sequential", "vmap"}
  # Optax's search evaluates the loss at least once and at most
  # max_backtracking_steps + 1 times per step.
  assert 1 <= result["linesearch_evaluations_per_step"] <= 16
  assert all(isinstance(v, bool) for v in result["targets"].values())


def test_prints_one_table_column_per_model(report):
  header = next(
    line for line in report["stdout"].splitlines() if line.startswith("| per")
  )
  assert header == "| per step | mlp | cnn | transformer |"


def test_unknown_model_is_named_in_the_error():
  result = _run_benchmark("--models", "mlp,resnet")
  assert result.returncode == 2
  assert "resnet" in result.stderr


@on_cpu_only
def test_faster_mode_and_memory_analysis_without_ynn_fusion():
  # Asks the module itself, in one process (the analysis spawns the child
  # that turns YNN fusion off).
  code = """
import json
from benchmarks import step_cost as s
print(json.dumps({
  "modes": [
    s._faster_mode({"q1": 1.1, "estimate": 1.3, "q3": 1.5}),
    s._faster_mode({"q1": 0.5, "estimate": 0.7, "q3": 0.9}),
    s._faster_mode({"q1": 0.95, "estimate": 1.02, "q3": 1.08}),
  ],
  "copies": s.update_copies_without_ynn_fusion(["mlp"], quick=True),
}))
"""
  result = subprocess.run(
    [sys.executable, "-c", code],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout)
  assert out["modes"] == ["sequential", "vmap", "tie"]
  copies = out["copies"]
  assert set(copies) == {"mlp"}
  assert set(copies["mlp"]) == {"sequential", "vmap"}
  # Two candidate trees and two sets of activations cost more than one.
  assert copies["mlp"]["vmap"] > copies["mlp"]["sequential"]
