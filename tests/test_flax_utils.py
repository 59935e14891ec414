"""Tests of flax_utils.nnx_value_fn on a model with BatchNorm and dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax_hillclimb
from optax_hillclimb.flax_utils import nnx_value_fn

nnx = pytest.importorskip("flax.nnx")


class Net(nnx.Module):
  """A small MLP with the two layers that make probes tricky."""

  def __init__(self, rngs):
    self.linear1 = nnx.Linear(4, 16, rngs=rngs)
    self.norm = nnx.BatchNorm(16, rngs=rngs)
    self.dropout = nnx.Dropout(0.5, rngs=rngs)
    self.linear2 = nnx.Linear(16, 1, rngs=rngs)

  def __call__(self, x):
    x = self.dropout(nnx.relu(self.norm(self.linear1(x))))
    return self.linear2(x)


def loss_fn(model, x, y):
  return jnp.mean((model(x) - y) ** 2)


def data():
  x = jax.random.normal(jax.random.key(0), (32, 4))
  return x, jnp.sum(x, axis=-1, keepdims=True)


def params_of(model):
  return nnx.as_pure(nnx.state(model, nnx.Param))


def test_probe_scores_the_network_the_gradient_saw():
  model = Net(nnx.Rngs(0))
  x, y = data()
  value_fn = nnx_value_fn(model, loss_fn, x, y)
  loss, _ = nnx.value_and_grad(loss_fn)(model, x, y)
  params = params_of(model)
  # Same dropout mask and batch statistics as the gradient's forward pass,
  # and the same network twice, although the live model has moved on.
  assert value_fn(params) == loss
  assert value_fn(params) == value_fn(params)
  assert loss_fn(model, x, y) != loss  # the live model drew a new mask


def test_probe_leaves_the_live_model_alone():
  model = Net(nnx.Rngs(0))
  x, y = data()
  # Everything but the RNG keys (which numpy cannot compare); their counts
  # are included.
  not_keys = nnx.Not(nnx.RngKey)
  before = jax.tree.map(np.asarray, nnx.as_pure(nnx.state(model, not_keys)))
  value_fn = nnx_value_fn(model, loss_fn, x, y)
  shifted = jax.tree.map(lambda p: p + 1.0, params_of(model))
  value_fn(shifted)
  after = nnx.as_pure(nnx.state(model, not_keys))
  jax.tree.map(np.testing.assert_array_equal, before, after)


@pytest.mark.parametrize(
  "probe", [pytest.param("vmap", marks=pytest.mark.slow), "sequential"]
)
def test_trains_through_nnx_optimizer_update(probe):
  model = Net(nnx.Rngs(0))
  optimizer = nnx.Optimizer(
    model, optax_hillclimb.hillclimb(0.01, lrlr=0.2, probe=probe), wrt=nnx.Param
  )
  x, y = data()

  @nnx.jit
  def train_step(model, optimizer, x, y):
    value_fn = nnx_value_fn(model, loss_fn, x, y)
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads, value_fn=value_fn, value=loss)
    return loss

  losses = [float(train_step(model, optimizer, x, y)) for _ in range(40)]
  state = nnx.as_pure(optimizer.opt_state)
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  # The probes found a better learning rate than the tiny starting one.
  assert optax_hillclimb.get_learning_rate(state) > 0.02
  # BatchNorm's running mean was updated by the gradient passes only: it
  # moved away from its initial zeros.
  assert np.abs(model.norm.mean[...]).max() > 0


def test_has_aux_drops_the_aux_output():
  model = Net(nnx.Rngs(0))
  x, y = data()

  def loss_and_prediction(model, x, y):
    prediction = model(x)
    return jnp.mean((prediction - y) ** 2), prediction

  with_aux = nnx_value_fn(model, loss_and_prediction, x, y, has_aux=True)
  plain = nnx_value_fn(model, loss_fn, x, y)
  assert with_aux(params_of(model)) == plain(params_of(model))
  wrong = nnx_value_fn(model, loss_fn, x, y, has_aux=True)
  with pytest.raises(ValueError, match=r"\(loss, aux\) pair"):
    wrong(params_of(model))


def test_rejects_non_modules():
  with pytest.raises(TypeError, match=r"expects an nnx\.Module"):
    nnx_value_fn({"w": jnp.ones(3)}, loss_fn)
