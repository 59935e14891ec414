"""The guard: whether the step a decision would take is unacceptable."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optax_hillclimb import _evidence

# The running average of recent losses forgets with this factor per loss it
# sees: about the last ten steps count.
AVERAGE_DECAY = 0.9


def exceeds(
  loss: jax.Array, reference: jax.Array, rtol: jax.typing.ArrayLike
) -> jax.Array:
  """Whether ``loss`` is above ``reference`` by more than ``rtol`` of it.

  Never true for an infinite ``reference`` (nothing to compare with) or a NaN
  on either side.
  """
  rtol = jnp.asarray(rtol, reference.dtype)
  return jnp.isfinite(reference) & (
    loss > reference + rtol * jnp.abs(reference)
  )


def rejects(
  evidence: _evidence.Evidence,
  *,
  guard: bool,
  guard_rtol: jax.typing.ArrayLike,
) -> jax.Array:
  """Whether the guard rejects the step that ``evidence`` describes.

  Args:
    evidence: what the decision saw.
    guard: whether the guard is on.
    guard_rtol: how far above ``evidence.reference`` (relative to its size)
      the step's loss may be.

  Returns:
    ``True`` when the guard is on and the step is unsafe (a non-finite loss
    or slope), or its loss exceeds ``reference + guard_rtol * |reference|``.
  """
  bad = evidence.unsafe | exceeds(
    evidence.step_loss, evidence.reference, guard_rtol
  )
  return jnp.logical_and(guard, bad)


def running_average(average: jax.Array, loss: jax.Array) -> jax.Array:
  """``average`` moved toward a finite ``loss``; the first loss starts it.

  Args:
    average: the running average so far (``inf`` before any loss).
    loss: the new loss; a non-finite one leaves the average as it is.

  Returns:
    ``loss`` if ``average`` is ``inf``, else ``0.9 * average + 0.1 * loss``.
  """
  loss = loss.astype(average.dtype)
  decay = jnp.asarray(AVERAGE_DECAY, average.dtype)
  moved = jnp.where(
    jnp.isfinite(average), decay * average + (1 - decay) * loss, loss
  )
  return jnp.where(jnp.isfinite(loss), moved, average)


class Watched(NamedTuple):
  """What the guard makes of the loss at the current parameters.

  Attributes:
    spike: the loss is non-finite, or above the running average by more than
      ``guard_rtol`` of it: the learning rate backs off.
    reject: the loss is non-finite: the step is not taken either.
    average: the running average after this loss. A spike restarts it from
      the spike, so that a loss that stays at a new level backs the rate off
      once, not at every step.
  """

  spike: jax.Array
  reject: jax.Array
  average: jax.Array


def watch(
  average: jax.Array,
  value: jax.Array,
  *,
  guard: bool,
  guard_rtol: jax.typing.ArrayLike,
) -> Watched:
  """The guard on every step: ``value`` against the running average.

  Args:
    average: the running average of recent values (``inf`` before any).
    value: the loss at the current parameters, which the last step reached.
    guard: whether the guard is on (the average is kept either way).
    guard_rtol: how far above the average (relative to its size) ``value``
      may be.

  Returns:
    The :class:`Watched` verdict.
  """
  value = value.astype(average.dtype)
  finite = jnp.isfinite(value)
  spike = jnp.logical_and(guard, ~finite | exceeds(value, average, guard_rtol))
  restarted = jnp.where(spike & finite, value, running_average(average, value))
  return Watched(
    spike=spike,
    reject=jnp.logical_and(guard, ~finite),
    average=restarted,
  )
