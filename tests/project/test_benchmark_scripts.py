"""The benchmark scripts run as files and as modules of ``benchmarks``.

``python benchmarks/<name>.py`` puts ``benchmarks/`` on the path, not the
repository root, and gives the script no package for its relative imports;
``benchmarks/_as_module.py`` mends both. ``--help`` imports everything a
script needs and exits, so these runs take seconds.
"""

import pathlib
import re
import subprocess
import sys

import _user_shell
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Every script in benchmarks/ that runs (a new experiment is found here).
SCRIPTS = sorted(
  path.stem
  for path in (ROOT / "benchmarks").glob("*.py")
  if 'if __name__ == "__main__":' in path.read_text()
)


# Long (runs the benchmark scripts as a user would): the README's test command
# leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def _python(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  return _user_shell.run([sys.executable, *args], cwd, timeout=120)


def test_the_scripts_are_found():
  assert {"robustness", "safe_start", "step_cost"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_runs_as_a_file_from_another_directory(script, tmp_path):
  path = ROOT / "benchmarks" / f"{script}.py"
  result = _python(str(path), "--help", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f"usage: {script}.py")


def test_a_script_run_as_a_file_imports_this_checkout(tmp_path):
  # Not a copy of optax_hillclimb installed elsewhere: `python -v` names the
  # file each module's code comes from.
  path = ROOT / "benchmarks" / "step_cost.py"
  result = _python("-v", str(path), "--help", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  sources = set(re.findall(r"\S*optax_hillclimb/__init__\.py", result.stderr))
  assert sources == {str(ROOT / "optax_hillclimb" / "__init__.py")}


def test_runs_as_a_module():
  result = _python("-m", "benchmarks.safe_start", "--help", cwd=ROOT)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("usage: safe_start.py")
