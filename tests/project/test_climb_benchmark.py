"""benchmarks/climb.py --quick runs end to end, as from a user's shell."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)

pytest.importorskip("matplotlib")
pytest.importorskip("mlxtend")


# Long (runs the climb benchmark's quick mode): the README's test command leaves
# it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def test_climb_benchmark_quick(tmp_path):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)  # one CPU device, not conftest.py's eight
  subprocess.run(
    [sys.executable, "-m", "benchmarks.climb", "--quick", "--out", tmp_path],
    cwd=REPO,
    env=env,
    check=True,
    capture_output=True,
    text=True,
  )
  with open(tmp_path / "climb_sgd.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  page = (tmp_path / "climb.md").read_text()
  assert "`python -m benchmarks.climb --quick`" in page
  summary = json.loads((tmp_path / "climb.json").read_text())
  methods = summary["methods"]
  both = "climb SGD lr+momentum, cycle, momentum0=0.9"
  fixed = "climb SGD lr only, momentum=0.9"
  assert {both, fixed, "SGD momentum 0.9"} <= set(methods)
  for name, result in methods.items():
    acc = np.array(result["accuracy_mean"])
    assert np.all((acc >= 0) & (acc <= 1)), name
  # The climbed momentum stayed within its default bounds; the fixed one did
  # not move.
  final = np.array(methods[both]["final_hyperparams_median"])
  assert np.all((final[:, 1] >= 0) & (final[:, 1] <= 0.999 + 1e-6))
  np.testing.assert_allclose(
    np.array(methods[fixed]["final_hyperparams_median"])[:, 1], 0.9, rtol=1e-6
  )
  (goal,) = summary["goals"]
  shortfall = np.array(methods[fixed]["accuracy_mean"]) - np.array(
    methods[both]["accuracy_mean"]
  )
  np.testing.assert_allclose(goal["shortfall_by_lr0"], shortfall, atol=1e-6)
  assert goal["met"] == bool(np.all(shortfall <= 0.01 + 1e-9))
  cost = summary["cost"]["mlp"]
  reference = cost["hillclimb (two probes, every step)"]
  assert reference["over_hillclimb"]["median"] == 1
  for name in ("climb SGD lr+momentum, cycle", "climb SGD lr+momentum, all"):
    assert cost[name]["ms_per_step_median"] > 0
