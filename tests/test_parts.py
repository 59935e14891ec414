"""The parts that scale_by_hillclimb and climb share: guard, move, search."""

import functools
import types

import jax.numpy as jnp
import pytest

from optax_hillclimb import _transform

F = jnp.float32
INF = jnp.inf


def _guard(rtol, on=True):
  return types.SimpleNamespace(guard=on, guard_rtol=rtol)


# The guard.


@pytest.mark.parametrize(
  ("loss", "reference", "rtol", "rejected"),
  [
    (2.9, 1.5, 1.0, False),  # below 1.5 + 1.0 * 1.5 = 3.0
    (3.1, 1.5, 1.0, True),
    (1.6, 1.5, 0.0, True),
    (1.5, 1.5, 0.0, False),
    (-0.5, -1.0, 1.0, False),  # -1 + 1 * |-1| = 0
    (0.5, -1.0, 1.0, True),
    (1e30, INF, 1.0, False),  # nothing to compare with
    (jnp.nan, 1.5, 1.0, True),  # a non-finite step is always rejected
    (INF, INF, 1.0, True),
  ],
)
def test_guard_compares_the_step_loss_with_the_reference(
  loss, reference, rtol, rejected
):
  loss, reference = jnp.asarray(loss, F), jnp.asarray(reference, F)
  assert bool(_transform.guard_rejects(_guard(rtol), loss, reference)) == (
    rejected
  )
  assert not bool(
    _transform.guard_rejects(_guard(rtol, False), loss, reference)
  )


def test_the_watch_backs_off_on_a_spike_and_restarts_the_average():
  average = jnp.asarray(2.0, F)
  calm = _transform.watch_loss(_guard(1.0), average, jnp.asarray(3.0, F))
  assert not bool(calm.spike)
  assert float(calm.average) == pytest.approx(0.9 * 2 + 0.1 * 3)
  spike = _transform.watch_loss(_guard(1.0), average, jnp.asarray(5.0, F))
  assert bool(spike.spike)
  assert not bool(spike.reject)
  assert float(spike.average) == 5.0
  nan = _transform.watch_loss(_guard(1.0), average, jnp.asarray(jnp.nan, F))
  assert bool(nan.spike)
  assert bool(nan.reject)
  assert float(nan.average) == 2.0
  assert _transform.watch_loss(_guard(1.0), average, None) is None


# The move.

_move = functools.partial(
  _transform.move,
  no_evidence=jnp.bool_(False),
  reject=jnp.bool_(False),
  streak=jnp.int32(0),
  lower=1e-3,
  upper=10.0,
  tie_break="up",
)


def _lr_move(loss_up, loss_down, lr=1.0, ceiling=1.0, can_climb=True, **kw):
  lr = jnp.asarray(lr, F)
  kw = {"rejected_value": lr / 2, **kw}
  return _move(
    lr,
    up=lr * 1.1,
    down=lr * 0.9,
    loss_up=jnp.asarray(loss_up, F),
    loss_down=jnp.asarray(loss_down, F),
    can_climb=jnp.bool_(can_climb),
    tie_ceiling=jnp.asarray(ceiling, F),
    **kw,
  )


def test_move_up_and_down_set_the_streak_and_the_tie_ceiling():
  up = _lr_move(1.0, 2.0)
  assert float(up.value) == pytest.approx(1.1)
  assert int(up.streak) == 1
  assert float(up.tie_ceiling) == pytest.approx(1.1)
  down = _lr_move(2.0, 1.0, streak=jnp.int32(-2))
  assert float(down.value) == pytest.approx(0.9)
  assert int(down.streak) == -3
  assert float(down.tie_ceiling) == 1.0


def test_a_tie_climbs_only_up_to_the_ceiling_then_holds():
  below = _lr_move(1.0, 1.0, lr=1.0, ceiling=1.05)
  assert float(below.value) == pytest.approx(1.05)
  assert int(below.streak) == 1
  assert float(below.tie_ceiling) == pytest.approx(1.05)  # unchanged
  at = _lr_move(1.0, 1.0, lr=1.0, ceiling=1.0)
  assert float(at.value) == 1.0
  assert int(at.streak) == 0
  flat = _lr_move(1.0, 1.0, can_climb=False)
  assert float(flat.value) == pytest.approx(0.9)


def test_ties_hold_keeps_the_value_and_down_ties_fall():
  held = _lr_move(1.0, 1.0, ties_hold=True)
  assert float(held.value) == 1.0
  assert int(held.streak) == 0
  fall = _lr_move(1.0, 1.0, tie_break="down", ceiling=2.0)
  assert float(fall.value) == pytest.approx(0.9)


def test_no_evidence_holds_the_value_and_resets_the_streak():
  held = _lr_move(1.0, 2.0, no_evidence=jnp.bool_(True), streak=jnp.int32(4))
  assert float(held.value) == 1.0
  assert int(held.streak) == 0
  assert float(held.tie_ceiling) == 1.0


def test_a_rejected_step_backs_off_and_counts_as_a_fall():
  moved = _lr_move(1.0, 2.0, reject=jnp.bool_(True), streak=jnp.int32(3))
  assert float(moved.value) == 0.5
  assert int(moved.streak) == -1
  assert float(moved.tie_ceiling) == 1.0


def test_the_move_clips_to_the_bounds():
  moved = _lr_move(1.0, 2.0, lr=10.0, ceiling=10.0)
  assert float(moved.value) == 10.0


def test_the_relative_step_grows_along_a_streak_up_to_a_half():
  streaks = jnp.asarray([0, 1, 2, -3, 4, 9], jnp.int32)
  steps = _transform.relative_step(streaks, 0.1, 2.0, F)
  assert steps.tolist() == pytest.approx([0.1, 0.1, 0.2, 0.4, 0.5, 0.5])


# The scale search.


def _search(candidates, losses, lr0, reference=INF, norms=(1.0, 0.0)):
  return _transform.search(
    _guard(1.0),
    jnp.asarray(lr0, F),
    jnp.asarray(candidates, F),
    jnp.asarray(losses, F),
    reference=jnp.asarray(reference, F),
    bounds=(1e-9, None),
    step_norm=jnp.asarray(norms[0], F),
    params_norm=jnp.asarray(norms[1], F),
  )


def test_search_takes_the_smallest_candidate_with_half_the_best_decrease():
  # Decrease from the smallest candidate's 10: best 6 (at 1.0); 0.1 gets 4.
  searched = _search([0.01, 0.1, 1.0, 10.0], [10.0, 6.0, 4.0, INF], 0.01)
  assert float(searched.learning_rate) == pytest.approx(0.1)
  assert float(searched.loss) == 6.0
  assert bool(searched.decided)
  assert not bool(searched.reject)


def test_search_sets_aside_steps_longer_than_a_fifth_of_the_parameters():
  # |u| = 1, |w| = 1: candidates above 0.2 are set aside, so 0.1 is best.
  searched = _search(
    [0.01, 0.1, 1.0, 10.0], [10.0, 8.0, 1.0, 0.5], 0.01, norms=(1.0, 1.0)
  )
  assert float(searched.learning_rate) == pytest.approx(0.1)


def test_search_rejected_by_the_guard_starts_below_every_candidate():
  searched = _search([0.1, 1.0], [50.0, 40.0], 0.1, reference=10.0)
  assert bool(searched.reject)
  assert not bool(searched.decided)
  assert float(searched.learning_rate) == pytest.approx(0.05)
