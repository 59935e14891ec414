"""Runs a command as from a user's shell, outside the test session's setup."""

from collections.abc import Sequence
import os
import pathlib
import subprocess
import sys


def run(
  command: list[str], cwd: pathlib.Path, timeout: float
) -> subprocess.CompletedProcess:
  """Runs ``command`` in ``cwd`` with the environment a user's shell gives it.

  That is, without conftest.py's eight virtual CPU devices (the benchmarks
  should see one device, as a user's run does) and without the session's
  ``PYTHONPATH``, so that a script must find this checkout's code by itself.

  Args:
    command: the program and its arguments.
    cwd: the directory to run it in.
    timeout: seconds before it is killed.

  Returns:
    The finished process, its output captured as text.
  """
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join(
    flag
    for flag in env.get("XLA_FLAGS", "").split()
    if not flag.startswith("--xla_force_host_platform_device_count")
  )
  env.pop("PYTHONPATH", None)
  return subprocess.run(
    command,
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


REPO = pathlib.Path(__file__).resolve().parents[2]


def run_quick(
  module: str,
  out: str | os.PathLike,
  timeout: float = 1200,
  args: Sequence[str] = (),
) -> None:
  """Runs ``python -m benchmarks.<module> --quick --out <out>`` in the repo.

  ``args`` follow these options on the command line.

  Raises:
    AssertionError: with the end of the script's output, if it fails.
  """
  result = run(
    [sys.executable, "-m", f"benchmarks.{module}", "--quick", "--out",
     str(out), *args],
    REPO,
    timeout,
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-3000:]
