"""The guard: whether the step a decision would take is unacceptable."""

import jax
import jax.numpy as jnp

from optax_hillclimb import _evidence


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
