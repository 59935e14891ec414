"""Parameters sharded over one mesh axis, the batch over another (8 devices).

A 2 x 4 mesh: the batch is split over "batch", every weight over "fsdp", and
the loss works on the weight shards as they are (its contraction over a
sharded dimension sums partial products across devices), so a step never
needs a whole weight on one device. The optimizer must keep it that way: its
state sharded like the parameters, and its probes evaluating candidates that
stay sharded.

The memory is measured in a subprocess, where XLA_FLAGS also sets
``--xla_cpu_experimental_ynn_fusion_type=`` (empty): otherwise XLA:CPU's
``ynn_fusion`` scratch is missing from ``memory_analysis()``.
"""

import functools
import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb

NUM_DEVICES = 8
IN, HIDDEN, OUT, BATCH = 512, 1024, 512, 16  # 4.2 MB of float32 parameters
LEARNING_RATE = 0.1


# Long (compiles sharded training steps and measures their memory): the README's
# test command leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


def make_mesh():
  return jax.make_mesh(
    (2, 4), ("batch", "fsdp"), axis_types=(AxisType.Explicit,) * 2
  )


def init_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "w1": jax.random.normal(k1, (IN, HIDDEN), out_sharding=P(None, "fsdp"))
    / IN**0.5,
    "b1": jnp.zeros(HIDDEN, out_sharding=P("fsdp")),
    "w2": jax.random.normal(k2, (HIDDEN, OUT), out_sharding=P("fsdp", None))
    / HIDDEN**0.5,
    # One small replicated leaf: shardings are kept leaf by leaf.
    "b2": jnp.zeros(OUT, out_sharding=P()),
  }


def make_batch(key):
  kx, ky = jax.random.split(key)
  x = jax.random.normal(kx, (BATCH, IN), out_sharding=P("batch", None))
  y = jax.random.normal(ky, (BATCH, OUT), out_sharding=P("batch", None))
  return x, y


def loss_fn(params, x, y):
  hidden = jnp.tanh(x @ params["w1"] + params["b1"])  # [batch@batch, @fsdp]
  # Contracts the dimension sharded over "fsdp": the partial products are
  # summed across devices; w2 is never gathered.
  out = jnp.matmul(hidden, params["w2"], out_sharding=P("batch", None))
  return jnp.mean((out + params["b2"] - y) ** 2)


def gathering(loss):
  """``loss`` evaluated on parameters gathered whole onto every device."""

  def gathered_loss(params, x, y):
    params = jax.tree.map(lambda p: jax.sharding.reshard(p, P()), params)
    return loss(params, x, y)

  return gathered_loss


def train_step(opt, value_fn=None):
  def step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    if value_fn is None:  # a plain optax optimizer
      updates, opt_state = opt.update(grads, opt_state, params)
    else:
      updates, opt_state = opt.update(
        grads, opt_state, params, value_fn=value_fn, value=loss, x=x, y=y
      )
    return optax.apply_updates(params, updates), opt_state

  return step


def per_device_bytes(tree):
  return sum(
    math.prod(leaf.sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
    for leaf in jax.tree.leaves(tree)
  )


def shardings(tree):
  return jax.tree.map(lambda leaf: leaf.sharding, tree)


def measure_memory():
  """Per-device temporary bytes of one training step, by optimizer."""
  hillclimb = optax_hillclimb.hillclimb(LEARNING_RATE, probe="sequential")
  variants = {
    "sgd": (optax.sgd(LEARNING_RATE), None),
    "hillclimb": (hillclimb, loss_fn),
    # The control: the same step, with probes that gather the parameters.
    "hillclimb_gathering": (hillclimb, gathering(loss_fn)),
  }
  with jax.set_mesh(make_mesh()):
    params = init_params(jax.random.key(0))
    x, y = make_batch(jax.random.key(1))
    result = {
      "param_bytes": sum(leaf.nbytes for leaf in jax.tree.leaves(params)),
      "param_bytes_per_device": per_device_bytes(params),
    }
    for name, (opt, value_fn) in variants.items():
      step = jax.jit(train_step(opt, value_fn))
      compiled = step.lower(params, opt.init(params), x, y).compile()
      result[name] = compiled.memory_analysis().temp_size_in_bytes
  return result


@pytest.fixture
def mesh():
  if jax.device_count() < NUM_DEVICES:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")
  mesh = make_mesh()
  with jax.set_mesh(mesh):
    yield mesh


@pytest.mark.parametrize("probe", ["sequential", "vmap"])
@pytest.mark.usefixtures("mesh")
def test_init_and_update_keep_every_state_leafs_sharding(probe):
  params = init_params(jax.random.key(0))
  x, y = make_batch(jax.random.key(1))
  # The weights really are split: a device holds about a quarter of them.
  assert per_device_bytes(params) < 0.3 * sum(
    leaf.nbytes for leaf in jax.tree.leaves(params)
  )
  opt = optax_hillclimb.hillclimb(LEARNING_RATE, probe=probe)
  state = opt.init(params)
  types = jax.tree.map(jax.typeof, state)
  state_shardings = shardings(state)
  test_utils.assert_trees_all_equal(
    types, jax.tree.map(jax.typeof, jax.jit(opt.init)(params))
  )
  # The moving average is sharded like the parameters, not replicated.
  assert shardings(state[0].ema) == shardings(params)
  update = jax.jit(functools.partial(opt.update, value_fn=loss_fn))
  grads = jax.jit(jax.grad(loss_fn))(params, x, y)
  # The first update runs the scale search, the second a probe step.
  for _ in range(2):
    updates, state = update(grads, state, params, x=x, y=y)
    test_utils.assert_trees_all_equal(types, jax.tree.map(jax.typeof, state))
    assert shardings(state) == state_shardings
    assert jax.tree.map(jax.typeof, updates) == jax.tree.map(jax.typeof, params)
    assert shardings(updates) == shardings(params)
    params = optax.apply_updates(params, updates)
  assert float(optax_hillclimb.get_learning_rate(state)) != LEARNING_RATE


@pytest.fixture(scope="module")
def memory(tmp_path_factory):
  out = tmp_path_factory.mktemp("fsdp_memory") / "memory.json"
  env = dict(os.environ)
  env["XLA_FLAGS"] = (
    f"--xla_force_host_platform_device_count={NUM_DEVICES}"
    " --xla_cpu_experimental_ynn_fusion_type="
  )
  env["JAX_PLATFORMS"] = "cpu"
  repo = pathlib.Path(__file__).resolve().parent.parent
  env["PYTHONPATH"] = os.pathsep.join(
    [str(repo), *filter(None, [env.get("PYTHONPATH")])]
  )
  result = subprocess.run(
    [sys.executable, __file__, str(out)],
    capture_output=True, text=True, env=env, check=False, timeout=120,
  )  # fmt: skip
  if result.returncode != 0:
    pytest.fail(result.stdout + result.stderr, pytrace=False)
  return json.loads(out.read_text())


# The rule's own small buffers (the guard's running average, the first
# update's norms, counters): kilobytes, where gathering costs megabytes.
SCALAR_SLACK = 16 * 1024


def bound(memory):
  """SGD's step plus one copy of the parameter shards (and scalars)."""
  return memory["sgd"] + memory["param_bytes_per_device"] + SCALAR_SLACK


def test_sequential_probes_never_gather_the_parameters(memory):
  # All the parameters on one device would not fit within the bound...
  assert memory["param_bytes"] > 1.5 * bound(memory), memory
  # ...and a step that probes stays within it.
  assert memory["hillclimb"] <= bound(memory), memory


def test_memory_bound_catches_probes_that_gather(memory):
  # The control for the test above: the same step, with value_fn gathering
  # the parameters, breaks the bound.
  assert memory["hillclimb_gathering"] > bound(memory), memory


if __name__ == "__main__":
  # The subprocess of the memory fixture: XLA_FLAGS is set by the caller.
  assert jax.device_count() == NUM_DEVICES
  pathlib.Path(sys.argv[1]).write_text(json.dumps(measure_memory()))
