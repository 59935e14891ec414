"""How climbed values move, in ``scale_by_hillclimb`` and ``climb`` alike.

A move is a pure function of a value's state (its streak and tie ceiling) and
of the :class:`~optax_hillclimb._evidence.Evidence` a decision gathered: up,
down, hold, or back off when the guard rejects the step. Both transformations
grow their relative step over a streak of moves in the same direction and
count that streak the same way; each rule is written once here.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_hillclimb import _evidence

# How a tie may move a value (see ``move``).
TIE_BREAKS = ("down", "up")

# Bounds |streak| so that the counter cannot overflow on very long runs; the
# step it sets has long reached ``max_lrlr`` by then.
MAX_STREAK = 1 << 20


def is_nonzero(tree: optax.Updates) -> jax.Array:
  """Whether any entry of ``tree`` is nonzero (``False`` for no leaves)."""
  return jnp.any(
    jnp.asarray([jnp.any(leaf != 0) for leaf in jax.tree.leaves(tree)], bool)
  )


def relative_step(
  streak: jax.Array,
  lrlr: jax.typing.ArrayLike,
  lrlr_growth: jax.typing.ArrayLike,
  max_lrlr: jax.typing.ArrayLike,
  dtype: jnp.dtype,
) -> jax.Array:
  """The relative step of the next move: ``lrlr``, grown by the streak.

  Args:
    streak: signed number of consecutive moves in the same direction (any
      shape: one per climbed value).
    lrlr: the relative step after a change of direction.
    lrlr_growth: its growth with each further move in the same direction.
    max_lrlr: the largest relative step (never below ``lrlr``).
    dtype: the dtype of the result.

  Returns:
    ``min(lrlr * lrlr_growth ** max(|streak| - 1, 0), max(max_lrlr, lrlr))``.
  """
  base = jnp.asarray(lrlr, dtype)
  length = jnp.maximum(jnp.abs(streak) - 1, 0)
  return jnp.minimum(
    base * jnp.asarray(lrlr_growth, dtype) ** length,
    jnp.maximum(jnp.asarray(max_lrlr, dtype), base),
  )


def next_streak(streak: jax.Array, rising: jax.Array) -> jax.Array:
  """The streak after a move up (``rising``) or down, as int32."""
  same_way = jnp.where(rising, streak > 0, streak < 0)
  length = jnp.where(same_way, jnp.minimum(jnp.abs(streak) + 1, MAX_STREAK), 1)
  return jnp.where(rising, length, -length).astype(jnp.int32)


class Moved(NamedTuple):
  """A value after a move.

  Attributes:
    value: the new value, clipped to its bounds.
    streak: the new signed streak (int32).
    tie_ceiling: the new tie ceiling.
    decided: whether unequal, finite evidence chose the value (and the step
      was not rejected).
  """

  value: jax.Array
  streak: jax.Array
  tie_ceiling: jax.Array
  decided: jax.Array


def move(
  value: jax.Array,
  *,
  up: jax.Array,
  down: jax.Array,
  evidence: _evidence.Evidence,
  reject: jax.Array,
  streak: jax.Array,
  tie_ceiling: jax.Array,
  rejected_value: jax.Array,
  clip: Callable[[jax.Array], jax.Array],
  tie_break: str,
  ties_hold: jax.typing.ArrayLike = False,
) -> Moved:
  """Moves ``value`` to ``up`` or ``down`` as the evidence says.

  Args:
    value: the current value.
    up: the larger candidate value.
    down: the smaller candidate value.
    evidence: what the decision saw.
    reject: whether the guard rejects the step.
    streak: the signed number of moves in the same direction so far.
    tie_ceiling: the highest value that unequal evidence has chosen.
    rejected_value: the value after a rejected step.
    clip: clips a value to its bounds.
    tie_break: ``"up"``: a tie climbs toward ``tie_ceiling`` (and holds
      there); ``"down"``: a tie moves down, as the reference rule does.
    ties_hold: whether a tie holds the value whatever ``tie_break`` says.

  Returns:
    The value after the move, its streak and tie ceiling, and whether the
    evidence decided. A hold (no evidence, or a tie that cannot climb
    further) resets the streak; a rejected step counts as a fall.
  """
  go_up = evidence.go_up & ~evidence.no_evidence
  tie = evidence.tie | evidence.no_evidence
  hold = evidence.no_evidence | (evidence.tie & jnp.asarray(ties_hold, bool))
  new = jnp.where(go_up, up, down)
  if tie_break == "up":
    # A zero direction ties at every value: climbing would never end, so it
    # moves down as the reference rule does.
    climbs = evidence.tie & evidence.can_climb & ~hold
    tie_value = jnp.maximum(value, jnp.minimum(up, tie_ceiling))
    new = jnp.where(climbs, tie_value, new)
    hold = hold | (climbs & (tie_value == value))
    go_up = go_up | (climbs & ~hold)
  new = jnp.where(hold, value, new)
  new = clip(jnp.where(reject, rejected_value, new))
  decided = ~tie & ~reject & evidence.finite
  new_streak = next_streak(streak, go_up & ~reject)
  return Moved(
    value=new,
    streak=jnp.where(hold & ~reject, 0, new_streak).astype(jnp.int32),
    # Only unequal losses are evidence for a value that ties may climb to.
    tie_ceiling=jnp.where(decided, jnp.maximum(tie_ceiling, new), tie_ceiling),
    decided=decided,
  )
