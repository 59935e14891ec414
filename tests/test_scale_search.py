"""The scale search of the first update, worked out by hand."""

import functools

import _rules
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc
from optax_hillclimb import _transform

SCALES = (0.1, 1.0, 10.0, 100.0)


def exp_loss(w):
  """f(w) = sum(exp(w)): along -u with u = 1, f(c) = exp(-c)."""
  return jnp.sum(jnp.exp(w))


def update(opt, state, value_fn, **kwargs):
  """One update at w = 0 along u = 1."""
  params = jnp.zeros(1)
  return opt.update(jnp.ones(1), state, params, value_fn=value_fn, **kwargs)


def test_search_takes_the_smallest_scale_with_half_the_best_decrease():
  # lr0 = 0.1: candidates 0.01, 0.1, 1, 10 score exp(-c) = 0.990, 0.905,
  # 0.368, 4.5e-5. The best decrease from the smallest candidate's 0.990 is
  # 0.990; half of it is reached first at c = 1 (0.368), not at the argmin 10.
  opt = ohc.scale_by_hillclimb(0.1, scale_search=SCALES, **_rules.EVERY_STEP)
  updates, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 1.0)
  test_utils.assert_trees_all_close(updates, jnp.array([-1.0]))
  test_utils.assert_trees_all_close(
    (state.loss_up, state.loss_down), (np.exp(-1.0), np.exp(-1.0))
  )
  test_utils.assert_trees_all_close(state.tie_ceiling, 1.0)
  assert int(state.streak) == 0
  assert int(state.count) == 1


def test_rates_scored_are_rounded_to_quarter_decades():
  # lr0 = 0.3: 0.03, 0.3, 3, 30 are scored at 10^-1.5, 10^-0.5, 10^0.5,
  # 10^1.5, where exp(-c) = 0.969, 0.729, 0.042, 1.9e-14. Half the best
  # decrease from 0.969 is first reached at 10^0.5.
  opt = ohc.scale_by_hillclimb(0.3, scale_search=SCALES, **_rules.EVERY_STEP)
  updates, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 10**0.5)
  test_utils.assert_trees_all_close(updates, jnp.array([-(10**0.5)]))
  test_utils.assert_trees_all_close(
    _transform.on_quarter_decades(jnp.array([3e-4, 2e-5, 7e-2, 1.5])),
    jnp.array([10**-3.5, 10**-4.75, 10**-1.25, 10**0.25]),
  )


def test_ties_climb_back_to_the_search_pick_not_to_lr0():
  # lr0 = 100 scores 1, 10, 100: exp(-c) = 0.368, 4.5e-5, 3.7e-44; 10 has
  # half the best decrease. The larger starting guess was scored and lost.
  opt = ohc.scale_by_hillclimb(
    100.0, scale_search=(0.01, 0.1, 1.0), **_rules.EVERY_STEP
  )
  _, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 10.0)
  test_utils.assert_trees_all_close(state.tie_ceiling, 10.0)


@pytest.mark.parametrize("total_steps", [None, 30])
def test_starting_rates_of_any_mantissa_make_the_same_run(total_steps):
  # Least squares trained with hillclimb_adam from six starting rates six
  # decades apart, each with another mantissa: the search scores the same
  # rates from each, picks the same one, and from there the runs agree bit
  # for bit, state included (without value, the guard's average starts from
  # the pick's loss, not from a step at lr0 that is never taken).
  x = jax.random.normal(jax.random.key(0), (64, 8))
  y = x @ jnp.linspace(-1.0, 1.0, 8) + 0.1
  loss = lambda w: jnp.mean((x @ w["a"] + w["b"] - y) ** 2)
  start = {"a": jnp.full(8, 0.5), "b": jnp.zeros([])}

  def train(lr0):
    opt = ohc.hillclimb_adam(lr0, total_steps=total_steps, every_k=4)

    def step(carry, _):
      params, state = carry
      grads = jax.grad(loss)(params)
      updates, state = opt.update(grads, state, params, value_fn=loss)
      return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (start, opt.init(start)), length=30)[0]

  runs = [jax.jit(train)(lr0) for lr0 in (1e-6, 2e-5, 3e-4, 5e-3, 7e-2, 1.5)]
  assert float(loss(runs[0][0])) < 0.5 * float(loss(start))
  for run in runs[1:]:
    test_utils.assert_trees_all_equal(run, runs[0])


def test_search_runs_only_at_the_first_update():
  # The second update is a probe step: lr 1 -> 1.01 (up is better on exp).
  opt = ohc.scale_by_hillclimb(0.1, scale_search=SCALES, **_rules.EVERY_STEP)
  _, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
  _, state = update(opt, state, exp_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 1.01)


def test_search_keeps_lr0_when_every_candidate_ties():
  opt = ohc.scale_by_hillclimb(0.1, scale_search=SCALES, **_rules.EVERY_STEP)
  constant = lambda w: jnp.asarray(3.0)
  updates, state = update(opt, opt.init(jnp.zeros(1)), constant)
  test_utils.assert_trees_all_close(state.learning_rate, 0.1)
  test_utils.assert_trees_all_close(state.tie_ceiling, 0.1)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.1]))


def test_search_candidates_are_clipped_to_the_bounds():
  # Candidates 0.01 .. 10 clipped to [0.05, 0.5]: the best is 0.5.
  opt = ohc.scale_by_hillclimb(
    0.1,
    **_rules.EVERY_STEP,
    scale_search=SCALES,
    min_learning_rate=0.05,
    max_learning_rate=0.5,
  )
  _, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
  test_utils.assert_trees_all_close(state.learning_rate, 0.5)


def test_guard_rejects_a_search_with_no_finite_candidate():
  # Zero update, and lr = smallest candidate (0.01) * backoff (0.5).
  opt = ohc.scale_by_hillclimb(0.1, scale_search=SCALES, **_rules.EVERY_STEP)
  nan_loss = lambda w: jnp.sum(w) * jnp.nan
  updates, state = update(opt, opt.init(jnp.zeros(1)), nan_loss)
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  test_utils.assert_trees_all_close(state.learning_rate, 0.005)
  assert int(state.num_rejected) == 1


def test_guard_rejects_a_search_whose_choice_is_far_worse_than_value():
  # The chosen candidate (c = 1, loss 0.368) is above 2 * value = 0.2.
  opt = ohc.scale_by_hillclimb(0.1, scale_search=SCALES, **_rules.EVERY_STEP)
  updates, state = update(opt, opt.init(jnp.zeros(1)), exp_loss, value=0.1)
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  assert int(state.num_rejected) == 1


def test_default_search_escapes_a_start_below_float_precision():
  # From 1e-9, f = w^2 / 2 at w = 1 cannot tell lr0 * (1 +- s) apart, and
  # without the search ties hold lr0. The search scores up to 1e-9 * 1e6,
  # where f falls by about 1e-3; half of that takes a step of at least
  # 5e-4, and the first quarter decade above is 10^-3.25.
  params = jnp.array([1.0])
  half_square = lambda w: 0.5 * jnp.sum(w**2)
  opt = ohc.scale_by_hillclimb(1e-9, **_rules.EVERY_STEP)
  _, state = opt.update(params, opt.init(params), params, value_fn=half_square)
  test_utils.assert_trees_all_close(state.learning_rate, 10**-3.25)


@pytest.mark.parametrize("every_k", [1, 3])
def test_every_k_counts_the_search_as_the_first_probe(every_k):
  calls = []

  def loss(w):
    jax.debug.callback(lambda: calls.append(1))
    return exp_loss(w)

  opt = ohc.scale_by_hillclimb(
    0.1,
    **_rules.EVERY_STEP | dict(every_k=every_k),
    scale_search=SCALES,
    probe="sequential",
  )
  step = jax.jit(functools.partial(update, opt, value_fn=loss))
  state = opt.init(jnp.zeros(1))
  for _ in range(4):
    _, state = step(state)
  jax.effects_barrier()
  # Four candidates at count 0, then two per probe step (counts 1, 2, 3, or
  # only 3).
  assert len(calls) == len(SCALES) + 2 * len(range(1, 4, every_k))


def test_vmap_and_sequential_searches_agree():
  results = []
  for probe in ("vmap", "sequential"):
    opt = ohc.scale_by_hillclimb(0.1, probe=probe, **_rules.EVERY_STEP)
    _, state = update(opt, opt.init(jnp.zeros(1)), exp_loss)
    results.append(state.learning_rate)
  test_utils.assert_trees_all_equal(*results)


@pytest.mark.parametrize(
  ("scale_search", "error"),
  [
    ((), None),
    ((0.0, 1.0), ValueError),
    ((-1.0,), ValueError),
    ((float("inf"),), ValueError),
    (("1",), ValueError),
    ("10", TypeError),
    (10.0, TypeError),
  ],
)
def test_bad_scale_search_is_named(scale_search, error):
  if error is None:
    ohc.scale_by_hillclimb(scale_search=scale_search)
    return
  with pytest.raises(error, match="scale_search"):
    ohc.scale_by_hillclimb(scale_search=scale_search)
