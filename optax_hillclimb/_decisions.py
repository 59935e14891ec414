"""The decision rules: what a probe step spends, and what it sees.

Each rule is a pure function from what the update received (:class:`Seen`)
and the state to the :class:`~optax_hillclimb._evidence.Evidence` that the
move and the guard act on. A new rule is one function here and one entry in
:data:`DECISIONS`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_hillclimb import _evidence
from optax_hillclimb import _moves

_Evidence = _evidence.Evidence


class Seen(NamedTuple):
  """What an update received, in the form the decisions read.

  Attributes:
    score: ``score(learning_rates, batch_size=None, direction=None) ->
      losses``: the loss after a step of each learning rate along
      ``direction`` (by default the incoming one), averaged over devices,
      ``inf`` where non-finite (``batch_size``: at most that many evaluated
      at once).
    params: the current parameters :math:`w`.
    direction: the incoming updates :math:`u`.
    value: the loss at the current parameters, averaged over devices, or
      ``None`` when not given.
    grad: the gradient of the loss at the current parameters, or ``None``.
    dot: ``dot(a, b)``: the sum over leaves of ``a * b``, averaged over
      devices, in the learning rate's dtype.
    slope_rtol: the one-probe rule's sufficient-decrease fraction.
    center: how far back along the steps since the last decision the
      stretch's probes are centred, as a fraction of them (``0``: at the
      current parameters), see ``_horizon.stretch_center``.
  """

  score: Callable[..., jax.Array]
  params: optax.Params
  direction: optax.Updates
  value: jax.Array | None
  grad: optax.Updates | None
  dot: Callable[[optax.Updates, optax.Updates], jax.Array]
  slope_rtol: jax.typing.ArrayLike
  center: jax.typing.ArrayLike = 0.0

  def reference(self, state: Any) -> jax.Array:
    """What the guard compares a probe with: ``value``, or without it the
    running average of the losses at the candidates chosen before (at every
    step, the loss at the current parameters on the previous batch)."""
    if self.value is None:
      return state.loss_average
    return jnp.asarray(self.value, state.loss_average.dtype)


def two_probes(seen: Seen, state: Any, step: jax.Array) -> _Evidence:
  """Scores :math:`\\eta (1 \\pm s)`: the better candidate wins."""
  lr = state.learning_rate
  loss_up, loss_down = seen.score(jnp.stack([lr * (1 + step), lr * (1 - step)]))
  return _evidence.compare(
    loss_up,
    loss_down,
    can_climb=_moves.is_nonzero(seen.direction),
    reference=seen.reference(state),
  )


def one_probe(seen: Seen, state: Any, step: jax.Array) -> _Evidence:
  """Scores :math:`\\eta` against ``value`` and the slope: Armijo's test.

  With ``slope_rtol`` :math:`= 1/2` the parabola through ``value``, its slope
  :math:`-g \\cdot u` at 0 and the probe's loss has its minimum beyond the
  learning rate exactly when the test passes (the project's documentation,
  "How the rule works", derives it).
  """
  del step  # The move sets the relative step; the probe is at the rate.
  lr = state.learning_rate
  (f1,) = seen.score(lr[None])
  f0 = seen.value
  slope = seen.dot(seen.grad, seen.direction)  # f(w - a u) falls as a*slope
  sufficient = f0 - f1 > jnp.asarray(seen.slope_rtol, lr.dtype) * slope * lr
  return _Evidence(
    go_up=(slope > 0) & sufficient,
    tie=(f1 == f0) & jnp.isfinite(f1),
    can_climb=_moves.is_nonzero(seen.direction),
    finite=jnp.isfinite(f1) & jnp.isfinite(f0) & jnp.isfinite(slope),
    unsafe=~jnp.isfinite(f1),
    step_loss=f1,
    reference=f0,
    no_evidence=jnp.zeros([], bool),
    loss_up=f1,
    loss_down=f1,
  )


def no_probe(seen: Seen, state: Any, step: jax.Array) -> _Evidence:
  """The sign of :math:`g_t \\cdot u_{t-1}`: still falling along the last step.

  The loss of the last decision step (``state.loss_down``) came from another
  batch, so the guard only catches a blow-up of ``value`` against it.
  """
  del step
  slope = seen.dot(seen.grad, state.previous_direction)
  finite = jnp.isfinite(slope)
  dtype = state.learning_rate.dtype
  current = reference = jnp.asarray(jnp.inf, dtype)
  if seen.value is not None:
    current, reference = seen.value, state.loss_down
  recorded = jnp.where(jnp.isfinite(current), current, jnp.inf)
  return _Evidence(
    go_up=slope > 0,
    tie=(slope == 0) & finite,
    can_climb=_moves.is_nonzero(seen.grad),
    finite=finite,
    unsafe=~finite,
    step_loss=current,
    reference=reference,
    no_evidence=~_moves.is_nonzero(state.previous_direction),
    loss_up=recorded,
    loss_down=recorded,
  )


def held_out(seen: Seen, state: Any, step: jax.Array) -> _Evidence:
  r"""Scores :math:`\eta (1 \pm s)` along the previous step's direction.

  The incoming direction holds the gradient of the batch the probes would
  score, and on that batch a longer step always looks better. The previous
  step's direction was made before this batch was seen, so the probes judge
  the learning rate on data it was not fitted to. Before any step (or after
  a rejected one) there is nothing to judge, and the learning rate holds.
  """
  lr = state.learning_rate
  learning_rates = jnp.stack([lr * (1 + step), lr * (1 - step)])
  return _along_kept(seen, state, learning_rates)


def stretch(seen: Seen, state: Any, step: jax.Array) -> _Evidence:
  r"""Stretches the steps since the last decision by :math:`1 \pm s`.

  The state keeps :math:`D`, the sum of the steps :math:`\eta u` taken since
  the last decision, none of which this batch shaped. The probes score
  :math:`f(w + (\theta \mp s) D)`: had those steps been :math:`1 \pm s`
  times as long (to first order in :math:`s`), would the loss on fresh data
  be lower? Over many steps the noise in the steps averages out while their
  progress adds up, so the comparison looks as far ahead as the window is
  long. :math:`\theta` = ``seen.center`` moves both probes back towards the
  window's start (``_horizon.stretch_center``: early in a run of known
  length). Before any step (and while :math:`D` is zero) the learning rate
  holds.
  """
  center = jnp.asarray(seen.center, step.dtype)
  return _along_kept(seen, state, jnp.stack([step - center, -step - center]))


def _along_kept(seen: Seen, state: Any, learning_rates: jax.Array) -> _Evidence:
  """Two candidates along the direction the state keeps, on this batch.

  While that direction is zero (nothing kept yet, or a rejected step) there
  is no evidence, and the learning rate holds.
  """
  kept = state.previous_direction
  loss_up, loss_down = seen.score(learning_rates, direction=kept)
  evidence = _evidence.compare(
    loss_up,
    loss_down,
    can_climb=_moves.is_nonzero(kept),
    reference=seen.reference(state),
  )
  return evidence._replace(no_evidence=~_moves.is_nonzero(kept))


def last_direction(
  kept: optax.Updates,
  direction: optax.Updates,
  learning_rate: jax.Array,
  reject: jax.Array,
  restart: jax.Array,
) -> optax.Updates:
  """The direction of the step taken (zeros for a rejected step)."""
  del learning_rate, restart
  return jax.tree.map(
    lambda d, u: jnp.where(reject, jnp.zeros_like(d), u.astype(d.dtype)),
    kept,
    direction,
  )


def steps_since_decision(
  kept: optax.Updates,
  direction: optax.Updates,
  learning_rate: jax.Array,
  reject: jax.Array,
  restart: jax.Array,
) -> optax.Updates:
  """The sum of the steps taken, restarted by each decision."""
  return jax.tree.map(
    lambda d, u: (
      jnp.where(restart, 0, d)
      + jnp.where(reject, 0, learning_rate * u.astype(d.dtype))
    ).astype(d.dtype),
    kept,
    direction,
  )


class Decision(NamedTuple):
  """A decision rule and what it needs from the update's arguments.

  Attributes:
    gather: ``gather(seen, state, relative_step) -> Evidence``.
    needs: the update's keyword arguments it cannot do without, beyond
      ``value_fn`` (``"value"``, ``"grad"``).
    evaluates: whether it evaluates ``value_fn`` (the scale search always
      does).
    keeps_direction: whether the state keeps a tree like the updates
      (``previous_direction``).
    remember: ``remember(kept, direction, learning_rate, reject, restart)``:
      the new ``previous_direction`` (in the kept one's dtypes), from the
      kept one, the step's direction and learning rate, whether the step
      was rejected, and whether it was a decision step.
    windows_double: whether the decisions before ``every_k`` come at steps
      1, 2, 4, 8, ... (windows that double), not only at multiples of
      ``every_k``.
    watches_every_step: whether, without ``value``, the update scores the
      step it is about to take, at every step, for the guard (the rule's
      own probes neither come at every step nor score that step).
    spikes_decide: whether a ``value`` the guard finds well above its
      running average ends the window and decides at once, backing the
      learning rate off only if the step about to be taken would raise that
      batch's loss further (or it is non-finite): a batch that is merely
      hard moves the rate by the relative step, not by ``backoff``.
  """

  gather: Callable[[Seen, Any, jax.Array], _Evidence]
  needs: tuple[str, ...] = ()
  evaluates: bool = True
  keeps_direction: bool = False
  remember: Callable[..., optax.Updates] = last_direction
  windows_double: bool = False
  watches_every_step: bool = False
  spikes_decide: bool = False


DECISIONS = {
  "two_probes": Decision(two_probes),
  "one_probe": Decision(one_probe, needs=("value", "grad")),
  "no_probe": Decision(
    no_probe, needs=("grad",), evaluates=False, keeps_direction=True
  ),
  "held_out": Decision(held_out, keeps_direction=True),
  "stretch": Decision(
    stretch,
    keeps_direction=True,
    remember=steps_since_decision,
    windows_double=True,
    watches_every_step=True,
    spikes_decide=True,
  ),
}
