"""The rule, step by step, on problems small enough to work out by hand."""

import functools

import _rules
import jax
import jax.numpy as jnp
import numpy as np
from optax import tree as otu
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

# These tests follow the probe rule step by step, so they start from lr0 as it
# is; the first-update scale search has its own tests (test_scale_search.py).
rule = functools.partial(
  ohc.scale_by_hillclimb, scale_search=None, **_rules.EVERY_STEP
)


def half_square(w):
  """f(w) = w^2 / 2, whose gradient is w."""
  return 0.5 * jnp.sum(w**2)


def linear(w):
  """f(w) = sum(w): along -u with u > 0, a longer step is always better."""
  return jnp.sum(w)


def constant(w):
  del w
  return jnp.asarray(7.0)


def step(opt, state, params, updates, value_fn, **kwargs):
  return opt.update(updates, state, params, value_fn=value_fn, **kwargs)


def test_one_probe_step_moves_toward_the_better_candidate():
  # w = 2, u = f'(w) = 2, lr = 0.1, s = 0.5:
  # up:   w - 0.15 * 2 = 1.7, f = 1.445; down: w - 0.05 * 2 = 1.9, f = 1.805.
  # Up is better: lr = 0.15 and the update is -0.15 * 2 = -0.3.
  opt = rule(0.1, lrlr=0.5)
  params = jnp.array([2.0])
  updates, state = step(opt, opt.init(params), params, params, half_square)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.3]))
  test_utils.assert_trees_all_close(
    (state.learning_rate, state.loss_up, state.loss_down),
    (0.15, 1.445, 1.805),
  )
  assert int(state.count) == 1
  assert int(state.streak) == 1
  assert int(state.num_rejected) == 0


def test_overshooting_lowers_the_learning_rate():
  # w = 2, u = 2, lr = 0.9, s = 0.5:
  # up:   w - 1.35 * 2 = -0.7, f = 0.245; down: w - 0.45 * 2 = 1.1, f = 0.605.
  # Up still wins here; one more step from lr = 1.35 overshoots:
  # up:   w - 2.025 * 2 = -2.05, f = 2.10125; down: w - 0.675 * 2 = 0.65,
  # f = 0.21125: down wins, lr = 0.675.
  opt = rule(1.35, lrlr=0.5)
  params = jnp.array([2.0])
  updates, state = step(opt, opt.init(params), params, params, half_square)
  test_utils.assert_trees_all_close(state.learning_rate, 0.675)
  test_utils.assert_trees_all_close(updates, jnp.array([-1.35]))
  test_utils.assert_trees_all_close(
    (state.loss_up, state.loss_down), (2.10125, 0.21125)
  )
  assert int(state.streak) == -1


def test_ties_lower_the_learning_rate():
  opt = rule(0.2, lrlr=0.25, tie_break="down")
  params = jnp.array([1.0, -1.0])
  updates, state = step(opt, opt.init(params), params, params, constant)
  test_utils.assert_trees_all_close(state.learning_rate, 0.15)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.15, 0.15]))


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_non_finite_probe_loses(bad):
  # The larger step lands beyond w = 0.5 (up: 1 - 0.2 * 4 = 0.2; down:
  # 1 - 0.1 * 4 = 0.6), where the loss is made non-finite: down wins even
  # though its loss is larger.
  def loss(w):
    return jnp.where(w[0] < 0.5, bad, jnp.sum(w))

  opt = rule(0.15, lrlr=1 / 3, guard=False)
  params, updates = jnp.array([1.0]), jnp.array([4.0])
  new_updates, state = step(opt, opt.init(params), params, updates, loss)
  test_utils.assert_trees_all_close(state.learning_rate, 0.1)
  test_utils.assert_trees_all_close(new_updates, jnp.array([-0.4]))
  assert state.loss_up == jnp.inf
  test_utils.assert_trees_all_close(state.loss_down, 0.6)


def test_two_non_finite_probes_without_guard_follow_the_reference_rule():
  opt = rule(0.5, lrlr=0.5, guard=False)
  params = jnp.array([1.0])
  nan_loss = lambda w: jnp.sum(w) * jnp.nan
  updates, state = step(opt, opt.init(params), params, params, nan_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 0.25)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.25]))
  assert int(state.num_rejected) == 0


def test_guard_rejects_two_non_finite_probes():
  # A rejected step halves the learning rate.
  opt = rule(0.5, lrlr=0.5)
  params = jnp.array([1.0])
  nan_loss = lambda w: jnp.sum(w) * jnp.nan
  updates, state = step(opt, opt.init(params), params, params, nan_loss)
  test_utils.assert_trees_all_close(updates, jnp.array([0.0]))
  test_utils.assert_trees_all_close(state.learning_rate, 0.25)
  assert int(state.num_rejected) == 1
  assert int(state.streak) == -1


def test_guard_compares_the_better_probe_with_value():
  # w = 2, u = 2, lr = 2, s = 0.5: up: w - 3 * 2 = -4, f = 8; down:
  # w - 1 * 2 = 0, f = 0. Down (0) is fine against value = 2.
  # From lr = 4: up: 2 - 12 = -10, f = 50; down: 2 - 4 = -2, f = 2.
  # With value = 2 and guard_rtol = 0.5, 2 <= 2 + 1 passes; with value = 1
  # and guard_rtol = 0.5, 2 > 1.5 is rejected.
  params = jnp.array([2.0])
  opt = rule(4.0, lrlr=0.5, guard_rtol=0.5)
  state = opt.init(params)
  updates, accepted = step(opt, state, params, params, half_square, value=2.0)
  test_utils.assert_trees_all_close(accepted.learning_rate, 2.0)
  test_utils.assert_trees_all_close(updates, jnp.array([-4.0]))
  updates, rejected = step(opt, state, params, params, half_square, value=1.0)
  test_utils.assert_trees_all_close(rejected.learning_rate, 2.0)  # Halved.
  test_utils.assert_trees_all_close(updates, jnp.array([0.0]))
  assert int(rejected.num_rejected) == 1


def test_guard_off_ignores_value():
  params = jnp.array([2.0])
  opt = rule(4.0, lrlr=0.5, guard=False, guard_rtol=0.0)
  _, state = step(opt, opt.init(params), params, params, half_square, value=0.0)
  test_utils.assert_trees_all_close(state.learning_rate, 2.0)


def test_learning_rate_is_clipped():
  params = jnp.array([1.0])
  low = rule(1e-3, lrlr=0.5, min_learning_rate=8e-4, tie_break="down")
  _, state = step(low, low.init(params), params, params, constant)
  test_utils.assert_trees_all_close(state.learning_rate, 8e-4)
  high = rule(1.0, lrlr=0.5, max_learning_rate=1.2)
  updates, state = step(high, high.init(params), params, params, linear)
  test_utils.assert_trees_all_close(state.learning_rate, 1.2)
  test_utils.assert_trees_all_close(updates, jnp.array([-1.2]))


def test_learning_rate_never_reaches_zero():
  # Ties lower lr by 90% a step: 1e-3 * 0.1 ** 400 would underflow to 0.
  opt = rule(1e-3, lrlr=0.9, tie_break="down")
  params = jnp.array([1.0])

  def body(state, _):
    return step(opt, state, params, params, constant)[1], None

  state, _ = jax.lax.scan(body, opt.init(params), length=400)
  test_utils.assert_trees_all_close(state.learning_rate, 1e-9)


def test_every_k_probes_only_on_multiples_of_k():
  # f = sum(w), u = 1: up always wins, so probe steps multiply lr by 1.5.
  opt = rule(1.0, lrlr=0.5, every_k=3)
  params = jnp.array([0.0])
  state = opt.init(params)
  lrs, updates = [], []
  for _ in range(7):
    update, state = step(opt, state, params, jnp.ones(1), linear)
    lrs.append(float(state.learning_rate))
    updates.append(float(update[0]))
  np.testing.assert_allclose(lrs, [1.5, 1.5, 1.5, 2.25, 2.25, 2.25, 3.375])
  np.testing.assert_allclose(updates, [-x for x in lrs])
  assert int(state.count) == 7


def test_value_fn_does_not_run_on_steps_that_do_not_probe():
  calls = []

  def loss(w):
    jax.debug.callback(lambda: calls.append(1))
    return linear(w)

  opt = rule(1.0, every_k=4, probe="sequential")

  @jax.jit
  def update(state, params):
    return step(opt, state, params, jnp.ones(1), loss)

  params = jnp.zeros(1)
  state = opt.init(params)
  for _ in range(8):
    _, state = update(state, params)
  jax.effects_barrier()
  assert len(calls) == 2 * 2  # Two probe steps (count 0 and 4), two probes.


def test_lrlr_growth_lengthens_the_step_while_moves_agree():
  # s = 0.1 * 2 ** (n - 1) after n rises in a row, capped at 0.5:
  # lr: 1 -> 1.1 (s=0.1) -> 1.21 (0.1) -> 1.452 (0.2) -> 2.0328 (0.4) ->
  # 3.0492 (0.8 capped to 0.5).
  opt = rule(1.0, lrlr=0.1, lrlr_growth=2.0)
  params = jnp.array([0.0])
  state = opt.init(params)
  lrs = []
  for _ in range(5):
    _, state = step(opt, state, params, jnp.ones(1), linear)
    lrs.append(float(state.learning_rate))
  expected = [1.1, 1.21, 1.452, 1.452 * 1.4, 1.452 * 1.4 * 1.5]
  np.testing.assert_allclose(lrs, expected, rtol=1e-6)
  assert int(state.streak) == 5


def test_lrlr_growth_resets_when_moves_alternate():
  # Without the guard: swapping in a loss 7 above the running average of the
  # chosen losses (about -1.3) would be rejected without value.
  opt = rule(1.0, lrlr=0.1, lrlr_growth=2.0, tie_break="down", guard=False)
  params = jnp.array([0.0])
  state = opt.init(params)
  for _ in range(3):  # Three rises: the next step would be 0.4.
    _, state = step(opt, state, params, jnp.ones(1), linear)
  _, state = step(opt, state, params, jnp.ones(1), constant)  # A fall, 0.4.
  test_utils.assert_trees_all_close(state.learning_rate, 1.452 * 0.6)
  assert int(state.streak) == -1
  # A rise: the step is back to 0.1.
  _, state = step(opt, state, params, jnp.ones(1), linear)
  test_utils.assert_trees_all_close(state.learning_rate, 1.452 * 0.6 * 1.1)
  assert int(state.streak) == 1


def test_updates_follow_the_direction_tree():
  params = {"a": jnp.array([1.0, 2.0]), "b": (jnp.array(3.0),)}
  direction = {"a": jnp.array([0.5, -1.0]), "b": (jnp.array(2.0),)}
  opt = rule(0.1, lrlr=0.5)

  def loss(p):
    return half_square(p["a"]) + half_square(p["b"][0])

  updates, state = step(opt, opt.init(params), params, direction, loss)
  lr = state.learning_rate
  test_utils.assert_trees_all_close(updates, otu.scale(-lr, direction))


@pytest.mark.parametrize("seed", range(5))
def test_decision_matches_the_losses_on_random_problems(seed):
  keys = jax.random.split(jax.random.key(seed), 4)
  params = {
    "w": jax.random.normal(keys[0], (3, 4)),
    "b": jax.random.normal(keys[1], (4,)),
  }
  direction = jax.tree.map(lambda p: 0.5 * p + 0.1, params)
  x = jax.random.normal(keys[2], (16, 3))
  lr = float(jnp.exp(jax.random.uniform(keys[3], (), minval=-5, maxval=1)))

  def loss(p, x):
    return jnp.mean(jnp.tanh(x @ p["w"] + p["b"]) ** 2)

  opt = rule(lr, lrlr=0.2, guard=False)
  updates, state = step(opt, opt.init(params), params, direction, loss, x=x)

  def loss_at(scale):
    return loss(jax.tree.map(lambda p, u: p - scale * u, params, direction), x)

  up, down = loss_at(lr * 1.2), loss_at(lr * 0.8)
  expected_lr = lr * 1.2 if up < down else lr * 0.8
  test_utils.assert_trees_all_close(state.learning_rate, expected_lr)
  test_utils.assert_trees_all_close(
    (state.loss_up, state.loss_down), (up, down), rtol=1e-6
  )
  test_utils.assert_trees_all_close(
    updates, otu.scale(-expected_lr, direction), rtol=1e-6
  )


def test_tie_break_up_raises_the_learning_rate_up_to_the_tie_ceiling():
  # lr = 0.2 and tie_ceiling = 0.3 (as if unequal losses had once chosen 0.3);
  # s = 0.25: a tie climbs to 0.25, then to min(0.3125, 0.3) = 0.3, then holds.
  opt = rule(0.2, lrlr=0.25, lrlr_growth=1.0, tie_break="up")
  params = jnp.array([1.0, -1.0])
  state = opt.init(params)._replace(tie_ceiling=jnp.asarray(0.3))
  lrs, streaks = [], []
  for _ in range(3):
    updates, state = step(opt, state, params, params, constant)
    lrs.append(float(state.learning_rate))
    streaks.append(int(state.streak))
  np.testing.assert_allclose(lrs, [0.25, 0.3, 0.3], rtol=1e-6)
  assert streaks == [1, 2, 0]
  test_utils.assert_trees_all_close(updates, jnp.array([-0.3, 0.3]))
  test_utils.assert_trees_all_close(state.tie_ceiling, 0.3)


def test_ties_hold_the_starting_learning_rate_before_any_decision():
  opt = rule(0.2, lrlr=0.25, tie_break="up")
  params = jnp.array([1.0, -1.0])
  updates, state = step(opt, opt.init(params), params, params, constant)
  test_utils.assert_trees_all_close(state.learning_rate, 0.2)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.2, 0.2]))
  assert int(state.streak) == 0


def test_unequal_losses_raise_the_tie_ceiling():
  # f = sum(w), u = 1: up wins, lr 1 -> 1.5, and so does the ceiling. A fall
  # leaves the ceiling where it was.
  opt = rule(1.0, lrlr=0.5, lrlr_growth=1.0)
  params = jnp.array([0.0])
  _, state = step(opt, opt.init(params), params, jnp.ones(1), linear)
  test_utils.assert_trees_all_close(state.tie_ceiling, 1.5)
  _, state = step(opt, state, params, jnp.ones(1), lambda w: -jnp.sum(w))
  test_utils.assert_trees_all_close(state.learning_rate, 0.75)
  test_utils.assert_trees_all_close(state.tie_ceiling, 1.5)


def test_tie_break_up_climbs_out_of_steps_below_float_precision():
  # At lr = 1e-9 the step changes w = 1 by 1e-9, below float32 resolution, so
  # the two probes tie. "down" sinks further; "up" climbs back toward the
  # ceiling (0.5 here, as if earlier probes had chosen it) until they differ.
  params = jnp.array([1.0])

  def run(tie_break):
    opt = rule(1e-9, lrlr=0.5, tie_break=tie_break)
    state = opt.init(params)._replace(tie_ceiling=jnp.asarray(0.5))

    def body(state, _):
      return step(opt, state, params, params, half_square)[1], None

    return jax.lax.scan(body, state, length=60)[0].learning_rate

  assert float(run("down")) == pytest.approx(1e-9)
  assert float(run("up")) > 1e-3


def test_tie_break_up_lowers_the_learning_rate_on_a_zero_direction():
  # At an exact minimum the gradient is zero and every candidate ties: the
  # learning rate must not climb forever (it would overflow and give NaN).
  opt = rule(0.2, lrlr=0.25, tie_break="up")
  params = jnp.array([0.0, 0.0])
  updates, state = step(opt, opt.init(params), params, params, half_square)
  test_utils.assert_trees_all_close(state.learning_rate, 0.15)
  test_utils.assert_trees_all_close(updates, jnp.zeros(2))
