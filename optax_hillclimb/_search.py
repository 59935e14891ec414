"""The scale search: the first update's choice among multiples of lr0."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from optax_hillclimb import _evidence
from optax_hillclimb import _guard

# Multiples of the starting learning rate scored at the first update: six
# decades on each side, so that any starting guess from 1e-6 to 1e2 lands
# within a factor of 10 of the best single step for learning rates between
# 1e-4 and 1 (SGD's and Adam's usual range).
SCALE_SEARCH = tuple(10.0**k for k in range(-6, 7))

# The longest first step, as a fraction of the parameters' norm. One batch's
# loss along the update cannot see a longer step kill ReLU units: on a
# regression with targets in the hundreds the best step on the batch is 30
# times this long and leaves half the hidden units dead, while SGD's best
# rate moves the parameters by 5%; on the digits classifier the picks stay
# below it.
MAX_RELATIVE_STEP = 0.2


def bound_steps(
  candidates: jax.Array,
  losses: jax.Array,
  step_norm: jax.typing.ArrayLike,
  params_norm: jax.typing.ArrayLike,
  max_relative_step: jax.typing.ArrayLike = MAX_RELATIVE_STEP,
) -> jax.Array:
  r"""The losses, ``inf`` for candidates whose step is too long.

  A candidate :math:`c` is too long when :math:`c \|u\| > \rho \|w\|`;
  the smallest candidate always stays (a step must be possible), and
  parameters that are all zero bound nothing (they have no scale to keep).

  Args:
    candidates: the candidate learning rates, a vector.
    losses: the loss after a step with each.
    step_norm: :math:`\|u\|`, the norm of the update direction.
    params_norm: :math:`\|w\|`, the norm of the parameters.
    max_relative_step: :math:`\rho`.

  Returns:
    ``losses`` with ``inf`` in place of the too long candidates.
  """
  dtype = candidates.dtype
  step_norm = jnp.asarray(step_norm, dtype)
  params_norm = jnp.asarray(params_norm, dtype)
  too_long = candidates * step_norm > (
    jnp.asarray(max_relative_step, dtype) * params_norm
  )
  bounded = too_long & (params_norm > 0) & (candidates > jnp.min(candidates))
  return jnp.where(bounded, jnp.inf, losses)


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


class Searched(NamedTuple):
  """The outcome of a scale search.

  Attributes:
    learning_rate: the learning rate to continue from (clipped).
    reject: whether the guard rejected the chosen step.
    decided: whether unequal losses chose it and the guard let it pass.
    loss: the chosen candidate's loss.
  """

  learning_rate: jax.Array
  reject: jax.Array
  decided: jax.Array
  loss: jax.Array


def search(
  lr0: jax.Array,
  candidates: jax.Array,
  losses: jax.Array,
  *,
  reference: jax.Array,
  guard: bool,
  guard_rtol: jax.typing.ArrayLike,
  backoff: jax.typing.ArrayLike,
  clip: Callable[[jax.Array], jax.Array],
  step_norm: jax.typing.ArrayLike | None = None,
  params_norm: jax.typing.ArrayLike | None = None,
) -> Searched:
  """Chooses the starting learning rate from scored candidates.

  Args:
    lr0: the starting learning rate as given.
    candidates: the candidate learning rates (already clipped).
    losses: their losses (``inf`` for non-finite ones).
    reference: the loss the guard compares the chosen one with (``inf``:
      none).
    guard: whether the guard is on.
    guard_rtol: the guard's relative tolerance.
    backoff: on a rejected step, the learning rate becomes the smallest
      candidate times ``backoff``.
    clip: clips a learning rate to its bounds.
    step_norm: the norm of the update direction; with ``params_norm``, steps
      longer than :data:`MAX_RELATIVE_STEP` of the parameters' norm are not
      chosen (:func:`bound_steps`). ``None``: no bound.
    params_norm: the norm of the parameters.

  Returns:
    The :class:`Searched` outcome; when all losses are equal, ``lr0`` stays.
  """
  scored = losses
  if step_norm is not None and params_norm is not None:
    scored = bound_steps(candidates, losses, step_norm, params_norm)
  chosen, decided = pick_scale(candidates, scored)
  # Candidates the bound set aside do not make the losses differ: where
  # every step within it scores the same, there is nothing to choose.
  set_aside = jnp.isinf(scored) & jnp.isfinite(losses)
  best = jnp.min(scored)
  decided &= jnp.any(jnp.where(set_aside, best, scored) != best)
  loss = losses[chosen]
  evidence = _evidence.compare(
    loss, loss, can_climb=jnp.bool_(False), reference=reference
  )
  reject = _guard.rejects(evidence, guard=guard, guard_rtol=guard_rtol)
  learning_rate = jnp.where(decided, candidates[chosen], lr0)
  backed_off = jnp.min(candidates) * jnp.asarray(backoff, lr0.dtype)
  return Searched(
    learning_rate=clip(jnp.where(reject, backed_off, learning_rate)),
    reject=reject,
    decided=decided & ~reject,
    loss=loss,
  )
