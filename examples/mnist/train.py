"""MNIST example: training and evaluation loop.

Flax's NNX MNIST example (same CNN, same loss), trained with
``optax_hillclimb.hillclimb_adam`` (or ``hillclimb``), which tunes its own
learning rate. The probes
score the model through :func:`optax_hillclimb.flax_utils.nnx_value_fn`.
Progress bars per epoch, a summary line per epoch, orbax checkpoints that a
later run resumes from, and ``summary.json`` and ``curves.png`` at the end.
"""

import dataclasses
import json
import os
import time
from typing import Any

from configs import default
from flax import nnx
import input_pipeline
import jax
import jax.numpy as jnp
from models import CNN
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

import optax_hillclimb
from optax_hillclimb.flax_utils import nnx_value_fn

# Settings a resumed run must share with its checkpoint: another optimizer has
# a state of another structure, another dataset makes the history meaningless.
# Other hyperparameters may change between runs (the restored state wins).
_RESUME_MUST_MATCH = ("optimizer", "dataset")
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(default.Config)}


class ResumeError(ValueError):
  """The checkpoint in the work directory cannot be continued by this run."""


def loss_fn(
  model: CNN, image: jax.Array, label: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Mean softmax cross-entropy, and the logits."""
  logits = model(image)
  loss = optax.softmax_cross_entropy_with_integer_labels(
    logits=logits, labels=label
  ).mean()
  return loss, logits


def create_optimizer(
  config: default.Config, total_steps: int | None = None
) -> optax.GradientTransformation:
  """The optax optimizer named by ``config.optimizer``.

  ``total_steps``, the run's length, reaches a hill climber that decides by
  ``"stretch"`` when ``config.horizon`` asks for it.
  """
  learning_rate = config.resolved_learning_rate()
  if config.optimizer in default.HILLCLIMBERS:
    climb = dict(
      lrlr=config.lrlr,
      max_learning_rate=config.resolved_max_learning_rate(),
      every_k=config.every_k,
      decision=config.decision,
    )
    if _knows_horizon(config):
      climb["total_steps"] = total_steps
    if config.optimizer == "hillclimb":
      return optax_hillclimb.hillclimb(
        learning_rate, smoothing=config.smoothing, **climb
      )
    # hillclimb_adam or hillclimb_muon, at their own direction's defaults.
    alias = getattr(optax_hillclimb, config.optimizer)
    return alias(learning_rate, **climb)
  if config.optimizer == "sgd":
    return optax.sgd(learning_rate, momentum=config.momentum)
  return optax.adam(learning_rate)


def _knows_horizon(config: default.Config) -> bool:
  return config.horizon and config.decision == "stretch"


def current_learning_rate(
  optimizer: nnx.Optimizer, config: default.Config
) -> jax.Array:
  """The learning rate the next step uses."""
  if config.optimizer in default.HILLCLIMBERS:
    return optax_hillclimb.get_learning_rate(optimizer.opt_state)
  return jnp.asarray(config.resolved_learning_rate(), jnp.float32)


def make_train_step(config: default.Config):
  """A jitted ``train_step(model, optimizer, image, label)``.

  It returns the batch's loss and accuracy (before the update) and the
  learning rate after it.
  """
  probes = config.optimizer in default.HILLCLIMBERS

  @nnx.jit
  def train_step(model, optimizer, image, label):
    extra_args = {}
    if probes:
      # Built before the gradient, so that the probes score exactly the
      # network the gradient is taken of.
      extra_args["value_fn"] = nnx_value_fn(
        model, loss_fn, image, label, has_aux=True
      )
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, logits), grads = grad_fn(model, image, label)
    if probes:
      # The loss at the current parameters, on this batch: the guard
      # compares it with its running average at no extra evaluation.
      extra_args["value"] = loss
    optimizer.update(model, grads, **extra_args)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == label)
    return loss, accuracy, current_learning_rate(optimizer, config)

  return train_step


@nnx.jit
def eval_step(model: CNN, image: jax.Array, label: jax.Array):
  """Summed loss and number of correct predictions on one batch."""
  loss, logits = loss_fn(model, image, label)
  correct = jnp.sum(jnp.argmax(logits, -1) == label)
  return loss * label.shape[0], correct


def evaluate(
  model: CNN, split: input_pipeline.Split, batch_size: int
) -> tuple[float, float]:
  """Mean loss and accuracy over a whole split."""
  total_loss, total_correct = 0.0, 0
  for batch in input_pipeline.eval_batches(split, batch_size):
    loss, correct = eval_step(model, batch.image, batch.label)
    total_loss += float(loss)
    total_correct += int(correct)
  n = len(split.label)
  return total_loss / n, total_correct / n


class _Checkpoints:
  """Orbax checkpoints of the model, the optimizer and the history."""

  def __init__(self, workdir: str):
    self.manager = ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=2),
    )

  def latest_epoch(self) -> int | None:
    return self.manager.latest_step()

  def save(self, epoch: int, model, optimizer, record: dict[str, Any]) -> None:
    state = {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}
    self.manager.save(
      epoch,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        record=ocp.args.JsonSave(record),
      ),
    )

  def restore(self, epoch: int, model, optimizer) -> dict[str, Any]:
    target = {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self.manager.restore(
      epoch,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        record=ocp.args.JsonRestore(),
      ),
    )
    nnx.update(model, restored.state["model"])
    nnx.update(optimizer, restored.state["optimizer"])
    return restored.record

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _describe_optimizer(
  config: default.Config, total_steps: int | None = None
) -> dict[str, Any]:
  described = {
    "name": config.optimizer,
    "learning_rate": config.resolved_learning_rate(),
  }
  if config.optimizer in default.HILLCLIMBERS:
    described.update(
      lrlr=config.lrlr,
      every_k=config.every_k,
      max_learning_rate=config.resolved_max_learning_rate(),
    )
    if config.optimizer == "hillclimb":
      described["smoothing"] = config.smoothing
    # Only what differs from the two-probe rule, which needs neither.
    if config.decision != "two_probes":
      described["decision"] = config.decision
    if _knows_horizon(config):
      described["total_steps"] = total_steps
  elif config.optimizer == "sgd":
    described["momentum"] = config.momentum
  return described


def _told_steps(config: default.Config, steps_per_epoch: int) -> int | None:
  """The run's length the climb is told (``total_steps``), or ``None``."""
  if config.optimizer in default.HILLCLIMBERS and _knows_horizon(config):
    return config.epochs * steps_per_epoch
  return None


def _check_resumable(
  record: dict[str, Any],
  config: default.Config,
  workdir: str,
  last: int,
  train_size: int,
) -> None:
  """Refuses a checkpoint this run cannot continue, saying what to do."""
  saved = record["config"]
  fresh = f"pass another --workdir, or delete {workdir}, to start fresh"
  for key in _RESUME_MUST_MATCH:
    if saved[key] != getattr(config, key):
      raise ResumeError(
        f"The checkpoint in {workdir} was trained with {key}="
        f"{saved[key]!r}, but this run asks for {key}="
        f"{getattr(config, key)!r}: {fresh}."
      )
  if last >= config.epochs:
    return  # nothing to train: the schedule does not matter
  # A hill climber told the run's length shortens its steps to zero over
  # the last fifth of total_steps: continuing it under another length would
  # train on a schedule that neither run asked for.
  saved_config = default.get_config(
    **{k: v for k, v in saved.items() if k in _CONFIG_FIELDS}
  )
  saved_steps = record.get(
    "total_steps",
    _told_steps(
      saved_config,
      input_pipeline.steps_per_epoch(train_size, saved_config.batch_size),
    ),
  )
  steps = _told_steps(
    config, input_pipeline.steps_per_epoch(train_size, config.batch_size)
  )
  if saved_steps != steps:
    told = (
      f"told its length, --epochs {saved_config.epochs} ({saved_steps} "
      "steps, the last fifth shortened to zero)"
      if saved_steps is not None
      else "not told its length (--nohorizon)"
    )
    raise ResumeError(
      f"The checkpoint in {workdir} (epoch {last}) comes from a run {told}, "
      f"and this run asks for --epochs {config.epochs}"
      + (" --nohorizon" if steps is None else f" ({steps} steps)")
      + ". Rerun with the checkpoint's --epochs"
      + (" --nohorizon" if saved_steps is None else "")
      + f" to finish it, or {fresh}. To extend a run later, start it with "
      "--nohorizon."
    )


def save_curves(record: dict[str, Any], path: str, title: str) -> None:
  """Plots the training loss and the learning rate against step."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")  # files only, no display needed
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  steps = np.arange(1, len(record["steps"]["loss"]) + 1)
  fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
  ax_loss.plot(steps, record["steps"]["loss"], lw=0.8, label="train (batch)")
  epoch_ends = [h["step"] for h in record["history"]]
  ax_loss.plot(
    epoch_ends,
    [h["test_loss"] for h in record["history"]],
    "o-",
    label="test (end of epoch)",
  )
  ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
  ax_loss.legend()
  ax_lr.plot(steps, record["steps"]["learning_rate"], lw=1.2)
  cap = record["config"].get("max_learning_rate")
  climbs = record["config"]["optimizer"] in default.HILLCLIMBERS
  if climbs and cap and np.isfinite(cap):
    ax_lr.axhline(cap, ls="--", color="gray", label="max_learning_rate")
    ax_lr.legend()
  ax_lr.set(
    xlabel="step", ylabel="learning rate", yscale="log", title="learning rate"
  )
  for ax in (ax_loss, ax_lr):
    ax.grid(True, which="both", alpha=0.3)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def train_epoch(
  model: CNN,
  optimizer: nnx.Optimizer,
  train_step,
  train_ds: input_pipeline.Split,
  test_ds: input_pipeline.Split,
  config: default.Config,
  epoch: int,
  record: dict[str, Any],
) -> dict[str, Any]:
  """Trains one epoch with a progress bar, then evaluates.

  Appends each step's loss and learning rate to ``record["steps"]`` and the
  epoch's summary to ``record["history"]``.

  Returns:
    The epoch's summary: train and test loss and accuracy, learning rate.
  """
  start = time.perf_counter()
  losses, accuracies = [], []
  bar = tqdm.tqdm(
    input_pipeline.train_batches(
      train_ds, config.batch_size, config.seed, epoch
    ),
    total=input_pipeline.steps_per_epoch(
      len(train_ds.label), config.batch_size
    ),
    desc=f"epoch {epoch}/{config.epochs}",
    leave=False,
    disable=None,  # no bar when the output is not a terminal
  )
  for batch in bar:
    loss, accuracy, lr = jax.device_get(
      train_step(model, optimizer, batch.image, batch.label)
    )
    losses.append(float(loss))
    accuracies.append(float(accuracy))
    record["steps"]["loss"].append(float(loss))
    record["steps"]["learning_rate"].append(float(lr))
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.4g}", refresh=False)
  bar.close()
  test_loss, test_accuracy = evaluate(model, test_ds, config.eval_batch_size)
  entry = {
    "epoch": epoch,
    "step": len(record["steps"]["loss"]),
    "train_loss": float(np.mean(losses)),
    "train_accuracy": float(np.mean(accuracies)),
    "test_loss": test_loss,
    "test_accuracy": test_accuracy,
    "learning_rate": float(lr),
    "seconds": time.perf_counter() - start,
  }
  record["history"].append(entry)
  return entry


def train_and_evaluate(config: default.Config, workdir: str) -> dict[str, Any]:
  """Trains the CNN, resuming from ``workdir``'s checkpoint if there is one.

  Args:
    config: the hyperparameters.
    workdir: where checkpoints, ``summary.json`` and ``curves.png`` go.

  Returns:
    The summary also written to ``workdir/summary.json``.
  """
  # Built first: the library checks its hyperparameters (say, a learning
  # rate above max_learning_rate) before any data loads.
  create_optimizer(config)
  os.makedirs(workdir, exist_ok=True)
  train_ds, test_ds, data = input_pipeline.get_datasets(
    config.source, config.data_dir, config.dataset, config.seed
  )
  # Fails before any compiling if batch_size exceeds the training set.
  total_steps = config.epochs * input_pipeline.steps_per_epoch(
    len(train_ds.label), config.batch_size
  )
  tx = create_optimizer(config, total_steps)
  print(f"Data ({data.source}): {data.description}")
  described = _describe_optimizer(config, total_steps)
  arguments = ", ".join(f"{k}={v}" for k, v in described.items() if k != "name")
  print(f"Optimizer: {described['name']}({arguments})")

  model = CNN(rngs=nnx.Rngs(config.seed))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  checkpoints = _Checkpoints(workdir)
  told_steps = described.get("total_steps")
  record = {
    "config": dataclasses.asdict(config),
    "total_steps": told_steps,
    "history": [],
    "steps": {"loss": [], "learning_rate": []},
  }
  start_epoch = 1
  last = checkpoints.latest_epoch()
  if last is not None:
    saved = checkpoints.manager.restore(
      last, args=ocp.args.Composite(record=ocp.args.JsonRestore())
    ).record
    try:
      _check_resumable(saved, config, workdir, last, len(train_ds.label))
    except ResumeError:
      checkpoints.close()
      raise
    record = checkpoints.restore(last, model, optimizer)
    record["config"] = dataclasses.asdict(config)
    record["total_steps"] = told_steps
    start_epoch = last + 1
    lr = float(current_learning_rate(optimizer, config))
    print(
      f"Resuming from the checkpoint of epoch {last} in {workdir} "
      f"(learning rate {lr:.4g}). To start fresh, pass another --workdir "
      "or delete that one."
    )
    if last >= config.epochs:
      print(
        f"Nothing to train: that run already trained {last} epochs, and "
        f"this one asks for --epochs {config.epochs}."
      )

  train_step = make_train_step(config)
  try:
    for epoch in range(start_epoch, config.epochs + 1):
      entry = train_epoch(
        model, optimizer, train_step, train_ds, test_ds, config, epoch, record
      )
      print(
        f"epoch {epoch:3d}/{config.epochs}  "
        f"train loss {entry['train_loss']:.4f} "
        f"acc {100 * entry['train_accuracy']:.2f}%  "
        f"test loss {entry['test_loss']:.4f} "
        f"acc {100 * entry['test_accuracy']:.2f}%  "
        f"lr {entry['learning_rate']:.4g}  {entry['seconds']:.1f}s"
      )
      checkpoints.save(epoch, model, optimizer, record)
  finally:
    checkpoints.close()

  if record["history"] and record["history"][-1]["epoch"] == config.epochs:
    test_loss = record["history"][-1]["test_loss"]
    test_accuracy = record["history"][-1]["test_accuracy"]
  else:  # a checkpoint past --epochs: report the model as it is
    test_loss, test_accuracy = evaluate(model, test_ds, config.eval_batch_size)
  final_lr = float(current_learning_rate(optimizer, config))
  summary = {
    "dataset": {
      "name": data.name,
      "source": data.source,
      "description": data.description,
      "train_size": len(train_ds.label),
      "test_size": len(test_ds.label),
    },
    "optimizer": described,
    "epochs": max(config.epochs, start_epoch - 1),
    "batch_size": config.batch_size,
    "seed": config.seed,
    "steps": len(record["steps"]["loss"]),
    "test_accuracy": test_accuracy,
    "test_loss": test_loss,
    "final_learning_rate": final_lr,
    "train_seconds": sum(h["seconds"] for h in record["history"]),
    "history": record["history"],
  }
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  title = f"{config.optimizer} on {data.description}"
  save_curves(record, os.path.join(workdir, "curves.png"), title)
  print(
    f"Test accuracy {100 * test_accuracy:.2f}%, test loss {test_loss:.4f}, "
    f"final learning rate {final_lr:.4g}. Wrote summary.json and curves.png "
    f"to {workdir}"
  )
  return summary
