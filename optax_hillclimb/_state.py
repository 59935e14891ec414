"""The state of ``scale_by_hillclimb`` and the dtype of its learning rate."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class HillclimbState(NamedTuple):
  r"""State of :func:`scale_by_hillclimb`.

  Attributes:
    count: number of updates so far (int32). Updates where ``count % every_k
      == 0`` probe the loss; the first one runs the scale search instead when
      ``scale_search`` is set.
    learning_rate: the current learning rate (float32, or float64 when x64 is
      enabled, whatever the dtype of the parameters).
    streak: signed number of consecutive learning-rate moves in the same
      direction (int32): ``+n`` after ``n`` rises in a row, ``-n`` after ``n``
      falls, ``0`` before the first probe and after a tie that held the
      learning rate. It sets the relative step of the next probe when
      ``lrlr_growth > 1``.
    loss_up: loss at the larger candidate learning rate at the last probe step
      (after the scale search: the loss at the learning rate it chose; ``inf``
      before the first probe, and for non-finite losses).
    loss_down: loss at the smaller candidate learning rate at the last probe
      step (after the scale search, like ``loss_up``). With
      ``decision="one_probe"`` both hold the probe's loss; with
      ``"no_probe"`` both hold ``value`` at the last decision step (``inf``
      without it), which the guard compares with the next.
    num_rejected: number of steps rejected by the guard so far (int32).
    tie_ceiling: the highest learning rate that a comparison of unequal probe
      losses has chosen so far (the starting learning rate before any): with
      ``tie_break="up"``, ties never raise the learning rate above it.
    loss_average: the guard's running average of recent losses (``inf``
      before any): of ``value`` at every step when the training loop passes
      it, else of the loss at the candidate each decision chose. A ``value``
      well above it backs the learning rate off; without ``value``, the
      probes are compared with it.
    previous_direction: with ``decision="no_probe"`` (or ``"held_out"``),
      the direction of the last step taken (a tree like the updates, in
      their dtypes; zeros before the first step and after a rejected one),
      whose dot product with the next gradient decides; with ``"stretch"``,
      the sum of the steps :math:`\eta u` taken since the last decision
      (rejected steps add nothing), which the next decision stretches;
      ``()`` otherwise, so the other rules keep no copy.
  """

  count: jax.Array
  learning_rate: jax.Array
  streak: jax.Array
  loss_up: jax.Array
  loss_down: jax.Array
  num_rejected: jax.Array
  tie_ceiling: jax.Array
  loss_average: jax.Array
  previous_direction: optax.Updates = ()


def learning_rate_dtype() -> jnp.dtype:
  """float64 when x64 is enabled, else float32.

  The learning rate is kept in this dtype whatever the parameters' dtype: in
  bfloat16, ``lr * 1.01`` rounds back to ``lr``.
  """
  return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))
