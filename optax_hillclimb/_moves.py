"""How climbed values move, in ``scale_by_hillclimb`` and ``climb`` alike.

Both pick the starting learning rate with the same scale search, guard a step
the same way, grow their relative step over a streak of moves in the same
direction and count that streak the same way. Each rule is written once here.
"""

import jax
import jax.numpy as jnp
import optax

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


def rejects(
  best: jax.Array,
  current: jax.Array | None,
  *,
  guard: bool,
  guard_rtol: jax.typing.ArrayLike,
) -> jax.Array:
  """The guard: whether a step whose better candidate scored ``best`` fails.

  Args:
    best: the loss of the candidate the step would take.
    current: the loss at the current parameters (``value``), or ``None``.
    guard: whether the guard is on.
    guard_rtol: how far above ``current`` (relative to its size) ``best`` may
      be.

  Returns:
    ``True`` when the guard is on and ``best`` is non-finite, or exceeds
    ``current + guard_rtol * |current|``.
  """
  reject = jnp.logical_and(guard, ~jnp.isfinite(best))
  if current is not None:
    reject = reject | jnp.logical_and(guard, exceeds(best, current, guard_rtol))
  return reject


def exceeds(
  loss: jax.Array, reference: jax.Array, rtol: jax.typing.ArrayLike
) -> jax.Array:
  """Whether ``loss`` is above ``reference`` by more than ``rtol`` of it."""
  rtol = jnp.asarray(rtol, reference.dtype)
  return loss > reference + rtol * jnp.abs(reference)


def pick_scale(
  candidates: jax.Array, losses: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """The scale search's choice among candidate learning rates.

  The smallest candidate that achieves at least half of the best decrease,
  measured from the smallest candidate's loss (about the current loss): the
  greedy best on one batch can be far too long for the steps that follow (on
  separable data, the longer the better, without end).

  Args:
    candidates: the candidate learning rates, a vector.
    losses: the loss after a step with each (``inf`` for non-finite ones).

  Returns:
    The index of the chosen candidate, and whether the losses differ at all
    (when they are all equal there is nothing to choose).
  """
  best = jnp.min(losses)
  reference = losses[jnp.argmin(candidates)]
  good_enough = losses <= best + (reference - best) / 2
  chosen = jnp.argmin(jnp.where(good_enough, candidates, jnp.inf))
  return chosen, jnp.any(losses != best)
