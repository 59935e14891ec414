"""The first step is safe at any scale of the loss.

One batch's loss along the update cannot see a long step kill ReLU units: on
a regression with targets in the hundreds, the best step on the first batch
leaves half the hidden units dead, and with ``every_k=10`` the next nine
steps at that rate kill the rest. The scale search therefore bounds the first
step by a fraction of the parameters' norm (``_transform.bound_steps``;
benchmarks/first_step.py measures it against other picks).
"""

import types

import _rules
import jax
import jax.numpy as jnp
import optax
import pytest

from benchmarks import _picks
from benchmarks import _regression
import optax_hillclimb as ohc
from optax_hillclimb import _transform

F = jnp.float32
INF = jnp.inf
CANDIDATES = jnp.asarray([0.01, 0.1, 1.0, 10.0], F)
# Unbounded, the pick is 1 (loss 2, half of the best decrease 8 from 10).
LOSSES = jnp.asarray([10.0, 9.0, 2.0, 8.0], F)


def _search_with(step_norm, params_norm):
  return _transform.search(
    types.SimpleNamespace(guard=True, guard_rtol=1.0),
    jnp.asarray(0.01, F),
    CANDIDATES,
    LOSSES,
    reference=jnp.asarray(INF, F),
    bounds=(1e-9, None),
    step_norm=step_norm,
    params_norm=params_norm,
  )


def test_steps_longer_than_a_fifth_of_the_parameters_score_inf():
  # |u| = 2, |w| = 1: c |u| <= 0.2 |w| holds up to c = 0.1 (0.2, equality).
  bounded = _transform.bound_steps(CANDIDATES, LOSSES, 2.0, 1.0, 0.2)
  assert bounded.tolist() == [10.0, 9.0, INF, INF]


def test_the_smallest_candidate_always_stays():
  bounded = _transform.bound_steps(CANDIDATES, LOSSES, 1e4, 1.0, 0.2)
  assert bounded.tolist() == [10.0, INF, INF, INF]


def test_parameters_all_zero_bound_nothing():
  bounded = _transform.bound_steps(CANDIDATES, LOSSES, 2.0, 0.0, 0.2)
  assert bounded.tolist() == LOSSES.tolist()


def test_search_picks_among_the_bounded_candidates():
  # Within the bound the best decrease is 1 (at 0.1); 0.1 achieves it all.
  searched = _search_with(2.0, 1.0)
  assert float(searched.learning_rate) == pytest.approx(0.1)
  assert float(searched.loss) == 9.0
  assert bool(searched.decided)


def test_search_with_parameters_all_zero_is_unbounded():
  assert float(_search_with(2.0, 0.0).learning_rate) == pytest.approx(1.0)


def _dead_shares(opt, steps=20, loss_scale=1e4, seed=0):
  """Trains the regression; the dead share after each step."""
  (x, y), _ = _regression.data()
  params = _regression.init(jax.random.key(seed))
  loss = lambda p, bx, by: _regression.loss(p, bx, by, loss_scale)
  order = jax.random.permutation(jax.random.key(seed + 1), len(y))
  order = order[: steps * _regression.BATCH_SIZE].reshape(steps, -1)

  def step(carry, indices):
    params, state = carry
    bx, by = x[indices], y[indices]
    value, grads = jax.value_and_grad(loss)(params, bx, by)
    updates, state = opt.update(
      grads, state, params, value_fn=loss, value=value, bx=bx, by=by
    )
    params = optax.apply_updates(params, updates)
    return (params, state), _regression.dead_share(params, x)

  run = jax.jit(lambda carry: jax.lax.scan(step, carry, order))
  _, dead = run((params, opt.init(params)))
  return dead


# The quick run takes the defaults from 1e-6; the slow tests, every case.
_SLOW = pytest.mark.slow


@pytest.mark.parametrize("make", [ohc.hillclimb, ohc.hillclimb_adam])
@pytest.mark.parametrize(
  "lr0",
  [1e-6, pytest.param(1e-3, marks=_SLOW), pytest.param(10**0.5, marks=_SLOW)],
)
@pytest.mark.parametrize(
  "rule",
  ["defaults", pytest.param("two probes every 10 steps", marks=_SLOW)],
)
def test_regression_keeps_most_units_through_twenty_steps(make, lr0, rule):
  # Before the bound, hillclimb's first step left 66% of the units dead and
  # every unit was dead by step 20 (two probes every 10 steps).
  settings = {} if rule == "defaults" else _rules.EVERY_STEP | {"every_k": 10}
  dead = _dead_shares(make(lr0, **settings))
  assert float(jnp.max(dead)) < 0.5, dead


def _first_learning_rate(lr0=1e-3, loss_scale=1e4):
  """hillclimb's learning rate after its first update (jitted) on one batch."""
  (x, y), _ = _regression.data()
  x, y = x[: _regression.BATCH_SIZE], y[: _regression.BATCH_SIZE]
  params = _regression.init(jax.random.key(0))
  loss = lambda p: _regression.loss(p, x, y, loss_scale)
  opt = ohc.hillclimb(lr0)

  @jax.jit
  def first_update(params):
    value, grads = jax.value_and_grad(loss)(params)
    _, state = opt.update(
      grads, opt.init(params), params, value_fn=loss, value=value
    )
    return ohc.get_learning_rate(state)

  return float(first_update(params))


@pytest.mark.slow  # the benchmark harness's picks, traced into the update
@pytest.mark.parametrize(
  ("name", "multiple"),
  [
    # The library's own pick and bound: the library's choice exactly.
    (_picks.AFTER, 1.0),
    # Unbounded, the pick is six quarter decades longer; bounded by 0.1,
    # one quarter decade shorter.
    (_picks.BEFORE, 10**1.5),
    ("half, step <= 0.1 norm(w)", 10**-0.25),
  ],
)
def test_a_swapped_pick_traces_into_the_update(name, multiple):
  library = _first_learning_rate()
  pick, _, bound = _picks.PICKS[name]
  with _picks.picking(pick, bound):
    swapped = _first_learning_rate()
  assert swapped == pytest.approx(library * multiple, rel=1e-5)
  assert _transform.pick_scale is not pick  # The library's is back.
  assert _first_learning_rate() == library
