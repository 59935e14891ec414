"""Every experiment runs as ``python -m benchmarks.<name>`` from the root.

``--help`` imports everything an experiment needs and exits, so these runs
take seconds.
"""

import pathlib
import re
import sys

import _user_shell
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Every experiment in benchmarks/ (a new one is found here).
SCRIPTS = sorted(
  path.stem
  for path in (ROOT / "benchmarks").glob("*.py")
  if 'if __name__ == "__main__":' in path.read_text()
)


# Long (runs the benchmark scripts as a user would): the README's test command
# leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def _python(*args: str) -> tuple[int, str, str]:
  result = _user_shell.run([sys.executable, *args], ROOT, timeout=120)
  return result.returncode, result.stdout, result.stderr


def test_the_scripts_are_found():
  assert {"robustness", "safe_start", "step_cost", "lm"} <= set(SCRIPTS)


def test_no_script_runs_as_a_file():
  # One way to run an experiment: no file-mode path rewriting is left.
  assert not (ROOT / "benchmarks" / "_as_module.py").exists()
  for path in (ROOT / "benchmarks").glob("*.py"):
    assert "__package__" not in path.read_text(), path.name


@pytest.mark.parametrize("script", SCRIPTS)
def test_runs_as_a_module_through_the_shared_cli(script):
  code, out, err = _python("-m", f"benchmarks.{script}", "--help")
  assert code == 0, err
  assert out.startswith(f"usage: python -m benchmarks.{script} ")
  # The common options of benchmarks/_cli.py.
  for option in ("--quick", "--out", "--page-only"):
    assert option in out, (script, option)


def test_a_script_imports_this_checkout():
  # Not a copy of optax_hillclimb installed elsewhere: `python -v` names the
  # file each module's code comes from.
  code, _, err = _python("-v", "-m", "benchmarks.safe_start", "--help")
  assert code == 0, err
  sources = set(re.findall(r"\S*optax_hillclimb/__init__\.py", err))
  assert sources == {str(ROOT / "optax_hillclimb" / "__init__.py")}
