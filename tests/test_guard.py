"""The guard on every step, with and without ``value``."""

import functools

import _rules
import jax
import jax.numpy as jnp
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

rule = functools.partial(
  ohc.scale_by_hillclimb, scale_search=None, **_rules.EVERY_STEP
)


def half_square(w):
  return 0.5 * jnp.sum(w**2)


def run(opt, values, *, w=2.0, value_fn=half_square):
  """Updates with direction 1 at fixed ``w``, passing each of ``values``."""
  params = jnp.array([w])
  state = opt.init(params)
  rates, updates = [], []
  for value in values:
    extra = {} if value is None else {"value": jnp.float32(value)}
    update, state = opt.update(
      jnp.ones(1), state, params, value_fn=value_fn, **extra
    )
    rates.append(float(state.learning_rate))
    updates.append(float(update[0]))
  return rates, updates, state


def test_a_blow_up_on_a_step_that_does_not_probe_backs_off_on_that_step():
  # every_k = 10: only the first step probes (w = 2, u = 1, s = 0.5: the
  # probe at 1.5 scores 0.125, at 0.5 1.125: up). The losses 4, 4, 4 make the
  # running average 4; 9 > 4 + 1.0 * 4 backs the rate off at once, and the
  # step is still taken at the halved rate (the damage is done; a smaller
  # step from there is the remedy).
  opt = rule(1.0, every_k=10, lrlr=0.5)
  rates, updates, state = run(opt, [4.0, 4.0, 4.0, 9.0, 9.0])
  assert rates == pytest.approx([1.5, 1.5, 1.5, 0.75, 0.75])
  assert updates == pytest.approx([-1.5, -1.5, -1.5, -0.75, -0.75])
  # The spike restarts the average: a loss that stays at 9 backs off once.
  test_utils.assert_trees_all_close(state.loss_average, 9.0)
  assert int(state.num_rejected) == 0


def test_a_non_finite_value_is_rejected_on_a_step_that_does_not_probe():
  opt = rule(1.0, every_k=10, lrlr=0.5)
  rates, updates, state = run(opt, [4.0, 4.0, float("nan"), 4.0])
  assert rates == pytest.approx([1.5, 1.5, 0.75, 0.75])
  assert updates == pytest.approx([-1.5, -1.5, 0.0, -0.75])
  assert int(state.num_rejected) == 1


def test_the_running_average_forgets_a_tenth_per_step():
  opt = rule(1.0, every_k=10, lrlr=0.5)
  *_, state = run(opt, [4.0, 2.0, 6.0])
  # 4 -> 0.9 * 4 + 0.1 * 2 = 3.8 -> 0.9 * 3.8 + 0.1 * 6 = 4.02.
  test_utils.assert_trees_all_close(state.loss_average, 4.02, rtol=1e-6)


def test_without_the_guard_a_blow_up_is_ignored():
  opt = rule(1.0, every_k=10, lrlr=0.5, guard=False)
  rates, _, _ = run(opt, [4.0, 4.0, 1e9, float("inf")])
  assert rates == pytest.approx([1.5] * 4)


def test_without_value_probes_are_compared_with_the_chosen_losses():
  # w = 2, u = 1, lr = 1, s = 0.5: the probes at 1.5 and 0.5 score 0.125
  # and 1.125; the chosen 0.125 starts the average. A loss that then jumps
  # a thousandfold is rejected although it is the better probe.
  opt = rule(1.0, lrlr=0.5)
  params = jnp.array([2.0])
  state = opt.init(params)
  _, state = opt.update(jnp.ones(1), state, params, value_fn=half_square)
  test_utils.assert_trees_all_close(state.loss_average, 0.125)
  jump = lambda w: 1000.0 * half_square(w)
  updates, state = opt.update(jnp.ones(1), state, params, value_fn=jump)
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  assert int(state.num_rejected) == 1


def test_a_state_where_every_step_is_rejected_does_not_last():
  # Every step longer than float32 can resolve at w = 1 (about 6e-8) gives
  # a non-finite loss, and min_learning_rate = 1e-6 is above that: at the
  # floor, every step would be rejected forever. The guard takes the rate
  # below the floor until a step is accepted.
  cliff = lambda w: jnp.where(jnp.all(w == 1.0), 1.0, jnp.inf)
  opt = rule(1e-6, min_learning_rate=1e-6, lrlr=0.1)
  params = jnp.array([1.0])
  state = opt.init(params)
  step = jax.jit(
    lambda state: opt.update(jnp.ones(1), state, params, value_fn=cliff)
  )
  for _ in range(12):
    _, state = step(state)
  assert 0 < int(state.num_rejected) < 12
  assert float(state.learning_rate) < 6e-8
