"""Each part of the rule on its own: evidence, guard, move, scale search."""

import functools

import jax.numpy as jnp
import numpy as np
from optax._src import test_utils
import pytest

import optax_hillclimb
from optax_hillclimb import _decisions
from optax_hillclimb import _evidence
from optax_hillclimb import _guard
from optax_hillclimb import _moves
from optax_hillclimb import _search
from optax_hillclimb import _state

F = jnp.float32
INF = jnp.inf


def _state_at(lr, **fields):
  lr = jnp.asarray(lr, F)
  defaults = dict(
    count=jnp.int32(1),
    learning_rate=lr,
    streak=jnp.int32(0),
    loss_up=jnp.asarray(INF, F),
    loss_down=jnp.asarray(INF, F),
    num_rejected=jnp.int32(0),
    tie_ceiling=lr,
    loss_average=jnp.asarray(INF, F),
  )
  return _state.HillclimbState(**{**defaults, **fields})


def _seen(
  losses=(), *, value=None, grad=None, direction=(1.0,), slope_rtol=0.5
):
  """A Seen whose probes score ``losses`` and remember what they were asked."""
  asked = []

  def score(learning_rates, batch_size=None, direction=None):
    del batch_size
    asked.append(np.asarray(learning_rates))
    if direction is not None:
      asked.append(np.asarray(direction))
    return jnp.asarray(losses, F)[: learning_rates.shape[0]]

  def dot(a, b):
    return jnp.sum(jnp.asarray(a, F) * jnp.asarray(b, F))

  seen = _decisions.Seen(
    score=score,
    params=jnp.ones(1, F),
    direction=jnp.asarray(direction, F),
    value=None if value is None else jnp.asarray(value, F),
    grad=None if grad is None else jnp.asarray(grad, F),
    dot=dot,
    slope_rtol=slope_rtol,
  )
  return seen, asked


# Evidence of each decision rule, from what the update received.


def test_two_probes_scores_both_candidates_and_prefers_the_lower_loss():
  seen, asked = _seen([3.0, 5.0], value=4.0)
  evidence = _decisions.two_probes(seen, _state_at(0.5), jnp.asarray(0.1, F))
  np.testing.assert_allclose(asked[0], [0.55, 0.45], rtol=1e-6)
  assert bool(evidence.go_up)
  assert not bool(evidence.tie)
  assert float(evidence.step_loss) == 3.0
  assert float(evidence.reference) == 4.0
  assert not bool(evidence.unsafe)
  assert (float(evidence.loss_up), float(evidence.loss_down)) == (3.0, 5.0)


def test_two_probes_without_value_has_nothing_to_compare_with():
  seen, _ = _seen([2.0, 2.0])
  evidence = _decisions.two_probes(seen, _state_at(1.0), jnp.asarray(0.1, F))
  assert bool(evidence.tie)
  assert not bool(evidence.go_up)
  assert float(evidence.reference) == INF


def test_two_probes_without_value_compare_with_the_running_average():
  seen, _ = _seen([2.0, 3.0])
  state = _state_at(1.0, loss_average=jnp.asarray(1.25, F))
  evidence = _decisions.two_probes(seen, state, jnp.asarray(0.1, F))
  assert float(evidence.reference) == 1.25
  assert bool(_guard.rejects(evidence, guard=True, guard_rtol=0.5))


def test_two_probes_with_a_zero_direction_cannot_climb_a_tie():
  seen, _ = _seen([2.0, 2.0], direction=(0.0,))
  evidence = _decisions.two_probes(seen, _state_at(1.0), jnp.asarray(0.1, F))
  assert not bool(evidence.can_climb)


@pytest.mark.parametrize(
  ("f1", "go_up"),
  # f0 = 10, slope g.u = 4, lr = 1: Armijo with c = 1/2 needs 10 - f1 > 2.
  [(7.9, True), (8.0, False), (9.0, False)],
)
def test_one_probe_is_armijos_test_at_the_learning_rate(f1, go_up):
  seen, asked = _seen([f1], value=10.0, grad=(2.0,), direction=(2.0,))
  evidence = _decisions.one_probe(seen, _state_at(1.0), jnp.asarray(0.1, F))
  np.testing.assert_allclose(asked[0], [1.0])
  assert bool(evidence.go_up) == go_up
  assert float(evidence.step_loss) == pytest.approx(f1)
  assert float(evidence.reference) == 10.0


def test_one_probe_with_a_smaller_fraction_rises_on_less_decrease():
  # 10 - 9 = 1 > c * 4 only for c < 1/4.
  seen, _ = _seen([9.0], value=10.0, grad=(2.0,), direction=(2.0,))
  seen = seen._replace(slope_rtol=0.2)
  evidence = _decisions.one_probe(seen, _state_at(1.0), jnp.asarray(0.1, F))
  assert bool(evidence.go_up)


@pytest.mark.parametrize(
  ("grad", "go_up", "tie"), [(3.0, True, False), (-3.0, False, False)]
)
def test_no_probe_reads_the_sign_along_the_last_step(grad, go_up, tie):
  seen, asked = _seen(value=2.0, grad=(grad,))
  state = _state_at(1.0, loss_down=jnp.asarray(1.5, F))
  state = state._replace(previous_direction=jnp.asarray([0.5], F))
  evidence = _decisions.no_probe(seen, state, jnp.asarray(0.1, F))
  assert not asked  # no evaluation at all
  assert (bool(evidence.go_up), bool(evidence.tie)) == (go_up, tie)
  assert float(evidence.step_loss) == 2.0
  assert float(evidence.reference) == 1.5
  assert not bool(evidence.no_evidence)


def test_no_probe_before_any_step_has_no_evidence():
  seen, _ = _seen(value=2.0, grad=(1.0,))
  state = _state_at(1.0)._replace(previous_direction=jnp.zeros(1, F))
  evidence = _decisions.no_probe(seen, state, jnp.asarray(0.1, F))
  assert bool(evidence.no_evidence)


def test_held_out_scores_the_previous_direction_on_this_batch():
  seen, asked = _seen([3.0, 5.0], value=4.0, direction=(9.0,))
  state = _state_at(0.5)._replace(previous_direction=jnp.asarray([2.0], F))
  evidence = _decisions.held_out(seen, state, jnp.asarray(0.1, F))
  np.testing.assert_allclose(asked[0], [0.55, 0.45], rtol=1e-6)
  np.testing.assert_array_equal(asked[1], [2.0])  # not the incoming 9
  assert bool(evidence.go_up)
  assert not bool(evidence.no_evidence)
  assert float(evidence.reference) == 4.0


def test_held_out_before_any_step_has_no_evidence():
  seen, _ = _seen([3.0, 5.0])
  state = _state_at(0.5)._replace(previous_direction=jnp.zeros(1, F))
  evidence = _decisions.held_out(seen, state, jnp.asarray(0.1, F))
  assert bool(evidence.no_evidence)


def test_every_decision_in_the_table_builds_and_runs():
  for name, decision in _decisions.DECISIONS.items():
    opt = optax_hillclimb.scale_by_hillclimb(
      0.1, decision=name, scale_search=None
    )
    params = jnp.asarray([1.0, -2.0])
    state = opt.init(params)
    extra = {arg: (jnp.float32(2.5) if arg == "value" else params)
             for arg in decision.needs}  # fmt: skip
    updates, _ = opt.update(
      params, state, params, value_fn=lambda p: jnp.sum(p**2) / 2, **extra
    )
    test_utils.assert_trees_all_equal_shapes(updates, params)
    test_utils.assert_trees_all_equal_dtypes(updates, params)


# The guard.


@pytest.mark.parametrize(
  ("loss", "reference", "rtol", "rejected"),
  [
    (2.9, 1.5, 1.0, False),  # below 1.5 + 1.0 * 1.5 = 3.0
    (3.1, 1.5, 1.0, True),
    (1.6, 1.5, 0.0, True),
    (1.5, 1.5, 0.0, False),
    (1e30, INF, 1.0, False),  # nothing to compare with
    (jnp.nan, 1.5, 1.0, False),  # but a non-finite step is unsafe, below
  ],
)
def test_guard_compares_the_step_loss_with_the_reference(
  loss, reference, rtol, rejected
):
  evidence = _evidence.compare(
    jnp.asarray(loss, F),
    jnp.asarray(loss, F),
    can_climb=True,
    reference=jnp.asarray(reference, F),
  )
  expected = rejected or not np.isfinite(loss)
  assert bool(_guard.rejects(evidence, guard=True, guard_rtol=rtol)) == expected
  assert not bool(_guard.rejects(evidence, guard=False, guard_rtol=rtol))


# The move.

_move = functools.partial(
  _moves.move,
  reject=jnp.bool_(False),
  streak=jnp.int32(0),
  clip=lambda x: jnp.clip(x, 1e-3, 10.0),
  tie_break="up",
)


def _evidence_of(loss_up, loss_down, can_climb=True):
  return _evidence.compare(
    jnp.asarray(loss_up, F),
    jnp.asarray(loss_down, F),
    can_climb=can_climb,
    reference=jnp.asarray(INF, F),
  )


def _lr_move(evidence, lr=1.0, ceiling=1.0, **kwargs):
  lr = jnp.asarray(lr, F)
  kwargs = {"rejected_value": lr / 2, **kwargs}
  return _move(
    lr,
    up=lr * 1.1,
    down=lr * 0.9,
    evidence=evidence,
    tie_ceiling=jnp.asarray(ceiling, F),
    **kwargs,
  )


def test_move_up_and_down_set_the_streak_and_the_tie_ceiling():
  up = _lr_move(_evidence_of(1.0, 2.0))
  assert float(up.value) == pytest.approx(1.1)
  assert int(up.streak) == 1
  assert bool(up.decided)
  assert float(up.tie_ceiling) == pytest.approx(1.1)
  down = _lr_move(_evidence_of(2.0, 1.0), streak=jnp.int32(-2))
  assert float(down.value) == pytest.approx(0.9)
  assert int(down.streak) == -3
  assert float(down.tie_ceiling) == 1.0


def test_a_tie_climbs_only_up_to_the_ceiling_then_holds():
  below = _lr_move(_evidence_of(1.0, 1.0), lr=1.0, ceiling=1.05)
  assert float(below.value) == pytest.approx(1.05)
  assert int(below.streak) == 1
  assert not bool(below.decided)
  at = _lr_move(_evidence_of(1.0, 1.0), lr=1.0, ceiling=1.0)
  assert float(at.value) == 1.0
  assert int(at.streak) == 0
  flat = _lr_move(_evidence_of(1.0, 1.0, can_climb=False))
  assert float(flat.value) == pytest.approx(0.9)


def test_ties_hold_keeps_the_value_and_down_ties_fall():
  held = _lr_move(_evidence_of(1.0, 1.0), ties_hold=True)
  assert float(held.value) == 1.0
  assert int(held.streak) == 0
  fall = _lr_move(_evidence_of(1.0, 1.0), tie_break="down", ceiling=2.0)
  assert float(fall.value) == pytest.approx(0.9)


def test_a_rejected_step_backs_off_and_counts_as_a_fall():
  moved = _lr_move(
    _evidence_of(1.0, 2.0), reject=jnp.bool_(True), streak=jnp.int32(3)
  )
  assert float(moved.value) == 0.5
  assert int(moved.streak) == -1
  assert not bool(moved.decided)


def test_the_move_clips_to_the_bounds():
  moved = _lr_move(_evidence_of(1.0, 2.0), lr=10.0, ceiling=10.0)
  assert float(moved.value) == 10.0


# The scale search.


def test_search_takes_the_smallest_candidate_with_half_the_best_decrease():
  candidates = jnp.asarray([0.01, 0.1, 1.0, 10.0], F)
  # Decrease from the smallest candidate's 10: best 6 (at 1.0); 0.1 gets 4.
  losses = jnp.asarray([10.0, 6.0, 4.0, INF], F)
  searched = _search.search(
    jnp.asarray(0.01, F),
    candidates,
    losses,
    reference=jnp.asarray(INF, F),
    guard=True,
    guard_rtol=1.0,
    backoff=0.5,
    clip=lambda x: x,
  )
  assert float(searched.learning_rate) == pytest.approx(0.1)
  assert float(searched.loss) == 6.0
  assert bool(searched.decided)
  assert not bool(searched.reject)


def test_search_rejected_by_the_guard_starts_below_every_candidate():
  candidates = jnp.asarray([0.1, 1.0], F)
  searched = _search.search(
    jnp.asarray(0.1, F),
    candidates,
    jnp.asarray([50.0, 40.0], F),
    reference=jnp.asarray(10.0, F),
    guard=True,
    guard_rtol=1.0,
    backoff=0.5,
    clip=lambda x: x,
  )
  assert bool(searched.reject)
  assert not bool(searched.decided)
  assert float(searched.learning_rate) == pytest.approx(0.05)
