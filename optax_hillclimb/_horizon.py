"""What knowing the run's length changes: where the stretch looks, and the end.

A training loop usually knows how many updates it will make. Given that
number (``total_steps``), the stretch decision centres its probes back along
the window early in the run (:func:`stretch_center`), and the last steps
settle: the step taken is the climbed learning rate times a factor that falls
linearly to zero over the last ``SETTLE_FRACTION`` of the run
(:func:`settling`). The shape is the same for every starting learning rate;
the climb sets the scale.
"""

from typing import Any

import jax
import jax.numpy as jnp

# The stretch's centre at the start of a run of known length.
EARLY_CENTER = 0.25
# The share of the run over which the step falls to zero.
SETTLE_FRACTION = 0.2


def _done(
  count: jax.Array, total_steps: jax.typing.ArrayLike, dtype: Any
) -> jax.Array:
  """The fraction of the run done, in [0, 1]."""
  done = count.astype(dtype) / jnp.asarray(total_steps, dtype)
  return jnp.clip(done, 0, 1)


def stretch_center(
  count: jax.Array, total_steps: jax.typing.ArrayLike | None, dtype: Any
) -> jax.Array:
  r"""Where the stretch centres its probes: :math:`\theta = \theta_0 (1 - t/T)`.

  Once the steps' noise outweighs their progress, the loss along the line
  through a window of steps is lowest about halfway back to its start, so
  probes centred at its end find shorter steps better at every decision,
  whatever the learning rate: the rule anneals. That is what the end of a
  run needs and its beginning does not. When the training loop knows the
  run's length :math:`T`, the probes are centred :math:`\theta = \theta_0
  (1 - t/T)` of the window back from its end (:math:`\theta_0` =
  ``EARLY_CENTER``): early decisions ask whether the window's progress would
  have gained from longer steps, and the centre reaches the window's end
  (the annealing comparison) at step :math:`T`.

  Args:
    count: the number of updates so far, :math:`t`.
    total_steps: the run's length :math:`T`, or ``None`` (then
      :math:`\theta = 0`).
    dtype: the learning rate's dtype.

  Returns:
    :math:`\theta`, a scalar of ``dtype``.
  """
  if total_steps is None:
    return jnp.zeros([], dtype)
  early = jnp.asarray(EARLY_CENTER, dtype)
  return early * (1 - _done(count, total_steps, dtype))


def settling(
  count: jax.Array, total_steps: jax.typing.ArrayLike | None, dtype: Any
) -> jax.Array:
  r"""The factor on the step taken: :math:`\min(1, (1 - t/T) / f)`.

  One until the last :math:`f` = ``SETTLE_FRACTION`` of the run, then
  linearly down to zero at step :math:`T` (and zero past it), as a
  warmup-stable-decay schedule ends. The climbed learning rate itself is
  not scaled: the decisions judge it, the factor only shortens the steps.

  Args:
    count: the number of updates so far, :math:`t`.
    total_steps: the run's length :math:`T`, or ``None`` (then one).
    dtype: the learning rate's dtype.

  Returns:
    The factor, a scalar of ``dtype``.
  """
  if total_steps is None:
    return jnp.ones([], dtype)
  left = 1 - _done(count, total_steps, dtype)
  return jnp.minimum(left / jnp.asarray(SETTLE_FRACTION, dtype), 1)
