"""One process of the multi-process training run by tests/test_multi_process.py.

    python tests/_multi_process_worker.py PROCESS_ID NUM_PROCESSES PORT OUT

Each of NUM_PROCESSES processes sees its share of 8 CPU devices (the caller
sets ``XLA_FLAGS=--xla_force_host_platform_device_count=...``). They join one
8-device mesh through ``jax.distributed`` on ``127.0.0.1:PORT`` and train the
same MLP twice, under sharded ``jax.jit`` and under ``jax.shard_map`` with
``axis_name``, each process feeding its own rows of every batch. With
NUM_PROCESSES=1 the same code, without ``jax.distributed``, is the reference
run on one process. Every process writes what its devices hold of the
parameters, the optimizer state and the losses to OUT (``.npz``).

docs/multi_device.md includes the regions between ``# [START name]`` and
``# [END name]`` markers.
"""

import argparse
import functools
import os
import sys
import traceback

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

import optax_hillclimb

NUM_DEVICES = 8
GLOBAL_BATCH = 64  # 8 rows per device
NUM_FEATURES = 8
HIDDEN = 16
NUM_STEPS = 30
LEARNING_RATE = 1e-2


def mlp_loss(params, x, y):
  hidden = jnp.tanh(x @ params["w1"] + params["b1"])
  prediction = hidden @ params["w2"] + params["b2"]
  return jnp.mean((prediction[:, 0] - y) ** 2)


def init_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "w1": jax.random.normal(k1, (NUM_FEATURES, HIDDEN)) / NUM_FEATURES**0.5,
    "b1": jnp.zeros(HIDDEN),
    "w2": jax.random.normal(k2, (HIDDEN, 1)) / HIDDEN**0.5,
    "b2": jnp.zeros(1),
  }


def global_batches():
  """NUM_STEPS batches of a noisy nonlinear regression, the same everywhere.

  numpy with a fixed seed, so every process builds the same global batches
  and then keeps its own rows.
  """
  rng = np.random.default_rng(0)
  x = rng.normal(size=(NUM_STEPS, GLOBAL_BATCH, NUM_FEATURES))
  teacher = rng.normal(size=NUM_FEATURES)
  y = np.sin(x @ teacher) + 0.1 * rng.normal(size=(NUM_STEPS, GLOBAL_BATCH))
  return x.astype(np.float32), y.astype(np.float32)


def local_rows(sharding, global_batch):
  """The rows of a batch sharded by ``sharding`` that this process holds."""
  indices = sharding.addressable_devices_indices_map((global_batch,))
  starts = sorted({index[0].start or 0 for index in indices.values()})
  stops = sorted({index[0].stop or global_batch for index in indices.values()})
  # make_array_from_process_local_data takes one contiguous block per process.
  assert stops[-1] - starts[0] == global_batch // jax.process_count()
  return slice(starts[0], stops[-1])


def run_training(mesh, opt, train_step, batches):
  """Replicated parameters and state, then one train_step per batch."""
  # [START multi_process_loop]
  # Built inside jit, replicated: every process holds the same values.
  params = jax.jit(init_params, out_shardings=NamedSharding(mesh, P()))(
    jax.random.key(0)
  )
  opt_state = jax.jit(opt.init)(params)
  losses = []
  for x, y in batches():
    params, opt_state, loss = train_step(params, opt_state, x, y)
    losses.append(loss)
  # [END multi_process_loop]
  return params, opt_state, losses


def train_sharded_jit(mesh, batches):
  # [START multi_process_jit]
  # No axis_name: under jit the loss of the global batch is one value, and
  # XLA averages across devices and processes alike.
  opt = optax_hillclimb.hillclimb(LEARNING_RATE, lrlr=0.1)

  @jax.jit
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(mlp_loss)(params, x, y)
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=mlp_loss, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state, loss

  return run_training(mesh, opt, train_step, batches)
  # [END multi_process_jit]


def train_shard_map(mesh, batches):
  # [START multi_process_shard_map]
  # Per-device losses: axis_name averages the probe losses and value over
  # the devices of every process, so all of them take the same decision.
  opt = optax_hillclimb.hillclimb(LEARNING_RATE, lrlr=0.1, axis_name="batch")

  @jax.jit
  @functools.partial(
    jax.shard_map,
    mesh=mesh,
    in_specs=(P(), P(), P("batch"), P("batch")),
    out_specs=(P(), P(), P()),
  )
  def train_step(params, opt_state, x, y):
    # Marking the parameters as varying over the axis makes the gradient the
    # gradient of this device's loss (of replicated parameters, shard_map
    # would sum it over devices); pmean then averages it.
    local_params = jax.lax.pcast(params, "batch", to="varying")
    loss, grads = jax.value_and_grad(mlp_loss)(local_params, x, y)
    grads = jax.lax.pmean(grads, "batch")
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=mlp_loss, value=loss, x=x, y=y
    )
    params = optax.apply_updates(params, updates)
    return params, opt_state, jax.lax.pmean(loss, "batch")

  return run_training(mesh, opt, train_step, batches)
  # [END multi_process_shard_map]


def local_copies(tree, prefix):
  """This process's copies of replicated arrays: ``{name: [copies, ...]}``."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    # Replicated, so each local shard is a whole copy of the value.
    assert leaf.sharding.is_fully_replicated, (path, leaf.sharding)
    name = prefix + jax.tree_util.keystr(path)
    out[name] = np.stack([np.asarray(s.data) for s in leaf.addressable_shards])
  return out


def main(argv):
  parser = argparse.ArgumentParser()
  parser.add_argument("process_id", type=int)
  parser.add_argument("num_processes", type=int)
  parser.add_argument("port", type=int)
  parser.add_argument("out")
  parser.add_argument(
    "--fail", action="store_true", help="raise after joining (tests the test)"
  )
  args = parser.parse_args(argv)

  # [START multi_process_setup]
  # CPU devices of different processes talk through gloo; set it before JAX
  # starts its backend.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if args.num_processes > 1:
    # Every process calls this with its own process_id; process 0 hosts the
    # coordinator (on several hosts: host 0's address).
    jax.distributed.initialize(
      coordinator_address=f"127.0.0.1:{args.port}",
      num_processes=args.num_processes,
      process_id=args.process_id,
    )
  # One mesh over the devices of all processes.
  mesh = jax.make_mesh(
    (jax.device_count(),), ("batch",), axis_types=(AxisType.Auto,)
  )
  batch_sharding = NamedSharding(mesh, P("batch"))
  rows = local_rows(batch_sharding, GLOBAL_BATCH)

  def batches():
    xs, ys = global_batches()
    for x, y in zip(xs, ys, strict=True):
      # Each process hands over only its own rows of the global batch.
      yield (
        jax.make_array_from_process_local_data(
          batch_sharding, x[rows], (GLOBAL_BATCH, NUM_FEATURES)
        ),
        jax.make_array_from_process_local_data(
          batch_sharding, y[rows], (GLOBAL_BATCH,)
        ),
      )

  # [END multi_process_setup]
  print(
    f"process {jax.process_index()} of {jax.process_count()}: "
    f"{jax.local_device_count()} of {jax.device_count()} devices, "
    f"rows {rows.start}:{rows.stop}",
    flush=True,
  )
  assert jax.process_count() == args.num_processes
  assert jax.device_count() == NUM_DEVICES
  if args.fail:
    raise RuntimeError(f"process {args.process_id} fails on purpose")

  results = {}
  trainers = {"jit": train_sharded_jit, "shard_map": train_shard_map}
  for name, train in trainers.items():
    params, opt_state, losses = train(mesh, batches)
    results |= local_copies(params, f"{name}/params")
    results |= local_copies(opt_state, f"{name}/opt_state")
    results |= local_copies(
      optax_hillclimb.get_learning_rate(opt_state), f"{name}/learning_rate"
    )
    results |= local_copies(jnp.stack(losses), f"{name}/losses")
    print(f"{name}: learning rate {results[f'{name}/learning_rate'][0]}")
  np.savez(args.out, **results)


if __name__ == "__main__":
  try:
    main(sys.argv[1:])
  except BaseException:
    traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    # A plain exit would wait in jax.distributed's exit barrier for the other
    # processes, which may be waiting on this one in a collective: both would
    # hang until gloo's timeout. Leave now, so that the failure shows at once.
    os._exit(1)
