"""A synthetic regression whose loss is not of order 1, and a ReLU MLP for it.

Inputs are 12-dimensional normal with standard deviation 0.1 (features on a
small scale, as when they are normalised by the sample count); the targets
come from a fixed random teacher (a tanh network with 16 hidden units) plus
noise, shifted and scaled so that they lie in the hundreds: mean about 160,
standard deviation about 70. A freshly initialised student predicts about 0,
so its mean squared error starts near 3e4, most of it the targets' offset.
The student is a ReLU MLP with one hidden layer of 32 units.

``loss_scale`` multiplies the mean squared error by ``loss_scale / 3e4``, so
that the same problem (same minimiser, same gradient directions) starts from
a loss of about ``loss_scale``: 3e4 is the raw mean squared error.
:func:`task` is the student at one loss scale for the loops of ``_train``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _train

NUM_INPUTS = 12
NUM_HIDDEN = 32
NUM_TRAIN = 1000
NUM_TEST = 500
BATCH_SIZE = 50
RAW_LOSS = 3e4  # About the raw mean squared error at initialisation.

_TEACHER_HIDDEN = 16
_TARGET_MEAN = 160.0
_TARGET_STD = 70.0
_NOISE_STD = 0.2  # In units of the teacher's standard deviation.
_INPUT_STD = 0.1


def data() -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
  """The regression data, ``((x, y), (x_test, y_test))``; y is [n]."""
  rng = np.random.default_rng(0)
  n = NUM_TRAIN + NUM_TEST
  x = rng.standard_normal((n, NUM_INPUTS))
  w1 = rng.standard_normal((NUM_INPUTS, _TEACHER_HIDDEN)) / np.sqrt(NUM_INPUTS)
  w2 = rng.standard_normal(_TEACHER_HIDDEN)
  teacher = np.tanh(2 * x @ w1) @ w2
  teacher = (teacher - teacher.mean()) / teacher.std()
  y = teacher + _NOISE_STD * rng.standard_normal(n)
  y = _TARGET_MEAN + _TARGET_STD * y
  x = _INPUT_STD * x
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  return (x[:NUM_TRAIN], y[:NUM_TRAIN]), (x[NUM_TRAIN:], y[NUM_TRAIN:])


def init(key: jax.Array) -> list[dict[str, jax.Array]]:
  """He-initialised weights, zero biases."""
  k1, k2 = jax.random.split(key)
  he = lambda k, shape: jax.random.normal(k, shape) * np.sqrt(2 / shape[0])
  return [
    {"w": he(k1, (NUM_INPUTS, NUM_HIDDEN)), "b": jnp.zeros(NUM_HIDDEN)},
    {"w": he(k2, (NUM_HIDDEN, 1)), "b": jnp.zeros(1)},
  ]


def hidden(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
  """The hidden layer's activations, [n, 32]."""
  return jax.nn.relu(x @ params[0]["w"] + params[0]["b"])


def predict(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
  """The predictions, [n]."""
  return (hidden(params, x) @ params[1]["w"] + params[1]["b"])[:, 0]


def mse(params: list[dict[str, jax.Array]], x: jax.Array, y: jax.Array):
  """The raw mean squared error."""
  return jnp.mean((predict(params, x) - y) ** 2)


def loss(params, x, y, loss_scale: float = RAW_LOSS) -> jax.Array:
  """The training loss: the mean squared error times ``loss_scale / 3e4``."""
  return mse(params, x, y) * (loss_scale / RAW_LOSS)


def dead_share(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
  """The share of hidden units that output 0 on every input of ``x``."""
  return jnp.mean(jnp.all(hidden(params, x) == 0, axis=0))


def constant_mse(y_train: jax.Array, y_test: jax.Array) -> jax.Array:
  """The test MSE of the best constant prediction (the training mean)."""
  return jnp.mean((y_test - jnp.mean(y_train)) ** 2)


def dataset() -> _train.Data:
  """:func:`data` for the loops of ``_train``."""
  (x, y), (x_test, y_test) = data()
  return _train.Data(
    x,
    y,
    x_test,
    y_test,
    label=f"a synthetic regression ({NUM_TRAIN} train / {NUM_TEST} test)",
  )


def metrics(params, data: _train.Data) -> dict[str, jax.Array]:
  """The raw test MSE, its R^2, and the hidden units dead on the training set.

  R^2 is against the best constant prediction: about 0 for a student that
  predicts the targets' mean.
  """
  test_mse = mse(params, data.x_test, data.y_test)
  return {
    "test_loss": test_mse,
    "r2": 1 - test_mse / constant_mse(data.y_train, data.y_test),
    "dead": dead_share(params, data.x_train),
  }


@functools.cache
def task(loss_scale: float) -> _train.Task:
  """The student trained on :func:`loss` at ``loss_scale`` (one per scale)."""
  return _train.Task(
    f"regression MLP 12-32-1, loss scale {loss_scale:g}",
    init,
    lambda params, x, y: loss(params, x, y, loss_scale),
    metrics,
  )
