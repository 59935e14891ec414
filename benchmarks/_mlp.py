"""The reference model: an MLP with one hidden layer of 20 units."""

import jax
import jax.numpy as jnp
import optax

NUM_INPUTS = 28 * 28
NUM_HIDDEN = 20
NUM_CLASSES = 10


def init(key: jax.Array) -> dict[str, jax.Array]:
  """Returns MLP parameters, initialised as PyTorch's ``nn.Linear`` does.

  Weights and biases are uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``: the
  blog post most likely used PyTorch defaults, and the scale of the first layer
  decides how raw 0-255 inputs behave.

  Args:
    key: a PRNG key.

  Returns:
    A dict with ``w1`` [784, 20], ``b1`` [20], ``w2`` [20, 10], ``b2`` [10].
  """
  k1, k2, k3, k4 = jax.random.split(key, 4)

  def uniform(k, shape, fan_in):
    bound = 1.0 / jnp.sqrt(fan_in)
    return jax.random.uniform(k, shape, jnp.float32, -bound, bound)

  return {
    "w1": uniform(k1, (NUM_INPUTS, NUM_HIDDEN), NUM_INPUTS),
    "b1": uniform(k2, (NUM_HIDDEN,), NUM_INPUTS),
    "w2": uniform(k3, (NUM_HIDDEN, NUM_CLASSES), NUM_HIDDEN),
    "b2": uniform(k4, (NUM_CLASSES,), NUM_HIDDEN),
  }


def logits(params: dict[str, jax.Array], images: jax.Array) -> jax.Array:
  """Returns the logits for ``images`` of shape [batch, 784]."""
  hidden = jax.nn.relu(images @ params["w1"] + params["b1"])
  return hidden @ params["w2"] + params["b2"]


def loss(
  params: dict[str, jax.Array], images: jax.Array, labels: jax.Array
) -> jax.Array:
  """Mean softmax cross-entropy over the batch."""
  return optax.softmax_cross_entropy_with_integer_labels(
    logits(params, images), labels
  ).mean()


def evaluate(
  params: dict[str, jax.Array], images: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Returns ``(accuracy, mean loss)``; non-finite parameters score as chance.

  A diverged network has NaN logits, whose argmax is class 0 and whose loss is
  NaN; the accuracy then counts class 0, as the post's 11.2% rows do.
  """
  out = logits(params, images)
  accuracy = jnp.mean(jnp.argmax(out, axis=-1) == labels)
  mean_loss = optax.softmax_cross_entropy_with_integer_labels(
    out, labels
  ).mean()
  return accuracy, mean_loss
