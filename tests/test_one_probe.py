"""decision="one_probe": one loss evaluation, compared with value and slope.

On f(w) = w^2 / 2 from w = 2 along u = f'(w) = 2: f0 = 2, the slope of
a -> f(w - a u) at 0 is -g.u = -4, and the exact line minimum is a* = 1. The
one-probe test f0 - f(w - lr u) > lr g.u / 2 reads 4 lr - 2 lr^2 > 2 lr, that
is lr < 1 = a*: on a quadratic it is exact.
"""

import functools

import jax
import jax.numpy as jnp
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

rule = functools.partial(
  ohc.scale_by_hillclimb, scale_search=None, decision="one_probe"
)


def half_square(w):
  """f(w) = w^2 / 2, whose gradient is w."""
  return 0.5 * jnp.sum(w**2)


def constant(w):
  del w
  return jnp.asarray(7.0)


def one_step(opt, w, state=None, **kwargs):
  state = opt.init(w) if state is None else state
  value, grad = jax.value_and_grad(half_square)(w)
  kwargs = {"value": value, "grad": grad, **kwargs}
  return opt.update(grad, state, w, value_fn=half_square, **kwargs)


def test_a_step_short_of_the_line_minimum_raises_the_learning_rate():
  # lr = 0.1: f1 = f(1.8) = 1.62, f0 - f1 = 0.38 > 0.1 * 4 / 2 = 0.2: rise
  # by s = 0.5 to 0.15, and the update is -0.15 * 2.
  updates, state = one_step(rule(0.1, lrlr=0.5), jnp.array([2.0]))
  test_utils.assert_trees_all_close(updates, jnp.array([-0.3]))
  test_utils.assert_trees_all_close(
    (state.learning_rate, state.loss_up, state.loss_down), (0.15, 1.62, 1.62)
  )
  assert int(state.streak) == 1
  assert int(state.num_rejected) == 0


def test_a_step_past_the_line_minimum_lowers_the_learning_rate():
  # lr = 1.5: f1 = f(-1) = 0.5, f0 - f1 = 1.5 < 1.5 * 4 / 2 = 3: fall to 0.75.
  updates, state = one_step(rule(1.5, lrlr=0.5), jnp.array([2.0]))
  test_utils.assert_trees_all_close(updates, jnp.array([-1.5]))
  test_utils.assert_trees_all_close(
    (state.learning_rate, state.loss_up), (0.75, 0.5)
  )
  assert int(state.streak) == -1


@pytest.mark.parametrize(
  ("lr", "rises"), [(0.5, True), (0.9, True), (1.25, False), (1.9, False)]
)
def test_on_a_quadratic_it_rises_exactly_below_the_line_minimum(lr, rises):
  _, state = one_step(rule(lr, lrlr=0.2), jnp.array([2.0]))
  expected = lr * (1.2 if rises else 0.8)
  assert float(state.learning_rate) == pytest.approx(expected)


@pytest.mark.parametrize(
  ("slope_rtol", "lr", "rises"),
  [
    # The test f0 - f1 > c lr g.u reads 4 lr - 2 lr^2 > 4 c lr, that is
    # lr < 2 (1 - c): the rate settles at 2 (1 - c) times the line minimum.
    (0.25, 1.4, True),
    (0.25, 1.6, False),
    (0.1, 1.75, True),
    (0.1, 1.85, False),
  ],
)
def test_slope_rtol_sets_where_the_rate_settles(slope_rtol, lr, rises):
  opt = rule(lr, lrlr=0.2, slope_rtol=slope_rtol)
  _, state = one_step(opt, jnp.array([2.0]))
  expected = lr * (1.2 if rises else 0.8)
  assert float(state.learning_rate) == pytest.approx(expected)


def test_slope_rtol_is_injectable():
  opt = optax.inject_hyperparams(rule)(learning_rate=1.4, slope_rtol=0.25)
  w = jnp.array([2.0])
  _, state = one_step(opt, w)
  assert float(ohc.get_learning_rate(state)) == pytest.approx(1.4 * 1.01)
  # At 1.414 the step falls short of 2 (1 - c) = 1.5 but not of 1 = a*.
  state.hyperparams["slope_rtol"] = jnp.asarray(0.5)
  _, state = one_step(opt, w, state)
  assert float(ohc.get_learning_rate(state)) == pytest.approx(1.4 * 1.01 * 0.99)


@pytest.mark.parametrize("slope_rtol", [0.0, 1.0, -0.5, 2.0])
def test_slope_rtol_outside_zero_one_is_rejected(slope_rtol):
  with pytest.raises(ValueError, match=r"slope_rtol must be in the interval"):
    rule(slope_rtol=slope_rtol)


def test_a_direction_that_is_not_a_descent_direction_lowers():
  # u = -g: g.u = -4 < 0. The probe at lr = 0.1 goes uphill, f1 = f(2.2).
  w = jnp.array([2.0])
  opt = rule(0.1, lrlr=0.5, guard=False)
  value, grad = jax.value_and_grad(half_square)(w)
  _, state = opt.update(
    -grad, opt.init(w), w, value_fn=half_square, value=value, grad=grad
  )
  assert float(state.learning_rate) == pytest.approx(0.05)
  assert float(state.loss_up) == pytest.approx(2.42)


def test_concave_along_the_step_raises():
  # f(w) = -w: along u = g = -1 the loss falls linearly (c = 0 in the
  # parabola): f0 - f1 = lr = lr * g.u > lr * g.u / 2, so rise.
  w = jnp.array([0.0])
  grad = jnp.array([-1.0])
  opt = rule(0.1, lrlr=0.5)
  _, state = opt.update(
    grad,
    opt.init(w),
    w,
    value_fn=lambda p: -jnp.sum(p),
    value=jnp.asarray(0.0),
    grad=grad,
  )
  assert float(state.learning_rate) == pytest.approx(0.15)


@pytest.mark.parametrize(
  ("tie_break", "expected"), [("up", [0.15, 0.2, 0.2]), ("down", [0.05, 0.025])]
)
def test_ties_follow_tie_break_up_to_the_ceiling(tie_break, expected):
  # A constant loss: f1 == f0. "up" climbs, but only to tie_ceiling = lr0.
  w = jnp.array([1.0, -1.0])
  opt = rule(0.2, lrlr=0.5, lrlr_growth=1.0, tie_break=tie_break)
  state = opt.init(w)._replace(learning_rate=jnp.asarray(0.1))
  grad = jnp.array([1.0, 1.0])
  rates = []
  for _ in expected:
    _, state = opt.update(
      grad, state, w, value_fn=constant, value=jnp.asarray(7.0), grad=grad
    )
    rates.append(float(state.learning_rate))
  assert rates == pytest.approx(expected)
  assert float(state.tie_ceiling) == pytest.approx(0.2)


def test_the_guard_rejects_a_probe_far_above_value():
  # lr = 4: f1 = f(2 - 8) = 18 > 2 + 1.0 * 2: rejected, zero update, halved.
  updates, state = one_step(rule(4.0), jnp.array([2.0]))
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  assert float(state.learning_rate) == pytest.approx(2.0)
  assert int(state.num_rejected) == 1


def test_a_non_finite_direction_is_rejected():
  w = jnp.array([2.0])
  opt = rule(0.1)
  bad = jnp.array([jnp.nan])
  updates, state = opt.update(
    bad, opt.init(w), w, value_fn=half_square, value=2.0, grad=bad
  )
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  assert int(state.num_rejected) == 1


def test_every_k_decides_only_on_its_steps():
  opt = rule(0.1, lrlr=0.5, every_k=2)
  w, state, rates = jnp.array([2.0]), None, []
  for _ in range(3):
    updates, state = one_step(opt, w, state)
    w = optax.apply_updates(w, updates)
    rates.append(float(state.learning_rate))
  # Decisions at counts 0 and 2 (both short of a* = 1): 0.15, held, 0.225.
  assert rates == pytest.approx([0.15, 0.15, 0.225])


def test_the_scale_search_runs_first():
  # From lr0 = 1e-3 the search would pick 1 (the exact step, loss 0), but
  # that moves w by all of its norm: the first step is bounded by 0.2 of it,
  # so the search takes 0.1.
  opt = ohc.scale_by_hillclimb(1e-3, decision="one_probe")
  _, state = one_step(opt, jnp.array([2.0]))
  assert float(state.learning_rate) == pytest.approx(0.1)


def test_missing_value_or_grad_is_a_clear_error():
  w = jnp.array([2.0])
  opt = rule(0.1)
  with pytest.raises(TypeError, match=r"one_probe.*needs value="):
    opt.update(w, opt.init(w), w, value_fn=half_square, grad=w)
  with pytest.raises(TypeError, match=r"one_probe.*needs grad="):
    opt.update(w, opt.init(w), w, value_fn=half_square, value=2.0)
  with pytest.raises(TypeError, match="needs the loss function"):
    opt.update(w, opt.init(w), w, value=2.0, grad=w)


def test_unknown_decision_is_rejected():
  with pytest.raises(ValueError, match="decision must be one of"):
    ohc.scale_by_hillclimb(decision="three_probes")


def test_hillclimb_converges_and_keeps_its_state_types():
  opt = ohc.hillclimb(1e-3, decision="one_probe")
  target = jnp.array([1.0, -2.0, 0.5])

  def loss(w):
    return jnp.sum((w - target) ** 2)

  @jax.jit
  def step(w, state):
    value, grad = jax.value_and_grad(loss)(w)
    updates, state = opt.update(
      grad, state, w, value_fn=loss, value=value, grad=grad
    )
    return optax.apply_updates(w, updates), state

  w = jnp.zeros(3)
  state = opt.init(w)
  types = jax.tree.map(jax.typeof, state)
  w, state = step(w, state)
  with test_utils.log_compilations() as compilation_logs:
    for _ in range(100):
      w, state = step(w, state)
  assert not compilation_logs
  assert jax.tree.map(jax.typeof, state) == types
  assert state[1].previous_direction == ()
  assert float(loss(w)) < 1e-5 * float(loss(jnp.zeros(3)))
