"""Extra keyword arguments reach value_fn when it takes them, and only then."""

import functools

import _rules
import jax
import jax.numpy as jnp
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc
from optax_hillclimb import _value_fn


def probe_losses(value_fn, **extra_args):
  """(loss_up, loss_down) of one probe step at w = 2 along u = 1, lr 0.1 and
  s = 0.5: the candidates are w = 1.85 and w = 1.95."""
  opt = ohc.scale_by_hillclimb(
    0.1, **_rules.EVERY_STEP | dict(lrlr=0.5, scale_search=None)
  )
  params = jnp.array([2.0])
  _, state = opt.update(
    jnp.ones(1), opt.init(params), params, value_fn=value_fn, **extra_args
  )
  return state.loss_up, state.loss_down


def test_matching_extra_args_are_passed_and_the_rest_ignored():
  seen = {}

  def loss(params, batch, *, weight=1.0):
    seen.update(batch=batch, weight=weight)
    return weight * jnp.sum((params - batch) ** 2)

  # f(w) = 3 (w - 1)^2: f(1.85) = 2.1675, f(1.95) = 2.7075.
  losses = probe_losses(
    loss,
    batch=jnp.array([1.0]),
    weight=3.0,
    unexpected_extra_args_your_optimizer_doesnt_expect=1,
  )
  assert seen["weight"] == 3.0
  test_utils.assert_trees_all_close(losses, (2.1675, 2.7075))


def test_keyword_names_of_partials_and_builtins():
  def loss(params, x, y):
    return params * x * y

  assert _value_fn.keyword_names(loss) == {"params", "x", "y"}
  bound = functools.partial(loss, x=1.0)
  assert _value_fn.keyword_names(bound) == {"params", "x", "y"}
  assert _value_fn.keyword_names(jax.jit(loss)) == {"params", "x", "y"}


def test_positional_only_parameters_are_not_passed_by_keyword():
  def loss(params, scale=2.0, /):
    return jnp.sum(params) * scale

  assert _value_fn.keyword_names(loss) == frozenset()
  # Passing scale=5.0 by keyword would raise a TypeError.
  bound = _value_fn.bind_value_fn(loss, {"scale": 5.0})
  assert float(bound(jnp.asarray(1.5))) == 3.0


@pytest.mark.parametrize(
  ("returned", "message"),
  [
    ((jnp.asarray(1.0), {"logits": jnp.zeros(3)}), r"tuple of 2.*drop_aux"),
    ([jnp.asarray(1.0)], r"list of 1.*drop_aux"),
    ({"loss": jnp.asarray(1.0)}, r"mapping with keys \['loss'\].*drop_aux"),
    ("1.0", r"scalar loss.*got str"),
    (None, r"scalar loss.*got NoneType"),
    (jnp.asarray(True), r"real-valued loss.*bool"),
    (jnp.asarray(1 + 2j), r"real-valued loss.*complex"),
  ],
)
def test_a_value_fn_that_does_not_return_a_number_is_named(returned, message):
  opt = ohc.hillclimb(0.1)
  params = jnp.zeros(2)
  with pytest.raises(TypeError, match=r"^value_fn must return .*" + message):
    opt.update(params, opt.init(params), params, value_fn=lambda p: returned)


def test_drop_aux_passes_the_batch_and_keeps_the_loss():
  # Flax's loss_fn shape: (loss, logits), with the batch as a keyword.
  def loss_fn(params, batch):
    logits = batch * params
    return jnp.sum(logits**2), logits

  value_fn = ohc.drop_aux(loss_fn)
  assert _value_fn.keyword_names(value_fn) == {"params", "batch"}
  # f(w) = w^2: f(1.85) = 3.4225, f(1.95) = 3.8025.
  losses = probe_losses(value_fn, batch=jnp.ones(1), other=None)
  test_utils.assert_trees_all_close(losses, (3.4225, 3.8025))


def test_drop_aux_names_a_function_without_aux():
  with pytest.raises(TypeError, match=r"drop_aux expects .*pair.*'mean'"):
    ohc.drop_aux(jnp.mean)(jnp.ones(3))
