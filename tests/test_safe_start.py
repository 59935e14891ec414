"""From any starting learning rate up to 100, no destructive first steps.

A ReLU network trained from a far too large learning rate can lose most of its
units in the first steps, before the guard reacts: before the scale search,
``hillclimb_adam(1.0)`` left one seed of a small MLP with 88% dead units. The
first update now scores thirteen scales of lr0, so every lr0 starts from the
same searched learning rate.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn import datasets as sk_datasets

import optax_hillclimb as ohc

LR0S = (1e-6, 1e-2, 1.0, 100.0)


def digits():
  """sklearn's bundled 8x8 digits, 1437 train / 360 test, inputs in [0, 1]."""
  x, y = sk_datasets.load_digits(return_X_y=True)
  order = np.random.default_rng(0).permutation(len(y))
  x, y = jnp.asarray(x[order] / 16.0, jnp.float32), jnp.asarray(y[order])
  return (x[:1437], y[:1437]), (x[1437:], y[1437:])


def init(key):
  keys = jax.random.split(key, 2)
  he = lambda k, shape: jax.random.normal(k, shape) * np.sqrt(2 / shape[0])
  return [
    {"w": he(keys[0], (64, 64)), "b": jnp.zeros(64)},
    {"w": he(keys[1], (64, 10)), "b": jnp.zeros(10)},
  ]


def hidden(params, x):
  return jax.nn.relu(x @ params[0]["w"] + params[0]["b"])


def loss(params, x, y):
  logits = hidden(params, x) @ params[1]["w"] + params[1]["b"]
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(opt, seed, epochs=3, batch=64):
  (x, y), test = digits()
  params = init(jax.random.key(seed))
  steps = len(y) // batch
  order = jnp.concatenate(
    [
      jax.random.permutation(k, len(y))[: steps * batch]
      for k in jax.random.split(jax.random.key(seed), epochs)
    ]
  ).reshape(-1, batch)

  def step(carry, idx):
    params, state = carry
    bx, by = x[idx], y[idx]
    value, grads = jax.value_and_grad(loss)(params, bx, by)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value, x=bx, y=by
    )
    params = optax.apply_updates(params, updates)
    return (params, state), loss(params, bx, by) / value

  (params, _), growth = jax.jit(lambda c, o: jax.lax.scan(step, c, o))(
    (params, opt.init(params)), order
  )
  test_x, test_y = test
  logits = hidden(params, test_x) @ params[1]["w"] + params[1]["b"]
  accuracy = float(jnp.mean(jnp.argmax(logits, -1) == test_y))
  dead = float(jnp.mean(jnp.all(hidden(params, x) == 0, axis=0)))
  return accuracy, dead, float(jnp.max(growth))


@pytest.mark.parametrize("make", [ohc.hillclimb, ohc.hillclimb_adam])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_lr0_up_to_100_trains_without_destroying_units(make, seed):
  results = {lr0: train(make(lr0), seed) for lr0 in LR0S}
  for lr0, (accuracy, dead, growth) in results.items():
    assert accuracy > 0.9, (lr0, results)
    assert dead < 0.35, (lr0, results)
    # No accepted step more than doubles its batch's loss (the guard's bound).
    assert growth <= 2.0 + 1e-6, (lr0, results)
