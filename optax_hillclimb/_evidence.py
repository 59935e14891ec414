"""What one decision saw: the record that the move and the guard act on."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Evidence(NamedTuple):
  """The facts a decision gathered about the current learning rate.

  Every decision rule (two probes, one probe, no probe, the scale search)
  reduces what the update received to this record; the move
  (:func:`optax_hillclimb._moves.move`) and the guard
  (:func:`optax_hillclimb._guard.rejects`) read nothing else.

  Attributes:
    go_up: whether the evidence favours the larger learning rate.
    tie: whether the evidence cannot tell the candidates apart (equal finite
      losses, or a zero slope).
    can_climb: whether a tie may raise the learning rate (the direction is
      nonzero; a zero direction ties at every learning rate).
    finite: whether the evidence is finite, so that a decision on it counts
      as evidence for the tie ceiling.
    unsafe: whether the step is known to be unacceptable (a non-finite loss
      or slope).
    step_loss: the loss expected after the step, which the guard compares
      with ``reference``.
    reference: the loss that ``step_loss`` must not exceed by more than the
      guard's tolerance (``inf``: nothing to compare with).
    no_evidence: whether there is nothing to decide from (the learning rate
      holds).
    loss_up: what the state records as ``loss_up``.
    loss_down: what the state records as ``loss_down``.
  """

  go_up: jax.Array
  tie: jax.Array
  can_climb: jax.Array
  finite: jax.Array
  unsafe: jax.Array
  step_loss: jax.Array
  reference: jax.Array
  no_evidence: jax.Array
  loss_up: jax.Array
  loss_down: jax.Array


def compare(
  loss_up: jax.Array,
  loss_down: jax.Array,
  *,
  can_climb: jax.Array,
  reference: jax.Array,
) -> Evidence:
  """The evidence of two scored candidates, a larger and a smaller one.

  Args:
    loss_up: the loss at the larger candidate (``inf`` if non-finite).
    loss_down: the loss at the smaller candidate.
    can_climb: whether a tie may raise the value (a nonzero direction).
    reference: the loss the guard compares the better one with.

  Returns:
    The better candidate wins; equal finite losses tie; the better loss is
    the step's, and a non-finite one makes the step unsafe.
  """
  best = jnp.minimum(loss_up, loss_down)
  return Evidence(
    go_up=loss_up < loss_down,
    tie=(loss_up == loss_down) & jnp.isfinite(loss_up),
    can_climb=jnp.asarray(can_climb, bool),
    finite=jnp.isfinite(best),
    unsafe=~jnp.isfinite(best),
    step_loss=best,
    reference=reference,
    no_evidence=jnp.zeros([], bool),
    loss_up=loss_up,
    loss_down=loss_down,
  )
