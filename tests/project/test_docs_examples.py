"""The code shown in the documentation, run as tests.

The pages in docs/ include the regions between ``# [START name]`` and
``# [END name]`` markers literally (``literalinclude``), so what a reader copies
is what runs here. Each example trains a little, then the test checks that it
learned and that the learning rate moved.
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import optax_hillclimb

NUM_DEVICES = 8


def classification_data(num_examples=256, num_features=8, num_classes=3):
  """Random inputs labelled by a random linear teacher."""
  kx, kw = jax.random.split(jax.random.key(42))
  x = jax.random.normal(kx, (num_examples, num_features))
  teacher = jax.random.normal(kw, (num_features, num_classes))
  y = jnp.argmax(x @ teacher, axis=-1)
  return x, y


def quickstart_example():
  # [START quickstart]
  import jax
  import jax.numpy as jnp
  import optax

  import optax_hillclimb

  def init_mlp(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
      {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
      for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]

  def mlp(params, x):
    for layer in params[:-1]:
      x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]

  def loss_fn(params, x, y):
    logits = mlp(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  num_steps, batch_size = 500, 32
  # The starting learning rate is a rough guess: the optimizer tunes it.
  # total_steps is the run's length, which the loop knows.
  opt = optax_hillclimb.hillclimb_adam(1e-3, total_steps=num_steps)

  @jax.jit
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    # x and y, the batch the gradient was taken on, reach value_fn because
    # they are named like its parameters; value is the loss on that batch.
    # value_fn is closed over, not passed to the jitted function.
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=loss_fn, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state, loss

  x_train, y_train = classification_data()
  params = init_mlp(jax.random.key(0), [8, 32, 3])
  opt_state = opt.init(params)
  for step in range(num_steps):
    start = step * batch_size % len(x_train)  # the next batch of 32
    x = x_train[start : start + batch_size]
    y = y_train[start : start + batch_size]
    params, opt_state, loss = train_step(params, opt_state, x, y)
    if step % 100 == 0 or step == num_steps - 1:
      lr = optax_hillclimb.get_learning_rate(opt_state)
      print(f"step {step:3d}  batch loss {loss:.3f}  learning rate {lr:.2e}")
  # [END quickstart]
  return loss_fn(params, x_train, y_train), opt_state


def test_quickstart_example_learns_and_moves_the_learning_rate(capsys):
  final_loss, opt_state = quickstart_example()
  printed = capsys.readouterr().out.splitlines()
  assert len(printed) == 6
  first_loss = float(printed[0].split()[4])
  assert final_loss < 0.1 * first_loss
  # The scale search and the decisions moved the climbed rate off the
  # starting 1e-3; the last step applied a hundredth of it.
  climbed = float(optax.tree.get(opt_state, "learning_rate"))
  assert climbed > 3e-3
  applied = float(optax_hillclimb.get_learning_rate(opt_state))
  assert applied == pytest.approx(climbed / 100, rel=1e-4)


def test_quickstart_state_holds_probe_losses():
  _, opt_state = quickstart_example()
  # [START probe_losses]
  # The hill-climbing state sits after Adam's in the chain.
  hillclimb_state = opt_state[1]
  print(hillclimb_state.count, hillclimb_state.learning_rate)
  print(hillclimb_state.loss_up, hillclimb_state.loss_down)
  print(hillclimb_state.num_rejected)
  # [END probe_losses]
  assert isinstance(hillclimb_state, optax_hillclimb.HillclimbState)
  assert int(hillclimb_state.count) == 500
  assert jnp.isfinite(hillclimb_state.loss_up)
  assert jnp.isfinite(hillclimb_state.loss_down)


class _Nnx:
  """Namespace for the NNX example, so Flax is imported only when it runs."""

  @staticmethod
  def example():
    # [START nnx]
    from flax import nnx
    import jax
    import optax

    import optax_hillclimb

    class MLP(nnx.Module):
      def __init__(self, din, dhidden, dout, *, rngs):
        self.hidden = nnx.Linear(din, dhidden, rngs=rngs)
        self.out = nnx.Linear(dhidden, dout, rngs=rngs)

      def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))

    def loss_fn(model, x, y):
      logits = model(x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    model = MLP(8, 32, 3, rngs=nnx.Rngs(0))
    tx = optax_hillclimb.hillclimb(learning_rate=1e-2)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
      # The probes need the loss as a function of the parameters alone:
      # rebuild a throwaway model from the probe parameters and the rest of
      # the state, as pure arrays (live Variables cannot enter lax.map/vmap).
      graphdef, _, rest = nnx.split(model, nnx.Param, ...)
      rest = nnx.as_pure(rest)

      def value_fn(params, x, y):
        return loss_fn(nnx.merge(graphdef, params, rest), x, y)

      loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
      # nnx.Optimizer.update forwards keyword arguments to tx.update, which
      # passes x and y on to value_fn.
      optimizer.update(model, grads, value_fn=value_fn, value=loss, x=x, y=y)
      return loss

    x, y = classification_data()
    losses = [train_step(model, optimizer, x, y) for _ in range(30)]
    lr = optax_hillclimb.get_learning_rate(optimizer.opt_state)
    # [END nnx]
    return losses, lr

  @staticmethod
  def helper_example():
    from flax import nnx

    class MLP(nnx.Module):
      def __init__(self, din, dhidden, dout, *, rngs):
        self.hidden = nnx.Linear(din, dhidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(dhidden, dout, rngs=rngs)

      def __call__(self, x):
        return self.out(self.dropout(jax.nn.relu(self.hidden(x))))

    def loss_fn(model, x, y):
      logits = model(x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    model = MLP(8, 32, 3, rngs=nnx.Rngs(0))
    tx = optax_hillclimb.hillclimb(learning_rate=1e-2)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    # [START nnx_helper]
    @nnx.jit
    def train_step(model, optimizer, x, y):
      # Before the gradient: the probes then see the dropout masks the
      # gradient sees.
      value_fn = optax_hillclimb.nnx_value_fn(model, loss_fn, x, y)
      loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
      optimizer.update(model, grads, value_fn=value_fn, value=loss)
      return loss

    # [END nnx_helper]
    x, y = classification_data()
    losses = [train_step(model, optimizer, x, y) for _ in range(30)]
    lr = optax_hillclimb.get_learning_rate(optimizer.opt_state)
    return losses, lr


class _Linen:
  """Namespace for the linen example, so Flax is imported only when it runs."""

  @staticmethod
  def example():
    # [START linen]
    import flax.linen as nn
    from flax.training import train_state
    import jax
    import optax

    import optax_hillclimb

    x, y = classification_data()

    class MLP(nn.Module):
      @nn.compact
      def __call__(self, x):
        x = jax.nn.relu(nn.Dense(32)(x))
        return nn.Dense(3)(x)

    model = MLP()
    state = train_state.TrainState.create(
      apply_fn=model.apply,
      params=model.init(jax.random.key(0), x)["params"],
      tx=optax_hillclimb.hillclimb(learning_rate=1e-2),
    )

    @jax.jit
    def train_step(state, x, y):
      def loss_fn(params):
        logits = state.apply_fn({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

      loss, grads = jax.value_and_grad(loss_fn)(state.params)
      # TrainState.apply_gradients does not forward value_fn to tx.update:
      # call the transformation yourself.
      updates, opt_state = state.tx.update(
        grads, state.opt_state, state.params, value_fn=loss_fn, value=loss
      )
      state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
      )
      return state, loss

    losses = []
    for _ in range(30):
      state, loss = train_step(state, x, y)
      losses.append(loss)
    lr = optax_hillclimb.get_learning_rate(state.opt_state)
    # [END linen]
    return losses, lr


@pytest.mark.parametrize(
  "example",
  [_Nnx.example, _Nnx.helper_example, _Linen.example],
  ids=["nnx", "nnx_value_fn", "linen"],
)
def test_flax_example_learns_and_moves_the_learning_rate(example):
  pytest.importorskip("flax")
  losses, lr = example()
  assert float(losses[-1]) < 0.8 * float(losses[0])
  # 30 probes of 10% steps from 1e-2, on a problem that wants much more.
  assert float(lr) > 0.1


def regression_loss(params, x, y):
  return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def per_device_data():
  """A noisy linear regression whose batch splits evenly over 8 devices."""
  kx, kw, kn = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (NUM_DEVICES * 16, 5))
  w = jax.random.normal(kw, (5,))
  y = x @ w + 0.5 * jax.random.normal(kn, (NUM_DEVICES * 16,))
  return x, y


@pytest.fixture
def eight_devices():
  if jax.device_count() < NUM_DEVICES:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")


def pmap_example():
  # [START pmap]
  import functools

  import jax
  import jax.numpy as jnp
  import optax

  import optax_hillclimb

  num_devices = jax.device_count()
  opt = optax_hillclimb.hillclimb(0.05, axis_name="devices")

  @functools.partial(jax.pmap, axis_name="devices")
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(regression_loss)(params, x, y)
    grads = jax.lax.pmean(grads, "devices")
    # axis_name makes the optimizer average the probe losses (and value)
    # over devices, so every replica moves its learning rate the same way.
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=regression_loss, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state

  def replicate(tree):
    return jax.tree.map(
      lambda a: jnp.broadcast_to(a, (num_devices, *a.shape)), tree
    )

  params = replicate({"w": jnp.zeros(5), "b": jnp.zeros(())})
  opt_state = jax.pmap(opt.init)(params)
  # One batch per device: [num_devices, batch, ...].
  x, y = per_device_data()
  x = x.reshape(num_devices, -1, *x.shape[1:])
  y = y.reshape(num_devices, -1)
  for _ in range(30):
    params, opt_state = train_step(params, opt_state, x, y)
  print(optax_hillclimb.get_learning_rate(opt_state))  # one value per device
  # [END pmap]
  return params, opt_state


def shard_map_example():
  # [START shard_map]
  import functools

  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P
  import optax

  import optax_hillclimb

  mesh = jax.make_mesh((jax.device_count(),), ("batch",))
  opt = optax_hillclimb.hillclimb(0.05, axis_name="batch")

  @jax.jit
  @functools.partial(
    jax.shard_map,
    mesh=mesh,
    in_specs=(P(), P(), P("batch"), P("batch")),
    out_specs=(P(), P()),
  )
  def train_step(params, opt_state, x, y):
    # Each device sees its slice of the batch. The mean over devices is the
    # loss of the whole batch; its gradient is the same on every device.
    def global_loss(params):
      return jax.lax.pmean(regression_loss(params, x, y), "batch")

    loss, grads = jax.value_and_grad(global_loss)(params)
    # value_fn scores the local slice; axis_name averages the probe losses.
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=regression_loss, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state

  x, y = per_device_data()
  x = jax.device_put(x, NamedSharding(mesh, P("batch")))
  y = jax.device_put(y, NamedSharding(mesh, P("batch")))
  params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
  opt_state = opt.init(params)
  for _ in range(30):
    params, opt_state = train_step(params, opt_state, x, y)
  print(optax_hillclimb.get_learning_rate(opt_state))
  # [END shard_map]
  return params, opt_state


def sharded_jit_example():
  # [START sharded_jit]
  import jax
  import jax.numpy as jnp
  from jax.sharding import AxisType
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P
  import optax

  import optax_hillclimb

  # Auto axes: XLA chooses how to shard the intermediate values.
  mesh = jax.make_mesh(
    (jax.device_count(),), ("batch",), axis_types=(AxisType.Auto,)
  )
  # No axis_name: under jit the loss is already the loss of the whole batch.
  opt = optax_hillclimb.hillclimb(0.05)

  @jax.jit
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(regression_loss)(params, x, y)
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=regression_loss, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state

  x, y = per_device_data()
  x = jax.device_put(x, NamedSharding(mesh, P("batch")))
  y = jax.device_put(y, NamedSharding(mesh, P("batch")))
  params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
  opt_state = opt.init(params)
  for _ in range(30):
    params, opt_state = train_step(params, opt_state, x, y)
  print(optax_hillclimb.get_learning_rate(opt_state))
  # [END sharded_jit]
  return params, opt_state


def single_device_reference():
  """The same training on one device with the whole batch."""
  x, y = per_device_data()
  opt = optax_hillclimb.hillclimb(0.05)

  @jax.jit
  def train_step(params, opt_state):
    loss, grads = jax.value_and_grad(regression_loss)(params, x, y)
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=regression_loss, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state

  params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
  opt_state = opt.init(params)
  for _ in range(30):
    params, opt_state = train_step(params, opt_state)
  return params, opt_state


@pytest.mark.usefixtures("eight_devices")
@pytest.mark.slow  # three programs on eight devices
@pytest.mark.parametrize(
  "example",
  [pmap_example, shard_map_example, sharded_jit_example],
  ids=["pmap", "shard_map", "sharded_jit"],
)
def test_multi_device_example_matches_one_device(example):
  # Equal batches per device, so the mean of per-device losses is the loss of
  # the whole batch: each example must follow the single-device run.
  params, opt_state = example()
  ref_params, ref_state = single_device_reference()
  lr = optax_hillclimb.get_learning_rate(opt_state)
  ref_lr = float(optax_hillclimb.get_learning_rate(ref_state))
  assert ref_lr != pytest.approx(0.05)
  if example is pmap_example:
    assert len(set(lr.tolist())) == 1  # replicas agree exactly
    lr = lr[0]
    params = jax.tree.map(lambda a: a[0], params)
  assert float(lr) == pytest.approx(ref_lr, rel=1e-5)
  for leaf, ref_leaf in zip(
    jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True
  ):
    assert jnp.allclose(leaf, ref_leaf, rtol=1e-4, atol=1e-5)
