"""The stretch decision: windows of steps judged on the batch after them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc
from optax_hillclimb import _transform

F = jnp.float32


def _stretch(learning_rate=0.1, **settings):
  """``scale_by_hillclimb`` with the stretch decision, no scale search."""
  return ohc.scale_by_hillclimb(
    learning_rate, decision="stretch", scale_search=None, **settings
  )


def _run(opt, params, loss, steps, **extra):
  """Plain SGD directions (the gradient), ``steps`` updates, unjitted."""
  state = opt.init(params)
  states = []
  for _ in range(steps):
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state, params, value_fn=loss, **extra)
    params = optax.apply_updates(params, updates)
    states.append(state)
  return params, states


def _recording(opt, loss):
  """A jitted update whose value_fn records the points it scores, in order.

  ``probe="sequential"`` scores the candidates in order (up, then down).
  """
  points = []

  def recording(p):
    jax.debug.callback(lambda q: points.append(np.asarray(q).copy()), p)
    return loss(p)

  return jax.jit(functools.partial(opt.update, value_fn=recording)), points


def _probed_points(opt, state, params, updates, loss, **extra):
  """One update; returns the new state and the points it scored."""
  update, points = _recording(opt, loss)
  _, state = update(updates, state, params, **extra)
  jax.effects_barrier()
  return state, points


def _probing(opt, steps):
  """The steps (u = 1, value given) whose update scores two probes."""
  update, points = _recording(opt, jnp.sum)
  state, probing = opt.init(jnp.zeros(1)), []
  for count in range(steps):
    _, state = update(jnp.ones(1), state, jnp.zeros(1), value=0.0)
    jax.effects_barrier()
    assert len(points) in (0, 2)
    if points:
      probing.append(count)
    points.clear()
  return probing


def test_decisions_come_at_doubling_windows_then_every_k():
  # With value given, only decisions evaluate value_fn (two probes each).
  # Told a run of 80 steps, the stretch's windows are 80 / 8 = 10 long.
  for decision, total_steps, expected in [
    ("stretch", None, [0, 1, 2, 4, 8, 16, 24]),
    ("stretch", 80, [0, 1, 2, 4, 8, 10, 20]),
    ("two_probes", None, [0, 8, 16, 24]),
  ]:
    opt = ohc.scale_by_hillclimb(
      0.1, decision=decision, every_k=8, scale_search=None,
      probe="sequential", total_steps=total_steps,
    )  # fmt: skip
    assert _probing(opt, 30) == expected, decision


def test_the_window_sums_the_steps_since_the_last_decision():
  # Updates u = 1 at lr 0.1: the window restarts at each decision (steps 0,
  # 1, 2, 4) and then holds the steps taken since, 0.1 each.
  opt = _stretch(every_k=8, lrlr=0.5)
  loss = lambda p: jnp.asarray(1.0)  # every probe ties: lr holds at 0.1
  state = opt.init(jnp.zeros(1))
  kept = []
  for _ in range(7):
    _, state = opt.update(
      jnp.ones(1), state, jnp.zeros(1), value_fn=loss, value=1.0
    )
    kept.append(float(state.displacement[0]))
    assert float(state.learning_rate) == pytest.approx(0.1)
  np.testing.assert_allclose(kept, [0.1, 0.1, 0.1, 0.2, 0.1, 0.2, 0.3])


def _window_state(opt, count, window=2.0):
  """The state at a decision step ``count`` whose window holds ``window``."""
  state = opt.init(jnp.ones(1))
  return state._replace(
    count=jnp.int32(count), displacement=jnp.asarray([window], F)
  )


def test_stretch_scores_the_window_both_ways_on_this_batch():
  # w = 1, window D = 2 (the steps taken), s = 0.1, and without total_steps
  # the probes centred an eighth of the window back: at w + (1/8 - 0.1) D =
  # 1.05 (longer steps) and w + (1/8 + 0.1) D = 1.45 (shorter), whatever the
  # incoming direction (9 here). f(1.05) = 1.1025 beats f(1.45) = 2.1025:
  # the longer steps win, and the rate rises by 10%.
  opt = _stretch(0.5, lrlr=0.1, probe="sequential")
  state, points = _probed_points(
    opt,
    _window_state(opt, count=1),
    jnp.ones(1),
    jnp.asarray([9.0]),
    lambda p: jnp.sum(p**2),
    value=1.0,
  )
  np.testing.assert_allclose(np.ravel(points), [1.05, 1.45], rtol=1e-6)
  np.testing.assert_allclose(state.loss_up, 1.1025, rtol=1e-6)
  np.testing.assert_allclose(state.loss_down, 2.1025, rtol=1e-6)
  np.testing.assert_allclose(state.learning_rate, 0.55, rtol=1e-6)


def test_an_empty_window_holds_the_learning_rate():
  opt = _stretch(0.5, lrlr=0.1)
  _, state = opt.update(
    jnp.ones(1),
    _window_state(opt, count=1, window=0.0),
    jnp.ones(1),
    value_fn=lambda p: jnp.sum(p**2),
    value=1.0,
  )
  assert float(state.learning_rate) == 0.5
  assert int(state.streak) == 0


def test_a_window_that_overshot_lowers_the_rate_one_that_fell_short_raises():
  # f = w^2 from w = 1 along the gradient 2w. At lr 0.75 each step takes
  # w to -0.5 w: the window overshoots the minimum and the rate falls.
  # At lr 0.05 each step takes w to 0.9 w: the rate rises.
  loss = lambda p: jnp.sum(p**2)
  _, states = _run(_stretch(0.75, lrlr=0.1), jnp.ones(1), loss, 3)
  assert float(states[1].learning_rate) == pytest.approx(0.675)
  _, states = _run(_stretch(0.05, lrlr=0.1), jnp.ones(1), loss, 3)
  assert float(states[1].learning_rate) == pytest.approx(0.055)


def _phase(count, total_steps=None, every_k=128, center=0.25):
  """The run's phase at ``count`` for the stretch at the defaults."""
  config = _transform._Config(
    learning_rate=0.1, total_steps=total_steps, decision="stretch",
    every_k=every_k, lrlr=0.1, lrlr_growth=1.5, tie_break="up", guard=True,
    guard_rtol=1.0, scale_search=None, min_learning_rate=1e-9,
    max_learning_rate=None, probe="auto", axis_name=None, center=center,
    judge_steps=1,
  )  # fmt: skip
  return _transform.run_phase(config, jnp.asarray(count, jnp.int32), F)


def test_the_centre_falls_from_a_quarter_to_zero_over_the_run():
  centres = _phase([0, 50, 100, 150], total_steps=100).center
  np.testing.assert_allclose(centres, [0.25, 0.125, 0.0, 0.0])
  # Without the run's length: a told run's midpoint, at every step.
  for count in (0, 10**6):
    assert float(_phase(count).center) == 0.125


def test_center_sets_the_centre_told_and_not_told():
  centres = _phase([0, 50, 100], total_steps=100, center=0.125).center
  np.testing.assert_allclose(centres, [0.125, 0.0625, 0.0])
  assert float(_phase(7, center=0.125).center) == 0.0625


@pytest.mark.parametrize("center", [-0.1, 1.0])
def test_center_outside_zero_one_is_an_error(center):
  with pytest.raises(ValueError, match=r"center must be in the interval"):
    ohc.scale_by_hillclimb(center=center)


def test_center_without_the_stretch_is_an_error():
  with pytest.raises(ValueError, match=r"center places the stretch"):
    ohc.scale_by_hillclimb(decision="two_probes", center=0.125)


def test_windows_grow_with_the_run():
  # Told the run's length: an eighth of it, never below every_k.
  assert int(_phase(0, total_steps=1000).window) == 128
  assert int(_phase(0, total_steps=4000).window) == 500
  assert int(_phase(0, total_steps=4000, every_k=1000).window) == 1000
  # Not told: the largest every_k * 2^j that the steps so far hold twice.
  counts = [0, 511, 512, 1023, 1024, 2048, 4095, 4096, 2**30]
  windows = _phase(counts).window
  np.testing.assert_array_equal(
    windows, [128, 128, 256, 256, 512, 1024, 1024, 2048, 2**29]
  )
  np.testing.assert_array_equal(
    _phase([0, 19, 20, 39, 40], every_k=10).window, [10, 10, 10, 10, 20]
  )


def test_a_centred_stretch_scores_points_back_along_the_window():
  # At step 1 of 5 the centre is 0.25 (1 - 1/5) = 0.2, s = 0.1: the probes
  # move the parameters by -(0.1 - 0.2) D and -(-0.1 - 0.2) D, both back
  # towards the window's start: w = 1 + 0.1 * 2 and 1 + 0.3 * 2.
  opt = _stretch(0.5, lrlr=0.1, total_steps=5, probe="sequential")
  _, points = _probed_points(
    opt, _window_state(opt, count=1), jnp.ones(1), jnp.ones(1), jnp.sum,
    value=1.0,
  )  # fmt: skip
  np.testing.assert_allclose(np.ravel(points), [1.2, 1.6], rtol=1e-6)


def test_early_in_a_known_run_a_window_past_the_minimum_can_still_raise():
  # f = w^2 from w = 1 at lr 0.6: the step lands at -0.2, past the minimum
  # by a sixth of the window D = 1.2. Judged at its end, the window
  # overshot and the rate falls 10%. Early in a run of 1000 steps the
  # probes are centred 0.25 (1 - 1/1000) back, at w = 0.0997, where the
  # steps still fall short: the rate rises 10%.
  loss = lambda p: jnp.sum(p**2)
  _, states = _run(_stretch(0.6, lrlr=0.1), jnp.ones(1), loss, 2)
  assert float(states[1].learning_rate) == pytest.approx(0.54)
  _, states = _run(
    _stretch(0.6, lrlr=0.1, total_steps=1000), jnp.ones(1), loss, 2
  )
  assert float(states[1].learning_rate) == pytest.approx(0.66)
  # At the run's end the centre is back at the window's end.
  _, states = _run(_stretch(0.6, lrlr=0.1, total_steps=1), jnp.ones(1), loss, 2)
  assert float(states[1].learning_rate) == pytest.approx(0.54)


def test_the_last_fifth_of_a_known_run_settles_linearly_to_zero():
  counts = jnp.asarray([0, 7, 8, 9, 10, 12])
  np.testing.assert_allclose(
    _phase(counts, total_steps=10).settle, [1, 1, 1, 0.5, 0, 0], atol=1e-6
  )
  assert float(_phase(counts[3]).settle) == 1.0
  # The step taken is the climbed rate times the factor; the rate itself
  # is not scaled.
  loss = lambda p: jnp.sum(p**2)
  opt = _stretch(0.01, total_steps=10)
  params, state = jnp.ones(2), opt.init(jnp.ones(2))
  factors = []
  update = jax.jit(functools.partial(opt.update, value_fn=loss))
  for _ in range(12):
    grads = jax.grad(loss)(params)
    updates, state = update(grads, state, params)
    factors.append(float(-updates[0] / (state.learning_rate * grads[0])))
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(factors, [1] * 9 + [0.5, 0, 0], atol=1e-6)
  assert float(state.learning_rate) > 0.01


def test_without_value_a_step_onto_a_cliff_is_not_taken():
  # The loss is inf past 2.5. Steps of lr 1 along -1 move w by +1; the
  # window at step 1 ties (lr falls 1%), so w reaches 1.99. At step 2 the
  # window ties again (0.99 -> 0.9801) and the step at 0.99 would reach 2.98:
  # the guard scores it, does not take it, and halves the rate.
  def loss(params):
    return jnp.where(params[0] > 2.5, jnp.inf, 1.0)

  opt = ohc.scale_by_hillclimb(
    1.0,
    decision="stretch",
    every_k=64,
    lrlr=0.01,
    scale_search=None,
    tie_break="down",
  )
  params = jnp.zeros(1)
  state = opt.init(params)
  lrs, rejected, path = [], [], []
  for _ in range(8):
    updates, state = opt.update(-jnp.ones(1), state, params, value_fn=loss)
    params = optax.apply_updates(params, updates)
    lrs.append(float(state.learning_rate))
    rejected.append(int(state.num_rejected))
    path.append(float(params[0]))
  assert max(path) <= 2.5
  first = rejected.index(1)
  assert path[first] == path[first - 1]  # the step was not taken
  assert first == 2
  assert lrs[first] == pytest.approx(0.5 * 0.9801)


def test_state_types_hold_across_updates_in_low_precision():
  opt = _stretch(every_k=4)
  loss = lambda p: jnp.sum(p.astype(jnp.float32) ** 2)
  params = jnp.ones(3, jnp.bfloat16)
  state0 = opt.init(params)
  update = jax.jit(functools.partial(opt.update, value_fn=loss))
  state = state0
  for _ in range(6):
    updates, state = update(jax.grad(loss)(params), state, params)
    assert updates.dtype == jnp.bfloat16
    test_utils.assert_trees_all_equal(
      jax.tree.map(jax.typeof, state0), jax.tree.map(jax.typeof, state)
    )


def test_the_aliases_decide_by_stretch_every_128_steps():
  state = ohc.hillclimb_adam(1e-3).init(jnp.ones(2))
  kept = optax.tree.get(state, "displacement")
  test_utils.assert_trees_all_equal(kept, jnp.zeros(2))


def test_a_finite_spike_decides_at_once_instead_of_halving_the_rate():
  # Every probe ties (ties lower the rate), decisions at steps 0, 1, 2 and 4
  # move it by 10%, 10%, 15%; at step 5 value jumps tenfold: the window ends
  # there and decides (22.5% lower), where the other rules back off by half.
  opt = _stretch(every_k=64, lrlr=0.1, tie_break="down")
  loss = lambda p: jnp.asarray(1.0)
  state = opt.init(jnp.zeros(1))
  lrs = []
  for value in [1.0] * 5 + [10.0, 1.0]:
    _, state = opt.update(
      jnp.ones(1), state, jnp.zeros(1), value_fn=loss, value=value
    )
    lrs.append(float(state.learning_rate))
  np.testing.assert_allclose(
    lrs,
    [0.1, 0.09, 0.081, 0.081, 0.081 * 0.85, 0.081 * 0.85 * 0.775,
     0.081 * 0.85 * 0.775],
    rtol=1e-6,
  )  # fmt: skip
  assert int(state.num_rejected) == 0


def test_a_spike_that_the_step_would_worsen_halves_the_rate():
  # On f = w^2 at w = 1 with a step of lr 1.5 along the gradient 2 (from 1 to
  # -2), the loss would rise from 1 to 4: at a spike (value 1 against an
  # average of 0.1) the rate is halved, after the decision moved it.
  opt = _stretch(1.5, every_k=64, lrlr=0.1)
  loss = lambda p: jnp.sum(p**2)
  state = opt.init(jnp.ones(1))._replace(loss_average=jnp.asarray(0.1))
  state = state._replace(count=jnp.int32(5))  # not a window's end
  _, state = opt.update(
    2 * jnp.ones(1), state, jnp.ones(1), value_fn=loss, value=1.0
  )
  # The empty window holds 1.5; the halving gives 0.75.
  assert float(state.learning_rate) == pytest.approx(0.75)
  assert int(state.num_rejected) == 0


def test_total_steps_can_be_injected():
  # Under optax.inject_hyperparams total_steps arrives as an array in the
  # state; the steps are those of the Python integer (to float rounding).
  loss = lambda p: jnp.sum((p - 3.0) ** 2)
  plain = ohc.hillclimb_adam(0.1, total_steps=10)
  injected = optax.inject_hyperparams(ohc.hillclimb_adam)(
    learning_rate=0.1, total_steps=10
  )
  finals = []
  for opt in (plain, injected):
    params, state = jnp.zeros(2), opt.init(jnp.zeros(2))
    step = jax.jit(
      lambda p, s, opt=opt: opt.update(jax.grad(loss)(p), s, p, value_fn=loss)
    )
    for _ in range(12):
      updates, state = step(params, state)
      params = optax.apply_updates(params, updates)
    finals.append(params)
  test_utils.assert_trees_all_close(finals[0], finals[1], rtol=1e-4)
  # Past total_steps the steps are zero.
  np.testing.assert_array_equal(updates, jnp.zeros(2))


def _rate_after_16_steps(opt):
  """The rate applied after 16 jitted steps on (w - 3)^2 from w = 0."""
  loss = lambda p: jnp.sum((p - 3.0) ** 2)
  params, state = jnp.zeros(2), opt.init(jnp.zeros(2))
  step = jax.jit(
    lambda p, s: opt.update(jax.grad(loss)(p), s, p, value_fn=loss)
  )
  for _ in range(16):
    updates, state = step(params, state)
    params = optax.apply_updates(params, updates)
  return ohc.get_learning_rate(state)


def test_center_can_be_injected_and_moves_the_rate():
  rates = _rate_after_16_steps
  settings = dict(learning_rate=0.2, total_steps=40, every_k=4)
  plain = rates(_stretch(center=0.125, **settings))
  stretch = functools.partial(ohc.scale_by_hillclimb, scale_search=None)
  injected = rates(optax.inject_hyperparams(stretch)(center=0.125, **settings))
  np.testing.assert_allclose(injected, plain, rtol=1e-6)
  # Centred at the window's end, the decision at step 16 holds less of it.
  assert float(rates(_stretch(center=0.0, **settings))) < float(plain)


def test_past_total_steps_the_rate_applied_is_zero_and_reported():
  # A loop that runs longer than it said: from step T on the steps are zero,
  # and get_learning_rate says so; the climbed rate is still in the state.
  loss = lambda p: jnp.sum((p - 3.0) ** 2)
  opt = ohc.hillclimb_adam(0.1, total_steps=10)
  params, state = jnp.zeros(2), opt.init(jnp.zeros(2))
  update = jax.jit(functools.partial(opt.update, value_fn=loss))
  applied = []
  for _ in range(14):
    updates, state = update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
    applied.append(float(ohc.get_learning_rate(state)))
  climbed = float(state[-1].learning_rate)
  assert climbed > 0
  np.testing.assert_array_equal(updates, jnp.zeros(2))
  # Step 9 (the last of the run) applies half the climbed rate, then zero.
  assert applied[9] == pytest.approx(0.5 * climbed)
  assert applied[10:] == [0.0] * 4


def test_judge_steps_score_the_steps_before_each_decision():
  # every_k=8, not told the run's length: decisions at 0, 1, 2, 4, 8, 16,
  # 24. With judge_steps=3 the two steps before each also score its probes
  # (where they come after the previous decision).
  opt = _stretch(every_k=8, probe="sequential", judge_steps=3)
  expected = [0, 1, 2, 3, 4, 6, 7, 8, 14, 15, 16, 22, 23, 24]
  assert _probing(opt, 25) == expected


def _slope_run(judge_steps):
  """u = 1 at lr 0.1 on the loss slope * w, slope 0 (ties) until step 6."""
  opt = _stretch(every_k=8, guard=False, judge_steps=judge_steps)
  loss = lambda p, slope: slope * jnp.sum(p)
  params, state, states = jnp.zeros(1), opt.init(jnp.zeros(1)), []
  for slope in [0.0] * 6 + [2.0, 2.0, -1.0]:
    updates, state = opt.update(
      jnp.ones(1), state, params, value_fn=loss, slope=slope
    )
    params = optax.apply_updates(params, updates)
    states.append(state)
  return states


def test_a_decision_moves_toward_the_lower_sum_of_its_steps_losses():
  # Along w + c D the loss slope * w differs between the probes by
  # -2 s slope D (s = 0.1): at steps 6 and 7 (D = 0.2, 0.3, slope 2) by
  # -0.08 and -0.12, for the longer steps; at the decision, step 8 (D =
  # 0.4, slope -1), by +0.08, for the shorter ones.
  judged = _slope_run(judge_steps=3)
  assert [float(s.learning_rate) for s in judged[:8]] == pytest.approx(
    [0.1] * 8
  )
  # Before the decision: the sums at w = -0.6, -0.7 of the losses at
  # w + 0.025 D and w + 0.225 D (centre 1/8 back).
  np.testing.assert_allclose(judged[7].judged_up, -1.19 - 1.385, rtol=1e-5)
  np.testing.assert_allclose(judged[7].judged_down, -1.11 - 1.265, rtol=1e-5)
  # The sum says longer steps (-0.12), the decision's own batch shorter.
  assert float(judged[8].learning_rate) == pytest.approx(0.11)
  assert float(_slope_run(judge_steps=1)[8].learning_rate) == pytest.approx(
    0.09
  )
  # The state keeps the decision's own losses, and the sums start over.
  np.testing.assert_allclose(judged[8].loss_up, 0.79, rtol=1e-5)
  np.testing.assert_allclose(judged[8].loss_down, 0.71, rtol=1e-5)
  assert float(judged[8].judged_up) == float(judged[8].judged_down) == 0.0


def test_judge_steps_can_be_injected():
  rates = _rate_after_16_steps
  settings = dict(learning_rate=0.2, total_steps=40, every_k=4, judge_steps=3)
  stretch = functools.partial(ohc.scale_by_hillclimb, scale_search=None)
  injected = optax.inject_hyperparams(stretch)(**settings)
  np.testing.assert_allclose(rates(injected), rates(stretch(**settings)))


@pytest.mark.parametrize("judge_steps", [0, 2.5, True])
def test_judge_steps_must_be_a_positive_integer(judge_steps):
  with pytest.raises(ValueError, match=r"judge_steps must be a positive int"):
    ohc.scale_by_hillclimb(judge_steps=judge_steps)


@pytest.mark.parametrize(
  "alias",
  [
    ohc.scale_by_hillclimb,
    ohc.hillclimb,
    ohc.hillclimb_adam,
    ohc.hillclimb_muon,
  ],
)
def test_judge_steps_without_the_stretch_is_an_error(alias):
  with pytest.raises(ValueError, match=r"judge_steps sums the stretch"):
    alias(decision="two_probes", judge_steps=2)
  alias(decision="two_probes", judge_steps=1)
