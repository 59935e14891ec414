"""pmap with per-device data, and jit over sharded arrays (8 CPU devices).

Under pmap, each decision rule (two probes, the stretch) with and without
axis_name.
"""

import functools

import _rules
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


def per_device_data():
  kx, kw, kn = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (NUM_DEVICES, 16, 5))
  w = jax.random.normal(kw, (5,))
  # Each device sees its own noisy batch, so its probe losses differ.
  y = x @ w + 0.5 * jax.random.normal(kn, (NUM_DEVICES, 16))
  return x, y


def train_with_pmap(axis_name, decision="two_probes", num_steps=30):
  every_step = {} if decision == "stretch" else _rules.EVERY_STEP
  settings = dict(lrlr=0.1, axis_name=axis_name, decision=decision)
  opt = ohc.hillclimb(0.05, **(every_step | settings))

  @functools.partial(jax.pmap, axis_name="devices")
  def step(params, state, x, y):
    value, grads = jax.value_and_grad(regression_loss)(params, x, y)
    # Each replica scores its own batch: only axis_name can make the
    # replicas' decisions agree.
    updates, state = opt.update(
      jax.lax.pmean(grads, "devices"),
      state,
      params,
      value_fn=regression_loss,
      value=value,
      x=x,
      y=y,
    )
    return optax.apply_updates(params, updates), state

  params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
  params = jax.tree.map(
    lambda x: jnp.broadcast_to(x, (NUM_DEVICES, *x.shape)), params
  )
  state = jax.pmap(opt.init)(params)
  x, y = per_device_data()
  for _ in range(num_steps):
    params, state = step(params, state, x, y)
  return params, state


# The windows of "stretch" (1, 2, 4, 8 and 16 steps) decide 5 times in 30.
DECISIONS = [("two_probes", 30), ("stretch", 30)]


@pytest.mark.parametrize(("decision", "num_steps"), DECISIONS)
def test_pmap_with_axis_name_keeps_replicas_identical(decision, num_steps):
  params, state = train_with_pmap("devices", decision, num_steps)
  learning_rates = ohc.get_learning_rate(state)
  assert learning_rates.shape == (NUM_DEVICES,)
  assert len(set(learning_rates.tolist())) == 1
  for leaf in jax.tree.leaves(params):
    test_utils.assert_trees_all_equal(
      leaf, jnp.broadcast_to(leaf[0], leaf.shape)
    )
  assert learning_rates[0] != pytest.approx(0.05)


@pytest.mark.slow  # the control of the test above
@pytest.mark.parametrize(("decision", "num_steps"), DECISIONS)
def test_pmap_without_axis_name_lets_replicas_drift_apart(decision, num_steps):
  # The control for the test above: with per-device probe losses (and
  # gradients), replicas take different decisions.
  _, state = train_with_pmap(None, decision, num_steps)
  assert len(set(ohc.get_learning_rate(state).tolist())) > 1


def test_sharded_jit_preserves_state_shardings():
  if not hasattr(jax, "set_mesh"):
    pytest.skip("explicit sharding (jax.set_mesh) needs a newer jax")
  mesh = jax.make_mesh(
    (NUM_DEVICES,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,)
  )
  sharding = jax.sharding.NamedSharding(mesh, jax.P(None, "x"))
  opt = ohc.hillclimb(0.1)
  loss = lambda p: jnp.sum((p.astype(jnp.float32) - 1.0) ** 2)
  with jax.set_mesh(mesh):
    params = jnp.zeros((2, 8, 4), dtype=jnp.float16, out_sharding=sharding)
    state0 = opt.init(params)
    state1 = jax.jit(opt.init)(params)
    test_utils.assert_trees_all_equal(
      jax.tree.map(jax.typeof, state0), jax.tree.map(jax.typeof, state1)
    )
    update = jax.jit(functools.partial(opt.update, value_fn=loss))
    grads = jax.grad(loss)(params).astype(params.dtype)
    # The first update runs the scale search (it picks 10^-0.75), the second
    # decides on the window of one step: both keep every leaf's type, the
    # window's sum of steps included.
    state2 = state0
    for _ in range(2):
      updates, state2 = update(grads, state2, params)
      test_utils.assert_trees_all_equal(
        jax.tree.map(jax.typeof, state0), jax.tree.map(jax.typeof, state2)
      )
      assert jax.typeof(updates) == jax.typeof(params)
    picked = 10**-0.75
    decided = float(ohc.get_learning_rate(state2))
    assert decided != pytest.approx(picked)
    assert decided in (
      pytest.approx(picked * 1.1),
      pytest.approx(picked * 0.9),
      pytest.approx(picked * 0.5),  # the guard's back-off
    )
