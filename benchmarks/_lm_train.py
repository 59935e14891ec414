"""Training the byte-level transformer with one optimizer, one run at a time.

A run's steps go through ``jax.lax.scan`` inside one ``jax.jit`` per stretch
between evaluations. Measured on a 2-core CPU, that was faster than a jitted
step called from a Python loop, and faster per run than a ``jax.vmap`` over
several learning rates (XLA:CPU runs the batched matrix products of a vmapped
transformer slower than the plain ones); ``benchmarks.lm_step_modes``
measures them side by side.

A seed fixes the initial parameters and the batches: step ``t`` trains on
``batch_size`` windows of ``length + 1`` bytes drawn from the training stream
with a key folded from the seed and ``t``, so every optimizer sees the same
data in the same order, and the next step's batch is known in advance.
"""

import dataclasses
import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _train
from . import _transformer

# What ``update`` receives besides the gradient (the probes' data):
# "none": nothing (optax's optimizers); "same": the loss on the batch that
# made the gradient, and the batch.
FEEDS = ("none", "same")


@dataclasses.dataclass(frozen=True)
class Method(_train.Method):
  """A ``_train.Method`` with its grid of starting rates and its feed.

  ``make(lr0, steps)`` also takes the run's length (for schedules); ``lr0s``
  are the learning rates (peaks, starting points) to train from; ``feed`` is
  one of ``FEEDS``.
  """

  lr0s: tuple[float, ...] = ()
  feed: str = "none"

  def __post_init__(self):
    if self.feed not in FEEDS:
      raise ValueError(f"feed must be one of {FEEDS}, got {self.feed!r}.")


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run, numpy arrays; losses in bits per byte.

  Attributes:
    batch_loss: loss of each step's batch before the step, [steps].
    learning_rate: learning rate after each step, [steps].
    eval_steps: the steps after which the validation loss was measured.
    validation: validation bits/byte after those steps.
  """

  batch_loss: np.ndarray
  learning_rate: np.ndarray
  eval_steps: np.ndarray
  validation: np.ndarray


def train(
  method: Method,
  lr0: float,
  seed: int,
  train_bytes: np.ndarray,
  windows: np.ndarray,
  *,
  steps: int,
  eval_every: int,
  batch_size: int = 32,
  config: _transformer.Config = _transformer.DEFAULT,
) -> Run:
  """Trains one model with ``method`` from ``lr0`` and evaluates it.

  Args:
    method: the optimizer.
    lr0: its learning rate (peak, or start).
    seed: fixes the initial parameters and the batches.
    train_bytes: the training stream, uint8 [N].
    windows: held-out windows, uint8 [W, length + 1], W a multiple of
      ``batch_size``.
    steps: number of steps, a multiple of ``eval_every``.
    eval_every: steps between validation measurements.
    batch_size: windows per step.
    config: the model's shape.

  Returns:
    A :class:`Run`.
  """
  if steps % eval_every or len(windows) % batch_size:
    raise ValueError(
      f"steps={steps} must be a multiple of eval_every={eval_every}, and the"
      f" {len(windows)} validation windows a multiple of"
      f" batch_size={batch_size}."
    )
  init, stretch, evaluate = _programs(method, steps, batch_size, config)
  train_bytes, windows = jnp.asarray(train_bytes), jnp.asarray(windows)
  carry = init(seed, lr0)
  outs, validation = [], []
  for start in range(0, steps, eval_every):
    ts = jnp.arange(start, start + eval_every)
    carry, out = stretch(carry, lr0, seed, train_bytes, ts)
    outs.append(out)
    validation.append(evaluate(carry, windows))
  losses, lrs = (
    np.concatenate(jax.device_get(o)) for o in zip(*outs, strict=True)
  )
  return Run(
    batch_loss=np.asarray(_transformer.bits_per_byte(losses)),
    learning_rate=lrs.astype(np.float64),
    eval_steps=np.arange(eval_every, steps + 1, eval_every),
    validation=np.asarray(jax.device_get(validation), np.float64),
  )


def first_update(
  method: Method,
  lr0: float,
  seed: int,
  train_bytes: np.ndarray,
  *,
  steps: int,
  batch_size: int = 32,
  config: _transformer.Config = _transformer.DEFAULT,
) -> str:
  """A digest of the parameters and the optimizer's state after step one.

  A climbing method's ``lr0`` seeds its state and nothing else: two starting
  rates whose first updates leave the same state (the scale search picked
  the same rate) train the same run from there on.
  """
  init, stretch, _ = _programs(method, steps, batch_size, config)
  carry, _ = stretch(
    init(seed, lr0), lr0, seed, jnp.asarray(train_bytes), jnp.arange(1)
  )
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(carry)):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()


def sample(
  train_bytes: jax.Array, seed: jax.Array, t: jax.Array, batch_size: int, width
) -> jax.Array:
  """The batch of step ``t``: random windows [batch_size, width] of bytes."""
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), t)
  starts = jax.random.randint(
    key, (batch_size,), 0, train_bytes.shape[0] - width + 1
  )
  return train_bytes[starts[:, None] + jnp.arange(width)]


def _gradient(feed, loss, params, batch):
  """Returns ``(loss of the batch, gradient, extra arguments of update)``."""
  value, grads = jax.value_and_grad(loss)(params, batch)
  if feed == "none":
    return value, grads, {}
  return value, grads, {"value_fn": loss, "value": value, "batch": batch}


def init_and_step(method, steps, batch_size, config):
  """``init(seed, lr0) -> carry`` and ``step(carry, t, lr0, seed, data)``.

  ``step`` trains one step on batch ``t`` and returns ``(carry, (loss of the
  batch, learning rate after the step))``; neither is jitted.
  """
  width = config.length + 1

  def loss(params, batch):
    return _transformer.loss(params, batch, config)

  def optimizer(lr0):
    return optax.with_extra_args_support(method.make(lr0, steps))

  def init(seed, lr0):
    params = _transformer.init(
      jax.random.fold_in(jax.random.key(seed), 0), config
    )
    return params, optimizer(lr0).init(params)

  def step(carry, t, lr0, seed, train_bytes):
    params, state = carry
    value, grads, extra = _gradient(
      method.feed, loss, params, sample(train_bytes, seed, t, batch_size, width)
    )
    updates, state = optimizer(lr0).update(grads, state, params, **extra)
    params = optax.apply_updates(params, updates)
    return (params, state), (value, method.learning_rate(state, lr0))

  return init, step


@functools.cache
def _programs(method, steps, batch_size, config):
  """Jitted ``init``, ``stretch`` (a scan of steps) and ``evaluate``."""
  init, step = init_and_step(method, steps, batch_size, config)

  def stretch(carry, lr0, seed, train_bytes, ts):
    def scanned(carry, t):
      return step(carry, t, lr0, seed, train_bytes)

    return jax.lax.scan(scanned, carry, ts)

  def evaluate(carry, windows):
    params, state = carry
    params = method.eval_params(state, params)
    nats = mean_loss(params, windows, batch_size, config)
    return _transformer.bits_per_byte(nats)

  return jax.jit(init), jax.jit(stretch), jax.jit(evaluate)


def mean_loss(params, windows, batch_size, config):
  """The loss in nats over ``windows``, in batches of ``batch_size``."""
  batches = windows.reshape(-1, batch_size, config.length + 1)
  return jax.lax.map(
    lambda b: _transformer.loss(params, b, config), batches
  ).mean()
