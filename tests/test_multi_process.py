"""Training across two processes, as on two hosts, on one CPU machine.

Two worker processes (tests/_multi_process_worker.py), each with 4 CPU devices,
join one 8-device mesh through ``jax.distributed`` on 127.0.0.1 and train a
small MLP with ``hillclimb``, under sharded ``jit`` and under ``shard_map``
with ``axis_name``, each feeding its own half of every batch. A third process
runs the same code alone with 8 devices: the reference.
"""

import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

TESTS = pathlib.Path(__file__).resolve().parent
WORKER = TESTS / "_multi_process_worker.py"
LEARNING_RATE = 1e-2  # the worker's starting learning rate
NUM_STEPS = 30  # the worker's number of training steps
TIMEOUT_S = 90
VARIANTS = ("jit", "shard_map")


# Long (starts JAX processes that train together): the README's test command
# leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


class ProcessesFailed(AssertionError):
  pass


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def worker_command(process_id, num_processes, port, out, *extra):
  return [
    sys.executable, str(WORKER), str(process_id), str(num_processes),
    str(port), str(out), *extra,
  ]  # fmt: skip


def worker_env(num_local_devices):
  env = dict(os.environ)
  # Replaces the 8 devices conftest.py gives this process.
  env["XLA_FLAGS"] = (
    f"--xla_force_host_platform_device_count={num_local_devices}"
  )
  env["JAX_PLATFORMS"] = "cpu"
  # The workers import optax_hillclimb from this checkout, as pytest does.
  env["PYTHONPATH"] = os.pathsep.join(
    [str(TESTS.parent), *filter(None, [env.get("PYTHONPATH")])]
  )
  return env


def run_together(jobs, log_dir, timeout=TIMEOUT_S):
  """Runs ``(command, env)`` jobs at once; raises if any fails.

  As soon as one process fails, or the timeout passes, the others are killed
  (a process of a distributed run would otherwise wait for a dead peer). The
  error shows every process's exit status, stdout and stderr.
  """
  procs, logs = [], []
  for i, (command, env) in enumerate(jobs):
    out, err = log_dir / f"job{i}.out", log_dir / f"job{i}.err"
    with open(out, "w") as out_file, open(err, "w") as err_file:
      procs.append(
        subprocess.Popen(command, stdout=out_file, stderr=err_file, env=env)
      )
    logs.append((out, err))
  deadline = time.monotonic() + timeout
  killed = set()
  try:
    while True:
      codes = [proc.poll() for proc in procs]
      if all(code == 0 for code in codes):
        return
      timed_out = time.monotonic() > deadline
      if timed_out or any(code not in (None, 0) for code in codes):
        break
      time.sleep(0.05)
  finally:
    for i, proc in enumerate(procs):
      if proc.poll() is None:
        proc.kill()
        killed.add(i)
      proc.wait()
  why = f"killed after the {timeout} s timeout" if timed_out else "killed"
  report = []
  for i, ((command, _), proc, (out, err)) in enumerate(
    zip(jobs, procs, logs, strict=True)
  ):
    status = why if i in killed else f"exit status {proc.returncode}"
    report.append(
      f"--- process {i}: {' '.join(command[1:])}: {status}\n"
      f"stdout:\n{out.read_text()}\nstderr:\n{err.read_text()}"
    )
  raise ProcessesFailed("\n".join(report))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  """What each process's devices hold at the end, by process."""
  tmp = tmp_path_factory.mktemp("multi_process")
  port = free_port()
  outs = [tmp / f"process{i}.npz" for i in range(2)] + [tmp / "reference.npz"]
  jobs = [
    (worker_command(0, 2, port, outs[0]), worker_env(4)),
    (worker_command(1, 2, port, outs[1]), worker_env(4)),
    # The reference runs beside the pair: it needs no port.
    (worker_command(0, 1, 0, outs[2]), worker_env(8)),
  ]
  try:
    run_together(jobs, tmp)
  except ProcessesFailed as e:
    pytest.fail(str(e), pytrace=False)
  loaded = [dict(np.load(out)) for out in outs]
  return {"processes": loaded[:2], "reference": loaded[2]}


def keys_of(variant, arrays):
  keys = sorted(k for k in arrays if k.startswith(f"{variant}/"))
  assert f"{variant}/learning_rate" in keys
  assert any(k.startswith(f"{variant}/params") for k in keys)
  return keys


@pytest.mark.parametrize("variant", VARIANTS)
def test_both_processes_end_bit_identical(results, variant):
  first, second = results["processes"]
  assert keys_of(variant, first) == keys_of(variant, second)
  for key in keys_of(variant, first):
    # Every copy on each process's 4 devices, side by side: 8 in all.
    copies = np.concatenate([first[key], second[key]])
    assert len(copies) == 8, key
    for copy in copies[1:]:
      assert copy.tobytes() == copies[0].tobytes(), key


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_processes_match_one_process(results, variant):
  reference = results["reference"]
  ref_lr = float(reference[f"{variant}/learning_rate"][0])
  # The climb moved: equal learning rates cannot come from doing nothing.
  assert ref_lr != pytest.approx(LEARNING_RATE, rel=0.05)
  ref_losses = reference[f"{variant}/losses"][0]
  assert len(ref_losses) == NUM_STEPS
  assert ref_losses[-1] < 0.5 * ref_losses[0]
  process = results["processes"][0]
  assert keys_of(variant, process) == keys_of(variant, reference)
  for key in keys_of(variant, process):
    got, want = process[key][0], reference[key][0]
    if got.dtype.kind in "iub":
      np.testing.assert_array_equal(got, want, err_msg=key)
    else:
      # Collectives across processes may add in another order.
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=key)


def test_one_failing_process_stops_the_other_and_shows_both(tmp_path):
  # The check of the harness above: process 1 fails after joining, while
  # process 0 goes on to wait for it in its first collective.
  port = free_port()
  jobs = [
    (worker_command(0, 2, port, tmp_path / "p0.npz"), worker_env(4)),
    (worker_command(1, 2, port, tmp_path / "p1.npz", "--fail"), worker_env(4)),
  ]
  start = time.monotonic()
  with pytest.raises(ProcessesFailed) as failure:
    run_together(jobs, tmp_path)
  # Far below gloo's 30 s timeout and the harness's own: process 0 was killed.
  assert time.monotonic() - start < 20
  report = str(failure.value)
  assert "process 0 of 2" in report  # process 0's stdout
  assert "process 1 of 2" in report  # process 1's stdout
  assert "RuntimeError: process 1 fails on purpose" in report  # its stderr
  assert "--- process 0: " in report
  assert ": killed\n" in report
  assert "exit status 1" in report
