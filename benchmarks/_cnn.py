"""Flax's MNIST CNN, trained for a few epochs with any optax transformation."""

from collections.abc import Callable

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class CNN(nn.Module):
  """Flax's ``examples/mnist`` CNN: two conv + pool blocks, two dense layers."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(features=32, kernel_size=(3, 3))(x)
    x = nn.avg_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
    x = nn.Conv(features=64, kernel_size=(3, 3))(x)
    x = nn.avg_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(features=256)(x))
    return nn.Dense(features=10)(x)


def train(
  make_opt: Callable[[], optax.GradientTransformation],
  images: np.ndarray,
  labels: np.ndarray,
  test_images: np.ndarray,
  test_labels: np.ndarray,
  *,
  epochs: int = 3,
  batch_size: int = 128,
  seed: int = 0,
  learning_rate: Callable | None = None,
) -> dict[str, float]:
  """Trains the CNN and returns its final test accuracy and learning rate.

  Args:
    make_opt: builds the optimizer; its ``update`` receives ``value_fn`` (the
      batch loss) and ``value``, which plain transformations ignore.
    images: training images, float32 [N, 28, 28, 1].
    labels: training labels, int32 [N].
    test_images: test images.
    test_labels: test labels.
    epochs: passes over the training set.
    batch_size: examples per step (the remainder batch is dropped).
    seed: seed of the initialisation and of the batch order.
    learning_rate: optional ``state -> lr`` to report the final learning rate.

  Returns:
    ``{"accuracy", "final_lr", "steps"}``.
  """
  model = CNN()
  key = jax.random.key(seed)
  params = model.init(key, jnp.zeros((1, 28, 28, 1)))["params"]
  opt = optax.with_extra_args_support(make_opt())
  state = opt.init(params)
  x, y = jnp.asarray(images), jnp.asarray(labels)
  steps_per_epoch = len(labels) // batch_size

  def loss_fn(p, xb, yb):
    logits = model.apply({"params": p}, xb)
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  @jax.jit
  def epoch(params, state, order):
    def step(carry, idx):
      params, state = carry
      xb, yb = x[idx], y[idx]

      def batch_loss(p):
        return loss_fn(p, xb, yb)

      value, grads = jax.value_and_grad(batch_loss)(params)
      updates, state = opt.update(
        grads, state, params, value_fn=batch_loss, value=value
      )
      return (optax.apply_updates(params, updates), state), value

    (params, state), _ = jax.lax.scan(step, (params, state), order)
    return params, state

  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = rng.permutation(len(labels))[: steps_per_epoch * batch_size]
    params, state = epoch(
      params, state, order.reshape(steps_per_epoch, batch_size)
    )

  @jax.jit
  def correct(params, xb, yb):
    return jnp.sum(jnp.argmax(model.apply({"params": params}, xb), -1) == yb)

  hits = sum(
    int(correct(params, test_images[i : i + 1000], test_labels[i : i + 1000]))
    for i in range(0, len(test_labels), 1000)
  )
  return {
    "accuracy": hits / len(test_labels),
    "final_lr": float(learning_rate(state)) if learning_rate else float("nan"),
    "steps": epochs * steps_per_epoch,
  }
