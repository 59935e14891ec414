"""``benchmarks/accelerator.sh --quick`` runs end to end, here on CPU.

The script is meant for a machine with a GPU; its quick mode checks, where
there is none, that both parts run, that it says which device it ran on, and
that what it writes is there and adds up. No timing is asserted.
"""

import json
import pathlib
import subprocess

import _user_shell
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "accelerator.sh"
PROGRAMS = ("forward", "probe_vmap", "probe_sequential", "step_sgd",
            "step_vmap", "step_sequential")  # fmt: skip
# The quick run's MLP, 784-20-10: two Dense layers.
MLP_LAYERS = 2


def _run(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  return _user_shell.run(["bash", str(SCRIPT), *args], cwd, timeout=240)


def _report(out: pathlib.Path, name: str) -> dict:
  """A JSON report of the quick run, with its common fields checked."""
  report = json.loads((out / f"{name}.json").read_text())
  assert report["device"]["platform"] == "cpu"
  assert report["quick"] is True
  assert set(report["models"]) == {"mlp"}
  return report


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  # From another directory, with a relative OUT_DIR: the script resolves it
  # before it moves to the checkout.
  cwd = tmp_path_factory.mktemp("accelerator")
  result = _run("out", "--quick", cwd=cwd)
  assert result.returncode == 0, result.stdout + result.stderr
  return result, cwd / "out"


def test_says_which_device_it_ran_on(run):
  result, out = run
  assert result.stdout.startswith("device: cpu (")
  assert (out / "device.txt").read_text().startswith("device: cpu (")


def test_kernel_counts_are_written_and_add_up(run):
  _, out = run
  report = _report(out, "kernel_counts")
  programs = report["models"]["mlp"]["programs"]
  assert set(programs) == set(PROGRAMS)
  for name, counts in programs.items():
    assert counts["launches"] >= counts["matmuls"] > 0, name
    assert sum(counts["by_kind"].values()) == counts["launches"], name
    assert (out / "hlo" / f"mlp_{name}.hlo.txt").stat().st_size > 1000, name
  assert programs["forward"]["matmuls"] == MLP_LAYERS
  # vmap: one product per layer for both candidates; sequential: a loop run
  # twice, one product per layer and candidate.
  assert programs["probe_vmap"]["matmuls"] == MLP_LAYERS
  assert programs["probe_vmap"]["loops"] == []
  assert programs["probe_sequential"]["matmuls"] == 2 * MLP_LAYERS
  assert programs["probe_sequential"]["loops"] == [2]
  for mode in ("vmap", "sequential"):
    # A step is SGD's step and a probe step: its products are both of theirs.
    assert programs[f"step_{mode}"]["matmuls"] == (
      programs["step_sgd"]["matmuls"] + programs[f"probe_{mode}"]["matmuls"]
    )
  assert "| probe_vmap |" in (out / "kernel_counts.md").read_text()


def test_step_cost_is_written(run):
  _, out = run
  report = _report(out, "step_cost")
  assert report["models"]["mlp"]["vmap_over_sequential"] > 0
  assert "| per step | mlp |" in (out / "step_cost.md").read_text()


def test_rejects_a_missing_folder_or_an_unknown_option(tmp_path):
  assert _run(cwd=tmp_path).returncode == 2
  result = _run("out", "--fast", cwd=tmp_path)
  assert result.returncode == 2
  assert "--fast" in result.stderr
  assert not (tmp_path / "out").exists()
