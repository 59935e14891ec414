"""climb on random problems (properties) and in a real, short training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hillclimb as ohc


def random_problem(rng):
  """A small tanh regression with random data and a random loss scale."""
  dim = int(rng.integers(1, 5))
  w0 = jnp.asarray(rng.normal(size=(dim,)), jnp.float32)
  x = jnp.asarray(rng.normal(size=(8, dim)), jnp.float32)
  y = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
  scale = float(10.0 ** rng.uniform(-2, 2))

  def loss(w):
    return scale * jnp.mean((jnp.tanh(x @ w) * 3 - y) ** 2)

  return w0, loss


@pytest.mark.parametrize("seed", range(6))
def test_random_settings_keep_values_finite_and_in_bounds(seed):
  rng = np.random.default_rng(seed)
  params, loss = random_problem(rng)
  lr_bounds = (
    float(10.0 ** rng.uniform(-6, -3)),
    float(10 ** rng.uniform(0, 2)),
  )
  m_bounds = (float(rng.uniform(0, 0.3)), float(rng.uniform(0.5, 0.99)))
  lr0 = float(np.sqrt(lr_bounds[0] * lr_bounds[1]))
  m0 = float(rng.uniform(*m_bounds))
  opt = ohc.climb(
    optax.inject_hyperparams(optax.sgd)(learning_rate=lr0, momentum=m0),
    lrlr=float(rng.uniform(0.01, 0.9)),
    every_k=int(rng.integers(1, 3)),
    layout=["cycle", "all"][int(rng.integers(2))],
    bounds={"learning_rate": lr_bounds, "momentum": m_bounds},
    guard=bool(rng.integers(2)),
    lrlr_growth=float(rng.uniform(1, 3)),
    tie_break=["up", "down"][int(rng.integers(2))],
    scale_search=[None, (0.1, 1.0, 10.0)][int(rng.integers(2))],
  )

  @jax.jit
  def step(params, state):
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value
    )
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  for _ in range(25):
    params, state = step(params, state)
    hp = ohc.get_hyperparams(state)
    lr, m = float(hp["learning_rate"]), float(hp["momentum"])
    assert lr_bounds[0] <= lr * (1 + 1e-6)
    assert lr <= lr_bounds[1] * (1 + 1e-6)
    assert m_bounds[0] <= m * (1 + 1e-6) + 1e-7
    assert m <= m_bounds[1] * (1 + 1e-6)
    assert np.all(np.isfinite(params))
    for name in ("learning_rate", "momentum"):
      inner = state.inner_state.hyperparams[name]
      assert float(inner) == pytest.approx(float(hp[name]), rel=1e-6)


@pytest.mark.slow
def test_an_mlp_learns_with_learning_rate_and_momentum_climbed():
  # Random inputs labelled by a random linear teacher, 3 classes; a small MLP
  # trained 150 steps from lr0 = 1e-4 and momentum 0 reaches 90% accuracy.
  kx, kw, kp = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (512, 8))
  y = jnp.argmax(x @ jax.random.normal(kw, (8, 3)), axis=-1)
  k1, k2 = jax.random.split(kp)
  params = {
    "w1": jax.random.normal(k1, (8, 32)) / jnp.sqrt(8.0),
    "w2": jax.random.normal(k2, (32, 3)) / jnp.sqrt(32.0),
  }

  def logits(p, x):
    return jnp.tanh(x @ p["w1"]) @ p["w2"]

  def loss(p, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(
      logits(p, x), y
    ).mean()

  opt = ohc.climb(
    optax.inject_hyperparams(optax.sgd)(learning_rate=1e-4, momentum=0.0),
    lrlr=0.1,
  )

  @jax.jit
  def step(params, state, x, y):
    value, grads = jax.value_and_grad(loss)(params, x, y)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value, x=x, y=y
    )
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  for i in range(150):
    batch = slice(64 * (i % 8), 64 * (i % 8 + 1))
    params, state = step(params, state, x[batch], y[batch])
  accuracy = float(jnp.mean(jnp.argmax(logits(params, x), -1) == y))
  assert accuracy > 0.9, accuracy
  hp = ohc.get_hyperparams(state)
  assert float(hp["learning_rate"]) > 1e-3  # climbed from 1e-4
  assert float(hp["momentum"]) > 0.0  # and momentum from 0
