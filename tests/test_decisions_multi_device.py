"""The cheaper decisions under pmap: axis_name keeps replicas identical."""

import functools

import jax
import jax.numpy as jnp
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

NUM_DEVICES = 8


@pytest.fixture(autouse=True)
def _needs_eight_devices():
  if jax.device_count() < NUM_DEVICES:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")


def regression_loss(params, x, y):
  return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def train_with_pmap(decision, axis_name, num_steps=20):
  opt = ohc.hillclimb(0.05, lrlr=0.1, axis_name=axis_name, decision=decision)

  @functools.partial(jax.pmap, axis_name="devices")
  def step(params, state, x, y):
    value, grads = jax.value_and_grad(regression_loss)(params, x, y)
    # Each replica keeps its own gradient: only axis_name can agree on g.u.
    updates, state = opt.update(
      jax.lax.pmean(grads, "devices"),
      state,
      params,
      value_fn=regression_loss,
      value=value,
      grad=grads,
      x=x,
      y=y,
    )
    return optax.apply_updates(params, updates), state

  params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
  params = jax.tree.map(
    lambda x: jnp.broadcast_to(x, (NUM_DEVICES, *x.shape)), params
  )
  state = jax.pmap(opt.init)(params)
  kx, kw, kn = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (NUM_DEVICES, 16, 5))
  y = x @ jax.random.normal(kw, (5,))
  y += 0.5 * jax.random.normal(kn, (NUM_DEVICES, 16))
  for _ in range(num_steps):
    params, state = step(params, state, x, y)
  return params, state


@pytest.mark.parametrize("decision", ["one_probe", "no_probe"])
def test_axis_name_keeps_replicas_identical(decision):
  params, state = train_with_pmap(decision, axis_name="devices")
  learning_rates = ohc.get_learning_rate(state)
  assert len(set(learning_rates.tolist())) == 1
  for leaf in jax.tree.leaves(params):
    test_utils.assert_trees_all_equal(
      leaf, jnp.broadcast_to(leaf[0], leaf.shape)
    )
  assert learning_rates[0] != pytest.approx(0.05)


@pytest.mark.parametrize("decision", ["one_probe", "no_probe"])
def test_without_axis_name_replicas_drift_apart(decision):
  # The control: each replica decides on its own loss and gradient.
  _, state = train_with_pmap(decision, axis_name=None)
  assert len(set(ohc.get_learning_rate(state).tolist())) > 1
