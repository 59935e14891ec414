"""Training a grid of models (seeds x starting learning rates) with one method.

Two loops, one result. ``loop="scan"`` trains the whole grid in one program:
the training step is ``jax.vmap``-ed over learning rates and seeds and
``jax.lax.scan``-ed over steps inside one ``jax.jit``, so the 100 MLPs of a
10 x 10 grid train in about the time of a few separate runs.
``loop="python"`` calls one jitted step per batch from Python, one model
after another: on XLA:CPU a conv net's or a transformer's step ran about 45
times slower inside ``lax.scan`` than called from Python.

The two loops draw their batches differently (``scan``: ``jax.random`` from
the seed's key; ``python``: NumPy from the seed), as the results committed
with each were made.
"""

from collections.abc import Callable, Sequence
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc


@dataclasses.dataclass(frozen=True)
class Data:
  """Training and test examples, and where they came from.

  Inputs and targets are arrays indexed by example along their first axis:
  images and labels, or token sequences and the next tokens.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  label: str


@dataclasses.dataclass(frozen=True)
class Task:
  """A model to train, reduced to what the loops need.

  Attributes:
    name: short name, for tables.
    init: ``init(key) -> params``.
    loss: ``loss(params, inputs, targets) -> scalar``, the training loss.
    evaluate: ``evaluate(params, data) -> {metric: scalar}`` after training,
      on ``data``'s test set (or anything else the task measures). Must be
      jittable for ``loop="scan"``.
  """

  name: str
  init: Callable[[jax.Array], Any]
  loss: Callable[[Any, jax.Array, jax.Array], jax.Array]
  evaluate: Callable[[Any, Data], dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Method:
  """An optimizer family with one starting-learning-rate knob.

  Attributes:
    name: label used in tables and plots.
    make: ``make(lr0) -> optax transformation``; ``lr0`` may be a traced
      scalar, since the grid is vmapped over it.
    knob: what ``lr0`` sets, for the write-up (``"learning_rate"``, ...).
    learning_rate: ``learning_rate(state, lr0)``, what to record after each
      step (the learning rate in force, by default ``lr0``).
    eval_params: ``eval_params(state, params)``, the parameters to evaluate
      (schedule-free methods evaluate an average, not the iterate).
  """

  name: str
  make: Callable[[jax.Array], optax.GradientTransformation]
  knob: str = "learning_rate"
  learning_rate: Callable[[Any, jax.Array], jax.Array] = lambda state, lr0: lr0
  eval_params: Callable[[Any, Any], Any] = lambda state, params: params


def hillclimb_learning_rate(state: Any, lr0: jax.Array) -> jax.Array:
  """The climbed learning rate held in a state with one ``HillclimbState``.

  The climbed rate itself, as the results pages report it: in the last fifth
  of a run told its length, the rate applied (``get_learning_rate``) is
  shorter.
  """
  del lr0
  return optax.tree.get(state, "learning_rate")


# Two probes at every step, 1% steps growing along a streak: the aliases'
# defaults before the stretch decision.
EVERY_STEP = dict(decision="two_probes", every_k=1, lrlr=0.01)


def reference_rule(lr0, **overrides) -> optax.GradientTransformation:
  """The blog post's rule, ``overrides`` aside.

  A smoothed gradient, two probes at every step, fixed 1% steps, ties lower
  the learning rate, no guard, no scale search.
  """
  settings = EVERY_STEP | dict(
    lrlr_growth=1.0, tie_break="down", guard=False, scale_search=None
  )
  return optax.chain(
    optax.ema(0.9, debias=True),
    ohc.scale_by_hillclimb(lr0, **(settings | overrides)),
  )


def hillclimber(name: str, make: Callable[..., Any], **settings) -> Method:
  """``make(lr0, **settings)``, a hill climber, its learning rate recorded."""
  return Method(
    name,
    lambda lr0: make(lr0, **settings),
    learning_rate=hillclimb_learning_rate,
  )


@dataclasses.dataclass(frozen=True)
class GridResult:
  """Results of a grid, numpy arrays indexed [seed, lr0] (and step).

  Attributes:
    lr0: the starting learning rates, [num_lr].
    metrics: what ``Task.evaluate`` measured after the last step.
    train_loss: training loss of each step's batch, before the step.
    learning_rate: what ``Method.learning_rate`` recorded after each step.
    metrics_at: the metrics after each number of steps in ``eval_at``.
  """

  lr0: np.ndarray
  metrics: dict[str, np.ndarray]
  train_loss: np.ndarray
  learning_rate: np.ndarray
  metrics_at: dict[int, dict[str, np.ndarray]] = dataclasses.field(
    default_factory=dict
  )


def train_grid(
  method: Method,
  task: Task,
  data: Data,
  *,
  lr0s: Sequence[float],
  num_seeds: int,
  batch_size: int = 1000,
  epochs: int = 10,
  steps: int | None = None,
  eval_at: Sequence[int] = (),
  loop: str = "scan",
) -> GridResult:
  """Trains ``num_seeds x len(lr0s)`` models with ``method`` and evaluates them.

  A seed fixes the initial parameters and the order of the batches (reshuffled
  every epoch), so every learning rate sees the same data in the same order.
  The optimizer's ``update`` receives ``value_fn`` (the loss on the current
  batch) and ``value`` (the loss before the step); transformations that do not
  take them ignore them.

  Args:
    method: the optimizer family.
    task: the model.
    data: training and test data.
    lr0s: starting learning rates.
    num_seeds: number of seeds (0, 1, ...).
    batch_size: examples per step.
    epochs: passes over the training set (the remainder batch is dropped).
    steps: if given, the number of steps to train instead of ``epochs`` whole
      passes (budgets in fractional epochs). The first ``epochs`` passes are
      shuffled as without ``steps``, and the passes after them get keys of
      their own, so that a longer run begins exactly as the ``epochs`` run.
      ``loop="scan"`` only.
    eval_at: numbers of steps (at most the total) after which to evaluate
      too, so that one longer run also gives a shorter budget's result.
      ``loop="scan"`` only.
    loop: ``"scan"`` or ``"python"`` (see the module's docstring).

  Returns:
    A :class:`GridResult`.
  """
  if loop == "python":
    if steps is not None or eval_at:
      raise ValueError("loop='python' trains whole epochs: no steps, eval_at.")
    return _python_grid(method, task, data, lr0s, num_seeds, batch_size, epochs)
  if loop != "scan":
    raise ValueError(f"loop must be 'scan' or 'python', got {loop!r}.")
  eval_at = tuple(sorted(set(eval_at)))
  program = _grid_program(
    method, task, len(data.y_train), batch_size, epochs, steps, eval_at
  )
  keys = jax.vmap(jax.random.key)(jnp.arange(num_seeds))
  lr0_array = jnp.asarray(lr0s, jnp.float32)
  out = program(
    keys, lr0_array, data.x_train, data.y_train, data.x_test, data.y_test
  )
  metrics, losses, lrs, metrics_at = jax.device_get(out)
  return GridResult(
    lr0=np.asarray(lr0s, np.float64),
    metrics={k: np.asarray(v) for k, v in metrics.items()},
    train_loss=np.asarray(losses),
    learning_rate=np.asarray(lrs),
    metrics_at={
      s: {k: np.asarray(v[..., i]) for k, v in metrics_at.items()}
      for i, s in enumerate(eval_at)
    },
  )


def _batch_order(num_train, batch_size, epochs, steps):
  """``order(shuffle_key) -> [steps, batch_size]`` example indices."""
  steps_per_epoch = num_train // batch_size
  if steps_per_epoch < 1:
    raise ValueError(
      f"batch_size={batch_size} is larger than the training set"
      f" ({num_train} examples)."
    )
  used = steps_per_epoch * batch_size
  extra_passes = max(0, -(-steps // steps_per_epoch) - epochs)

  def order(shuffle_key: jax.Array) -> jax.Array:
    keys = jax.random.split(shuffle_key, epochs)
    if extra_passes:
      # Keys of their own, so that the first passes stay those of a run of
      # `epochs` passes (and its results reproducible within a longer run).
      extra = jax.random.split(jax.random.fold_in(shuffle_key, 1), extra_passes)
      keys = jnp.concatenate([keys, extra])
    perms = jax.vmap(lambda k: jax.random.permutation(k, num_train)[:used])
    return perms(keys).reshape(-1, batch_size)[:steps]

  return order


def _train_step(method, task, lr0):
  """``step((params, state), (inputs, targets))``, recording loss and lr."""
  opt = optax.with_extra_args_support(method.make(lr0))

  def step(carry, batch):
    params, state = carry

    def batch_loss(p):
      return task.loss(p, *batch)

    value, grads = jax.value_and_grad(batch_loss)(params)
    updates, state = opt.update(
      grads, state, params, value_fn=batch_loss, value=value
    )
    params = optax.apply_updates(params, updates)
    return (params, state), (value, method.learning_rate(state, lr0))

  return opt, step


@functools.cache
def _grid_program(
  method, task, num_train, batch_size, epochs, steps, eval_at
) -> Callable[..., Any]:
  """Returns the jitted grid trainer for one method, task and data size.

  Cached, so that a second data set of the same shapes (the other scaling)
  reuses the compiled program.
  """
  if steps is None:
    steps = epochs * (num_train // batch_size)
  if steps < 1 or any(not 1 <= s <= steps for s in eval_at):
    raise ValueError(
      f"Need steps >= 1 and every eval_at in [1, steps], got steps={steps},"
      f" eval_at={eval_at}."
    )
  batch_order = _batch_order(num_train, batch_size, epochs, steps)

  def run_one(key, lr0, x_train, y_train, x_test, y_test):
    init_key, shuffle_key = jax.random.split(key)
    opt, train_step = _train_step(method, task, lr0)
    params = task.init(init_key)
    data = Data(x_train, y_train, x_test, y_test, label="")

    def step(carry, indices):
      return train_step(carry, (x_train[indices], y_train[indices]))

    def evaluate(carry):
      params, state = carry
      return task.evaluate(method.eval_params(state, params), data)

    # One scan per stretch between evaluations.
    carry, order = (params, opt.init(params)), batch_order(shuffle_key)
    start, outs, metrics_at = 0, [], []
    for stop in [*eval_at, steps]:
      if stop > start:
        carry, out = jax.lax.scan(step, carry, order[start:stop])
        outs.append(out)
      if stop in eval_at:
        metrics_at.append(evaluate(carry))
      start = stop
    losses, lrs = (jnp.concatenate(parts) for parts in zip(*outs, strict=True))
    if metrics_at:
      metrics_at = jax.tree.map(lambda *m: jnp.stack(m, -1), *metrics_at)
    return evaluate(carry), losses, lrs, metrics_at or {}

  over_lr = jax.vmap(run_one, in_axes=(None, 0, None, None, None, None))
  over_seeds = jax.vmap(over_lr, in_axes=(0, None, None, None, None, None))
  return jax.jit(over_seeds)


@functools.cache
def _python_step(method, task) -> Callable:
  """One jitted training step per method, reused across lr0s and seeds."""

  def step(params, state, inputs, targets, lr0):
    _, train_step = _train_step(method, task, lr0)
    return train_step((params, state), (inputs, targets))

  return jax.jit(step)


def _python_grid(method, task, data, lr0s, num_seeds, batch_size, epochs):
  """The grid with a Python loop of jitted steps (``loop="python"``)."""
  step = _python_step(method, task)
  steps_per_epoch = len(data.y_train) // batch_size
  runs = []
  for seed in range(num_seeds):
    for lr0 in lr0s:
      params = task.init(jax.random.key(seed))
      state = optax.with_extra_args_support(method.make(lr0)).init(params)
      lr0_array = jnp.asarray(lr0, jnp.float32)
      rng = np.random.default_rng(seed)
      records = []
      for _ in range(epochs):
        order = rng.permutation(len(data.y_train))
        order = order[: steps_per_epoch * batch_size]
        for idx in order.reshape(steps_per_epoch, batch_size):
          (params, state), record = step(
            params, state, data.x_train[idx], data.y_train[idx], lr0_array
          )
          records.append(record)
      metrics = task.evaluate(method.eval_params(state, params), data)
      runs.append((metrics, *map(jnp.stack, zip(*records, strict=True))))
  metrics, losses, lrs = jax.device_get(list(zip(*runs, strict=True)))

  def grid(values):
    return np.asarray(values).reshape(
      num_seeds, len(lr0s), *np.shape(values[0])
    )

  return GridResult(
    lr0=np.asarray(lr0s, np.float64),
    metrics={k: grid([m[k] for m in metrics]) for k in metrics[0]},
    train_loss=grid(losses),
    learning_rate=grid(lrs),
  )
