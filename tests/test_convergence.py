"""Convergence from starting learning rates orders of magnitude apart."""

import _rules
import jax
import jax.numpy as jnp
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

# The blog post's rule exactly (see docs/rule.md).
reference_rule = _rules.reference_rule


def parabola():
  target = jnp.array([1.0, -1.0, 1.0])
  loss = lambda p: jnp.sum((p - target) ** 2)
  return jnp.array([-1.0, 10.0, 1.0]), target, loss


def rosenbrock():
  loss = lambda p: (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2
  return jnp.zeros(2), jnp.ones(2), loss


def matrix_parabola():
  target = jnp.array([[3.0, -2.0], [1.0, 4.0]])
  loss = lambda p: jnp.sum((p - target) ** 2)
  return jnp.zeros((2, 2)), target, loss


def mixed_tree():
  target = {"v": jnp.array([1.0, -1.0, 2.0]), "m": jnp.array([[1.0, 0.0]])}

  def loss(p):
    return sum(jnp.sum((p[k] - target[k]) ** 2) for k in target)

  return jax.tree.map(jnp.zeros_like, target), target, loss


def minimize(opt, params, loss, num_steps):
  def step(carry, _):
    params, state = carry
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value
    )
    return (optax.apply_updates(params, updates), state), None

  run = jax.jit(lambda c: jax.lax.scan(step, c, length=num_steps)[0])
  return run((params, opt.init(params)))


@pytest.mark.parametrize(
  "target", [parabola, rosenbrock, matrix_parabola, mixed_tree]
)
@pytest.mark.parametrize("learning_rate", [1e-5, 1e-3, 1e-1, 10.0])
def test_hillclimb_converges_from_any_starting_learning_rate(
  target, learning_rate
):
  initial, final, loss = target()
  params, _ = minimize(ohc.hillclimb(learning_rate), initial, loss, 30_000)
  test_utils.assert_trees_all_close(params, final, rtol=3e-3, atol=3e-3)


@pytest.mark.parametrize("learning_rate", [1e-5, 1e-2, 10.0])
def test_hillclimb_adam_converges_on_rosenbrock(learning_rate):
  initial, final, loss = rosenbrock()
  opt = ohc.hillclimb_adam(learning_rate, lrlr=0.05)
  params, _ = minimize(opt, initial, loss, 30_000)
  test_utils.assert_trees_all_close(params, final, rtol=3e-2, atol=3e-2)


def test_reference_rule_climbs_from_far_too_small():
  # On f = |w - 3|^2 the best constant step is 0.5; from 1e-5 the rule must
  # climb more than three decades, at 1% a step: 1.01 ** 800 = 2.9e3.
  initial, _, _ = parabola()
  loss = lambda p: jnp.sum((p - 3.0) ** 2)
  opt = reference_rule(1e-5, smoothing=0.0)
  _, state = minimize(opt, initial, loss, 800)
  assert ohc.get_learning_rate(state) > 1e-2


def test_growing_steps_cross_decades_in_tens_of_steps():
  # The same climb with growing steps (every step, 1% growing by half): the
  # minimum is reached in 60 steps, where the reference rule's lr has only
  # grown by 1.01 ** 60.
  initial, _, _ = parabola()
  loss = lambda p: jnp.sum((p - 3.0) ** 2)
  growing = ohc.hillclimb(
    1e-5, smoothing=0.0, scale_search=None, **_rules.EVERY_STEP
  )
  params, _ = minimize(growing, initial, loss, 60)
  assert loss(params) < 1e-6
  reference = reference_rule(1e-5, smoothing=0.0)
  params, _ = minimize(reference, initial, loss, 60)
  assert loss(params) > 0.9 * loss(initial)  # 69 at the start.


def test_guard_recovers_from_a_diverging_learning_rate():
  # From lr = 10 on Rosenbrock, the reference rule diverges (loss inf) while
  # it lowers lr 1% a step; the guard backs off and converges.
  initial, final, loss = rosenbrock()
  reference = reference_rule(10.0)
  params, _ = minimize(reference, initial, loss, 200)
  assert not jnp.isfinite(loss(params))
  params, _ = minimize(ohc.hillclimb(10.0), initial, loss, 30_000)
  test_utils.assert_trees_all_close(params, final, rtol=3e-3, atol=3e-3)
