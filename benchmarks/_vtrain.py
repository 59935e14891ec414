"""Trains a grid of MLPs (seeds x starting learning rates) in one program.

Every model of the grid has its own parameters and optimizer state, so the
whole training step is ``jax.vmap``-ed twice (over learning rates, then seeds)
and ``jax.lax.scan``-ed over steps inside one ``jax.jit``: the 100 models of a
10 x 10 grid train together in about the time of a few separate runs.
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

from . import _data
from . import _mlp


@dataclasses.dataclass(frozen=True)
class Method:
  """An optimizer family with one starting-learning-rate knob.

  Attributes:
    name: label used in tables and plots.
    make: ``make(lr0) -> optax transformation``; ``lr0`` may be a traced
      scalar, since the grid is vmapped over it.
    knob: what ``lr0`` sets, for the write-up (``"learning_rate"``, ...).
    learning_rate: ``learning_rate(state, lr0)``, the learning rate in force
      after a step, recorded for the figures.
    eval_params: ``eval_params(state, params)``, the parameters to evaluate
      (schedule-free methods evaluate an average, not the iterate).
  """

  name: str
  make: Callable[[jax.Array], optax.GradientTransformation]
  knob: str = "learning_rate"
  learning_rate: Callable[[Any, jax.Array], jax.Array] = lambda state, lr0: lr0
  eval_params: Callable[[Any, Any], Any] = lambda state, params: params


def hillclimb_learning_rate(state: Any, lr0: jax.Array) -> jax.Array:
  """The learning rate held in a state with one ``HillclimbState``."""
  del lr0
  return ohc.get_learning_rate(state)


@dataclasses.dataclass(frozen=True)
class GridResult:
  """Results of a grid, numpy arrays indexed [seed, lr0] (and step).

  Attributes:
    lr0: the starting learning rates, [num_lr].
    accuracy: final test accuracy in [0, 1].
    test_loss: final mean test cross-entropy.
    train_loss: training loss of each step's batch, before the step.
    learning_rate: learning rate in force after each step.
    accuracy_at: test accuracy after each number of steps in ``eval_at``.
  """

  lr0: np.ndarray
  accuracy: np.ndarray
  test_loss: np.ndarray
  train_loss: np.ndarray
  learning_rate: np.ndarray
  accuracy_at: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)


def train_grid(
  method: Method,
  data: _data.FlatData,
  *,
  lr0s: Sequence[float],
  num_seeds: int,
  batch_size: int = 1000,
  epochs: int = 10,
  steps: int | None = None,
  eval_at: Sequence[int] = (),
) -> GridResult:
  """Trains ``num_seeds x len(lr0s)`` MLPs with ``method`` and evaluates them.

  A seed fixes the initial parameters and the order of the batches (reshuffled
  every epoch), so every learning rate sees the same data in the same order.
  The optimizer's ``update`` receives ``value_fn`` (the loss on the current
  batch) and ``value`` (the loss before the step); transformations that do not
  take them ignore them.

  Args:
    method: the optimizer family.
    data: training and test data.
    lr0s: starting learning rates.
    num_seeds: number of seeds (0, 1, ...).
    batch_size: examples per step.
    epochs: passes over the training set (the remainder batch is dropped).
    steps: if given, the number of steps to train instead of ``epochs`` whole
      passes (budgets in fractional epochs). The first ``epochs`` passes are
      shuffled as without ``steps``, and the passes after them get keys of
      their own, so that a longer run begins exactly as the ``epochs`` run.
    eval_at: numbers of steps (at most the total) after which to evaluate the
      test accuracy too, so that one longer run also gives a shorter budget's
      result.

  Returns:
    A :class:`GridResult`.
  """
  eval_at = tuple(sorted(set(eval_at)))
  program = _grid_program(
    method, len(data.y_train), batch_size, epochs, steps, eval_at
  )
  keys = jax.vmap(jax.random.key)(jnp.arange(num_seeds))
  lr0_array = jnp.asarray(lr0s, jnp.float32)
  out = program(
    keys, lr0_array, data.x_train, data.y_train, data.x_test, data.y_test
  )
  accuracy, test_loss, losses, lrs, accuracy_at = jax.device_get(out)
  return GridResult(
    lr0=np.asarray(lr0s, np.float64),
    accuracy=np.asarray(accuracy),
    test_loss=np.asarray(test_loss),
    train_loss=np.asarray(losses),
    learning_rate=np.asarray(lrs),
    accuracy_at={
      s: np.asarray(accuracy_at[..., i]) for i, s in enumerate(eval_at)
    },
  )


@functools.cache
def _grid_program(
  method: Method,
  num_train: int,
  batch_size: int,
  epochs: int,
  steps: int | None,
  eval_at: tuple[int, ...],
) -> Callable[..., Any]:
  """Returns the jitted grid trainer for one method and data size.

  Cached, so that a second data set of the same shapes (the other scaling)
  reuses the compiled program.
  """
  steps_per_epoch = num_train // batch_size
  if steps_per_epoch < 1:
    raise ValueError(
      f"batch_size={batch_size} is larger than the training set"
      f" ({num_train} examples)."
    )
  used = steps_per_epoch * batch_size
  if steps is None:
    steps = epochs * steps_per_epoch
  if steps < 1 or any(not 1 <= s <= steps for s in eval_at):
    raise ValueError(
      f"Need steps >= 1 and every eval_at in [1, steps], got steps={steps},"
      f" eval_at={eval_at}."
    )
  extra_passes = max(0, -(-steps // steps_per_epoch) - epochs)

  def batch_order(shuffle_key: jax.Array) -> jax.Array:
    keys = jax.random.split(shuffle_key, epochs)
    if extra_passes:
      # Keys of their own, so that the first passes stay those of a run of
      # `epochs` passes (and its results reproducible within a longer run).
      extra = jax.random.split(jax.random.fold_in(shuffle_key, 1), extra_passes)
      keys = jnp.concatenate([keys, extra])
    order = jax.vmap(lambda k: jax.random.permutation(k, num_train)[:used])(
      keys
    )
    return order.reshape(-1, batch_size)[:steps]

  def run_one(key, lr0, x_train, y_train, x_test, y_test):
    init_key, shuffle_key = jax.random.split(key)
    params = _mlp.init(init_key)
    opt = optax.with_extra_args_support(method.make(lr0))
    state = opt.init(params)
    order = batch_order(shuffle_key)

    def step(carry, indices):
      params, state = carry
      images, labels = x_train[indices], y_train[indices]

      def batch_loss(p):
        return _mlp.loss(p, images, labels)

      value, grads = jax.value_and_grad(batch_loss)(params)
      updates, state = opt.update(
        grads, state, params, value_fn=batch_loss, value=value
      )
      params = optax.apply_updates(params, updates)
      return (params, state), (value, method.learning_rate(state, lr0))

    def evaluate(carry):
      params, state = carry
      return _mlp.evaluate(method.eval_params(state, params), x_test, y_test)

    # One scan per stretch between evaluations.
    carry, start, outs, accuracy_at = (params, state), 0, [], []
    for stop in eval_at:
      carry, out = jax.lax.scan(step, carry, order[start:stop])
      outs.append(out)
      accuracy_at.append(evaluate(carry)[0])
      start = stop
    if start < steps:
      carry, out = jax.lax.scan(step, carry, order[start:])
      outs.append(out)
    losses, lrs = (jnp.concatenate(parts) for parts in zip(*outs, strict=True))
    accuracy, test_loss = evaluate(carry)
    accuracy_at = jnp.stack(accuracy_at) if accuracy_at else jnp.zeros([0])
    return accuracy, test_loss, losses, lrs, accuracy_at

  over_lr = jax.vmap(run_one, in_axes=(None, 0, None, None, None, None))
  over_seeds = jax.vmap(over_lr, in_axes=(0, None, None, None, None, None))
  return jax.jit(over_seeds)
