"""Mistakes a newcomer makes in the first hour, and what they are told.

Each gets a message that names the fix, or, where the call is right after all,
a test that pins down the documented answer (docs/quickstart.md, "What
`update` needs").
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import optax_hillclimb
from optax_hillclimb import _value_fn


def _data():
  x = jax.random.normal(jax.random.key(0), (16, 3))
  return x, x @ jnp.array([1.0, -2.0, 0.5])


def _loss(params, x, y):
  return jnp.mean((x @ params - y) ** 2)


def _steps(opt, update_kwargs, num_steps=5):
  @jax.jit
  def step(params, state):
    grads = jax.grad(_loss)(params, *_data())
    updates, state = opt.update(grads, state, params, **update_kwargs(params))
    return optax.apply_updates(params, updates), state

  params = jnp.zeros(3)
  state = opt.init(params)
  for _ in range(num_steps):
    params, state = step(params, state)
  return params, state


def test_value_fn_parameters_in_another_order_are_matched_by_name():
  x, y = _data()

  def loss_y_first(params, y, x):
    return _loss(params, x, y)

  opt = optax_hillclimb.hillclimb(1e-2)
  expected = _steps(opt, update_kwargs=lambda p: dict(value_fn=_loss, x=x, y=y))
  swapped = _steps(
    opt, update_kwargs=lambda p: dict(value_fn=loss_y_first, x=x, y=y)
  )
  same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), expected, swapped)
  assert all(jax.tree.leaves(same))


def test_value_fn_parameter_names_that_update_does_not_pass_are_named():
  x, y = _data()

  def loss(params, inputs, targets):
    return _loss(params, inputs, targets)

  opt = optax_hillclimb.hillclimb(1e-2)
  state = opt.init(jnp.zeros(3))
  with pytest.raises(TypeError) as error:
    opt.update(jnp.ones(3), state, jnp.zeros(3), value_fn=loss, x=x, y=y)
  message = str(error.value)
  assert "needs inputs, targets" in message
  assert "by name" in message
  assert "got x, y" in message
  assert "update(..., inputs=..., targets=...)" in message


def test_value_fn_parameters_with_defaults_may_be_left_out():
  x, y = _data()

  def loss(params, x, y, weight=1.0):
    return weight * _loss(params, x, y)

  assert _value_fn.missing_arguments(loss, {"x": x, "y": y}) == []
  assert _value_fn.missing_arguments(loss, {"x": x}) == ["y"]
  # Builtins without a signature, and *args functions, are not second-guessed.
  assert _value_fn.missing_arguments(jnp.sum, {}) == []
  assert _value_fn.missing_arguments(lambda *a: 0.0, {}) == []


@pytest.mark.parametrize(
  "make_opt",
  [
    lambda: optax_hillclimb.hillclimb(1e-2),
    lambda: optax_hillclimb.scale_by_hillclimb(1e-2),
  ],
  ids=["hillclimb", "scale_by_hillclimb"],
)
def test_a_batch_passed_positionally_is_refused(make_opt):
  # update(updates, state, params, **extra_args): optax's signature has no
  # room for a fourth positional argument, so Python refuses it before any
  # loss is computed; the docs say extra arguments go by keyword.
  x, y = _data()
  opt = make_opt()
  state = opt.init(jnp.zeros(3))
  with pytest.raises(TypeError, match="positional"):
    opt.update(jnp.ones(3), state, jnp.zeros(3), (x, y), value_fn=_loss)


def test_grad_given_to_the_two_probe_rule_changes_nothing():
  # Extra arguments reach every transformation of a chain; the two-probe rule
  # does not read grad=, so passing it always (as the MNIST example does, for
  # the cheaper decisions) is harmless.
  x, y = _data()
  opt = optax_hillclimb.hillclimb(1e-2)

  def without_grad(params):
    return dict(value_fn=_loss, value=_loss(params, x, y), x=x, y=y)

  def with_grad(params):
    return dict(without_grad(params), grad=jax.grad(_loss)(params, x, y))

  expected = _steps(opt, update_kwargs=without_grad)
  actual = _steps(opt, update_kwargs=with_grad)
  same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), expected, actual)
  assert all(jax.tree.leaves(same))


def _nnx_setup():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(
    model, optax_hillclimb.hillclimb(0.1), wrt=nnx.Param
  )
  x, y = jnp.ones((8, 3)), jnp.zeros((8, 1))

  def loss_fn(model, x, y):
    return jnp.mean((model(x) - y) ** 2)

  grads = nnx.grad(loss_fn)(model, x, y)
  return nnx, model, optimizer, loss_fn, grads, x, y


def test_nnx_loss_passed_as_value_fn_names_nnx_value_fn():
  _, model, optimizer, loss_fn, grads, x, y = _nnx_setup()
  with pytest.raises(TypeError) as error:
    optimizer.update(model, grads, value_fn=loss_fn, x=x, y=y)
  message = str(error.value)
  assert "optax_hillclimb.nnx_value_fn(model, loss_fn, *batch)" in message
  assert "'State' object is not callable" in message  # the original error
  assert isinstance(error.value.__cause__, TypeError)


def test_nnx_model_passed_as_value_fn_names_nnx_value_fn():
  _, model, optimizer, _, grads, _, _ = _nnx_setup()
  with pytest.raises(TypeError, match=r"value_fn is the model \(Linear\)"):
    optimizer.update(model, grads, value_fn=model)


def test_the_fix_the_message_names_trains():
  nnx, model, optimizer, loss_fn, grads, x, y = _nnx_setup()
  before = float(loss_fn(model, x, y))
  for _ in range(5):
    value_fn = optax_hillclimb.nnx_value_fn(model, loss_fn, x, y)
    grads = nnx.grad(loss_fn)(model, x, y)
    optimizer.update(model, grads, value_fn=value_fn)
  assert float(loss_fn(model, x, y)) < 0.5 * before


def test_errors_inside_an_nnx_value_fn_loss_are_not_blamed_on_the_wrapper():
  _, model, optimizer, _, grads, x, y = _nnx_setup()

  def broken_loss(model, x, y):
    return model(x).no_such_method()

  value_fn = optax_hillclimb.nnx_value_fn(model, broken_loss, x, y)
  with pytest.raises(AttributeError) as error:
    optimizer.update(model, grads, value_fn=value_fn)
  assert "nnx_value_fn" not in str(error.value)
  assert "no_such_method" in str(error.value)
