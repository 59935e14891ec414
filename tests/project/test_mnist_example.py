"""Tests of examples/mnist: training, the command line, checkpoints, resume.

The runs use a slice of the real MNIST sample written as IDX files, which
also runs the example's ``--source idx`` path end to end.
"""

import dataclasses
import gzip
import inspect
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from benchmarks import _example
import optax_hillclimb

datasets = _example.module("datasets")
EXAMPLE_DIR = _example.EXAMPLE_DIR
NUM_TRAIN, NUM_TEST, BATCH_SIZE = 768, 256, 128
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE


# Long (trains the MNIST example end to end): the README's test command leaves
# it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", name="example")
def example_modules():
  """The example's modules, imported the way main.py imports them."""
  pytest.importorskip("flax")
  sys.path.insert(0, str(EXAMPLE_DIR))
  try:
    from configs import default  # pylint: disable=g-import-not-at-top
    import train  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(EXAMPLE_DIR))
  return default, train


def write_idx(path, array):
  header = bytes([0, 0, 0x08, array.ndim])
  header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module", name="idx_dir")
def real_digits_idx_dir(tmp_path_factory):
  """A slice of the real MNIST sample, as the four IDX files."""
  data = datasets.load("sample")
  directory = tmp_path_factory.mktemp("mnist_slice")
  write_idx(
    directory / "train-images-idx3-ubyte.gz",
    data.train_images[:NUM_TRAIN, ..., 0],
  )
  write_idx(
    directory / "train-labels-idx1-ubyte.gz", data.train_labels[:NUM_TRAIN]
  )
  write_idx(
    directory / "t10k-images-idx3-ubyte.gz", data.test_images[:NUM_TEST, ..., 0]
  )
  write_idx(
    directory / "t10k-labels-idx1-ubyte.gz", data.test_labels[:NUM_TEST]
  )
  return str(directory)


def config_for(example, idx_dir, **overrides):
  default, _ = example
  return default.get_config(
    source="idx", data_dir=idx_dir, batch_size=BATCH_SIZE, **overrides
  )


@pytest.fixture(scope="module", name="two_epochs")
def uninterrupted_two_epoch_run(example, idx_dir, tmp_path_factory):
  _, train = example
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  return train.train_and_evaluate(
    config_for(example, idx_dir, epochs=2), workdir
  )


def test_short_run_on_real_digits_beats_chance(two_epochs):
  # 12 steps on 768 real digits; chance is 10%.
  assert two_epochs["dataset"]["train_size"] == NUM_TRAIN
  assert two_epochs["test_accuracy"] > 0.6
  losses = [h["train_loss"] for h in two_epochs["history"]]
  assert losses[1] < losses[0]
  # hillclimb_adam, the example's optimizer, moved its learning rate away
  # from the starting one.
  assert two_epochs["optimizer"]["name"] == "hillclimb_adam"
  assert two_epochs["final_learning_rate"] != pytest.approx(
    two_epochs["optimizer"]["learning_rate"], rel=1e-3
  )


def test_resume_continues_exactly_where_it_stopped(
  example, idx_dir, tmp_path, two_epochs, monkeypatch
):
  # A two-epoch run stopped during its second epoch, then run again: the
  # same --epochs, so the same total_steps the climb was told.
  _, train = example
  workdir = str(tmp_path)
  real_epoch = train.train_epoch
  epochs_started = []

  def stopped_in_the_second_epoch(*args, **kwargs):
    epochs_started.append(1)
    if len(epochs_started) == 2:
      raise KeyboardInterrupt
    return real_epoch(*args, **kwargs)

  monkeypatch.setattr(train, "train_epoch", stopped_in_the_second_epoch)
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(config_for(example, idx_dir, epochs=2), workdir)
  monkeypatch.setattr(train, "train_epoch", real_epoch)
  resumed = train.train_and_evaluate(
    config_for(example, idx_dir, epochs=2), workdir
  )
  assert resumed["steps"] == 2 * STEPS_PER_EPOCH
  assert resumed["optimizer"]["total_steps"] == 2 * STEPS_PER_EPOCH
  untimed = lambda entry: {k: v for k, v in entry.items() if k != "seconds"}
  assert untimed(resumed["history"][0]) == untimed(two_epochs["history"][0])
  # Same batches, and the restored optimizer state (learning rate, gradient
  # average): the second epoch matches the run that never stopped. Without
  # the optimizer state it would restart from lr0 and differ.
  for key in ("test_loss", "final_learning_rate"):
    np.testing.assert_allclose(resumed[key], two_epochs[key], rtol=1e-5)
  np.testing.assert_allclose(
    resumed["history"][1]["train_loss"],
    two_epochs["history"][1]["train_loss"],
    rtol=1e-5,
  )


def test_resume_refuses_another_optimizer(example, idx_dir, tmp_path):
  _, train = example
  workdir = str(tmp_path)
  train.train_and_evaluate(config_for(example, idx_dir, epochs=1), workdir)
  with pytest.raises(ValueError, match="optimizer='hillclimb_adam'"):
    train.train_and_evaluate(
      config_for(example, idx_dir, epochs=2, optimizer="sgd"), workdir
    )


def test_a_second_run_says_it_resumed_and_how_to_start_fresh(
  example, idx_dir, tmp_path, capsys
):
  # The quick start's command run twice: the second run finds the first
  # one's checkpoint, and says so, rather than only "nothing to train".
  _, train = example
  workdir = str(tmp_path)
  first = train.train_and_evaluate(
    config_for(example, idx_dir, epochs=1), workdir
  )
  capsys.readouterr()
  again = train.train_and_evaluate(
    config_for(example, idx_dir, epochs=1), workdir
  )
  out = capsys.readouterr().out
  assert f"Resuming from the checkpoint of epoch 1 in {workdir}" in out
  assert "To start fresh, pass another --workdir or delete that one." in out
  assert "Nothing to train: that run already trained 1 epochs" in out
  assert "epoch   1/1" not in out
  assert again["test_accuracy"] == first["test_accuracy"]


def test_more_epochs_than_the_run_was_told_are_refused(
  example, idx_dir, tmp_path
):
  # The run was told its length (total_steps, the default --horizon) and
  # shortened its last steps to zero: resuming it under another length
  # would train on a schedule neither run asked for, so it says what to do.
  _, train = example
  workdir = str(tmp_path)
  train.train_and_evaluate(config_for(example, idx_dir, epochs=1), workdir)
  with pytest.raises(train.ResumeError) as refused:
    train.train_and_evaluate(config_for(example, idx_dir, epochs=2), workdir)
  message = str(refused.value)
  assert f"--epochs 1 ({STEPS_PER_EPOCH} steps" in message
  assert f"--epochs 2 ({2 * STEPS_PER_EPOCH} steps)" in message
  assert f"delete {workdir}, to start fresh" in message
  assert "start it with --nohorizon" in message
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["epochs"] == 1  # nothing was trained or written
  # A run not told its length extends.
  other = tmp_path / "extendable"
  train.train_and_evaluate(
    config_for(example, idx_dir, epochs=1, horizon=False), str(other)
  )
  extended = train.train_and_evaluate(
    config_for(example, idx_dir, epochs=2, horizon=False), str(other)
  )
  assert [h["epoch"] for h in extended["history"]] == [1, 2]
  losses = [h["train_loss"] for h in extended["history"]]
  assert losses[1] < losses[0]


def run_main(*args, returncode=0):
  env = dict(os.environ, TFDS_DATA_DIR=os.devnull)
  result = subprocess.run(
    [sys.executable, str(EXAMPLE_DIR / "main.py"), *args],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
    check=False,
  )
  assert result.returncode == returncode, result.stderr[-3000:]
  return result.stdout if returncode == 0 else result.stderr


def test_command_line_end_to_end_with_resume(idx_dir, tmp_path):
  pytest.importorskip("flax")
  workdir = tmp_path / "work"
  common = [
    f"--workdir={workdir}",
    "--source=idx",
    f"--data_dir={idx_dir}",
    f"--batch_size={BATCH_SIZE}",
    # Not told the run's length, so that more --epochs can resume it.
    "--nohorizon",
  ]
  out = run_main(*common, "--epochs=1")
  assert f"Data (idx): MNIST from IDX files in {idx_dir}" in out
  assert "epoch   1/1" in out
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["dataset"]["source"] == "idx"
  assert summary["dataset"]["train_size"] == NUM_TRAIN
  assert summary["dataset"]["test_size"] == NUM_TEST
  assert summary["optimizer"]["name"] == "hillclimb_adam"
  assert summary["epochs"] == 1
  assert 0 <= summary["test_accuracy"] <= 1
  assert np.isfinite(summary["test_loss"])
  assert summary["final_learning_rate"] > 0
  assert [h["epoch"] for h in summary["history"]] == [1]
  png = (workdir / "curves.png").read_bytes()
  assert png.startswith(b"\x89PNG\r\n\x1a\n")
  assert len(png) > 10_000  # two panels with curves, not an empty canvas
  assert (workdir / "checkpoints" / "1").is_dir()

  out = run_main(*common, "--epochs=2")
  lr = summary["final_learning_rate"]
  assert f"Resuming from the checkpoint of epoch 1 in {workdir}" in out
  assert f"(learning rate {lr:.4g})" in out
  assert "epoch   1/" not in out  # not trained again
  resumed = json.loads((workdir / "summary.json").read_text())
  assert resumed["epochs"] == 2
  assert resumed["history"][0] == summary["history"][0]
  assert resumed["steps"] == 2 * STEPS_PER_EPOCH

  # Told a length this time: refused with what to do, and no traceback.
  err = run_main(*common[:-1], "--epochs=3", returncode=1)
  assert err.startswith(f"Error: The checkpoint in {workdir} (epoch 2)")
  assert "Traceback" not in err


def test_config_rejects_bad_values(example):
  default, _ = example
  with pytest.raises(ValueError, match="optimizer must be one of"):
    default.get_config(optimizer="lbfgs")
  with pytest.raises(ValueError, match="batch_size must be a positive"):
    default.get_config(batch_size=0)
  with pytest.raises(ValueError, match="learning_rate must be positive"):
    default.get_config(learning_rate=-1.0)


def test_config_hillclimb_defaults_are_the_librarys(example):
  # The example shows the library as a user gets it: every hill-climbing flag
  # it exposes defaults to the library's own default, the same in all hill
  # climbers, and the example trains with hillclimb_adam.
  default, _ = example
  config = default.get_config()
  assert config.optimizer == "hillclimb_adam"
  assert default.HILLCLIMBERS == (
    "hillclimb_adam",
    "hillclimb",
    "hillclimb_muon",
  )
  for alias in (getattr(optax_hillclimb, n) for n in default.HILLCLIMBERS):
    signature = inspect.signature(alias).parameters
    for name in default.CLIMB_ARGUMENTS:
      assert getattr(config, name) == signature[name].default, (alias, name)
    assert (
      default.get_config(optimizer=alias.__name__).resolved_learning_rate()
      == signature["learning_rate"].default
    )
  smoothing = inspect.signature(optax_hillclimb.hillclimb).parameters[
    "smoothing"
  ]
  assert config.smoothing == smoothing.default
  assert config.resolved_max_learning_rate() is None


def test_hillclimb_on_a_smoothed_gradient_trains_too(
  example, idx_dir, tmp_path
):
  # --optimizer hillclimb: the climb on SGD's direction, with its smoothing.
  _, train = example
  summary = train.train_and_evaluate(
    config_for(
      example, idx_dir, epochs=2, optimizer="hillclimb", smoothing=0.8
    ),
    str(tmp_path),
  )
  assert summary["optimizer"]["name"] == "hillclimb"
  assert summary["optimizer"]["smoothing"] == 0.8
  assert summary["test_accuracy"] > 0.4  # 12 steps; chance is 10%
  assert summary["final_learning_rate"] != pytest.approx(
    summary["optimizer"]["learning_rate"], rel=1e-3
  )


def test_optimizer_hillclimb_muon_is_the_library_alias(example):
  # --optimizer hillclimb_muon: the library's alias with the example's climb
  # settings, told the run's length like the other climbers.
  default, train = example
  config = default.get_config(optimizer="hillclimb_muon")
  described = train._describe_optimizer(config, 100)
  assert described["name"] == "hillclimb_muon"
  assert described["total_steps"] == 100
  params = {"kernel": np.ones((3, 4), np.float32), "bias": np.ones(4)}
  built = train.create_optimizer(config, 100).init(params)
  alias = optax_hillclimb.hillclimb_muon(
    config.resolved_learning_rate(), total_steps=100
  ).init(params)
  assert jax.tree.structure(built) == jax.tree.structure(alias)


def test_the_run_length_reaches_the_stretch_unless_turned_off(example):
  default, train = example
  told = train._describe_optimizer(default.get_config(), 100)
  assert told["total_steps"] == 100
  for config in (
    default.get_config(horizon=False),
    # The two-probe rule has no use for it (the library would refuse it).
    default.get_config(decision="two_probes"),
    default.get_config(optimizer="adam"),
  ):
    assert "total_steps" not in train._describe_optimizer(config, 100)
    train.create_optimizer(config, 100)


def test_config_infinite_cap_means_no_cap(example):
  default, _ = example
  uncapped = default.get_config(max_learning_rate=float("inf"))
  assert uncapped.resolved_max_learning_rate() is None
  capped = default.get_config(max_learning_rate=1.0)
  assert capped.resolved_max_learning_rate() == pytest.approx(1.0)


def test_lr0_above_the_cap_fails_before_loading_data(example, tmp_path):
  # The library checks its own hyperparameters; the example builds the
  # optimizer first, so the error comes before any data is read.
  default, train = example
  config = default.get_config(
    learning_rate=2.0,
    max_learning_rate=1.0,
    source="idx",
    data_dir=str(tmp_path / "no_such_directory"),
  )
  with pytest.raises(ValueError, match=r"at most max_learning_rate=1\.0"):
    train.train_and_evaluate(config, str(tmp_path / "work"))


@pytest.fixture(scope="module", name="sweep")
def sweep_module(example):
  del example  # imported first: sweep imports configs and train by bare name
  sys.path.insert(0, str(EXAMPLE_DIR))
  try:
    import sweep  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(EXAMPLE_DIR))
  return sweep


def test_sweep_writes_json_and_table_and_resumes(
  sweep, idx_dir, tmp_path, monkeypatch
):
  rows = [sweep.Setting("hillclimb", 1.0)]
  overrides = {
    "epochs": 1,
    "source": "idx",
    "data_dir": idx_dir,
    "batch_size": BATCH_SIZE,
  }
  results = sweep.sweep(rows, [0], str(tmp_path), "the command", **overrides)
  (run,) = results["runs"]
  assert run["config"]["learning_rate"] == 1.0
  assert run["test_accuracy_per_epoch"] == [run["test_accuracy"]]
  saved = json.loads((tmp_path / "sweep.json").read_text())
  assert saved["runs"] == results["runs"]
  assert saved["command"] == "the command"
  table = (tmp_path / "sweep.md").read_text()
  accuracy = 100 * run["test_accuracy"]
  assert f"| hillclimb, lr0 1 | {accuracy:.2f} | {accuracy:.1f} |" in table

  # Run again: the finished run is read back, not trained again.
  def no_training(config):
    raise AssertionError(f"trained again: {config}")

  monkeypatch.setattr(sweep, "run_one", no_training)
  again = sweep.sweep(rows, [0], str(tmp_path), "the command", **overrides)
  assert again["runs"] == results["runs"]


def test_sweep_table_compares_with_the_better_baseline(sweep):
  def run(optimizer, learning_rate, seed, accuracy, losses=None):
    config = {"optimizer": optimizer, "learning_rate": learning_rate}
    out = {"config": {**config, "seed": seed}, "test_accuracy": accuracy}
    if losses:  # per epoch; the final one is the last
      out.update(test_loss=losses[-1], test_loss_per_epoch=losses)
    return out

  results = {
    "seeds": [0, 1],
    "settings": [
      {"optimizer": "hillclimb", "learning_rate": 1e-4},
      {"optimizer": "sgd", "learning_rate": 0.1},
      {"optimizer": "adam", "learning_rate": 1e-3},
    ],
    "runs": [
      # Final test losses 20% and 0% above the runs' best epochs.
      run("hillclimb", 1e-4, 0, 0.96, [0.2, 0.1, 0.12]),
      run("hillclimb", 1e-4, 1, 0.97, [0.15, 0.1]),
      run("sgd", 0.1, 0, 0.95),
      run("sgd", 0.1, 1, 0.95),
      run("adam", 1e-3, 0, 0.96),
      run("adam", 1e-3, 1, 0.962),
    ],
  }
  lines = sweep.table(results).splitlines()
  assert lines[2] == (
    "| hillclimb, lr0 0.0001 | 96.50 | 96.0 | 97.0 | +0.40 | +20% |"
  )
  # Runs recorded without per-epoch losses leave that column empty.
  assert lines[3] == "| sgd 0.1, momentum 0.9 | 95.00 | 95.0 | 95.0 |  |  |"
  assert lines[4] == "| adam 0.001 | 96.10 | 96.0 | 96.2 |  |  |"


def test_sweeps_of_other_optimizers_add_rows_to_the_table(sweep):
  row = lambda optimizer, lr: {"optimizer": optimizer, "learning_rate": lr}
  earlier = [row("hillclimb_adam", 1e-6), row("sgd", 0.1), row("adam", 1e-3)]
  new = [
    dataclasses.asdict(s) for s in sweep.settings([3e-4, 1e-6], ["hillclimb"])
  ]
  assert sweep.merge_settings(earlier, new) == [
    row("hillclimb_adam", 1e-6),
    row("hillclimb", 3e-4),
    row("hillclimb", 1e-6),
    row("sgd", 0.1),
    row("adam", 1e-3),
  ]
  with pytest.raises(ValueError, match="not hill climbers"):
    sweep.settings([1e-3], ["adam"])
