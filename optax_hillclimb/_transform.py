"""Hill climbing on the learning rate: the ``scale_by_hillclimb`` transform.

The transformation wires small parts together: a decision rule gathers
evidence (``_decisions``), the guard judges the step (``_guard``), the move
sets the new learning rate (``_moves``), and the first update runs the scale
search (``_search``).
"""

from collections.abc import Callable, Mapping, Sequence
import functools
from typing import Any, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import optax
from optax._src import numerics

from optax_hillclimb import _decisions
from optax_hillclimb import _guard
from optax_hillclimb import _horizon
from optax_hillclimb import _moves
from optax_hillclimb import _probe
from optax_hillclimb import _search
from optax_hillclimb import _state
from optax_hillclimb import _validation
from optax_hillclimb import _value_fn

HillclimbState = _state.HillclimbState
SCALE_SEARCH = _search.SCALE_SEARCH
# What a decision spends: two probes (the reference rule), one probe (compared
# with ``value`` and the slope ``-grad . u``), or none (the sign of the next
# gradient's dot product with the previous step's direction).
DECISIONS = tuple(_decisions.DECISIONS)


def _check_hyperparameters(
    learning_rate, lrlr, every_k, min_learning_rate, max_learning_rate,
    backoff, guard_rtol, lrlr_growth, max_lrlr, probe, tie_break,
    scale_search, decision, slope_rtol, total_steps,
) -> None:  # fmt: skip
  check = _validation.check
  check("learning_rate", learning_rate, lambda x: x > 0, "positive")
  check("lrlr", lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _validation.check_positive_int("every_k", every_k)
  check("min_learning_rate", min_learning_rate, lambda x: x > 0, "positive")
  check("max_learning_rate", max_learning_rate, lambda x: x > 0, "positive")
  order = _validation.check_order
  order("min_learning_rate", min_learning_rate, "max_learning_rate",
        max_learning_rate)  # fmt: skip
  order("min_learning_rate", min_learning_rate, "learning_rate", learning_rate)
  order("learning_rate", learning_rate, "max_learning_rate", max_learning_rate)
  check("backoff", backoff, lambda x: 0 < x < 1, "in the interval (0, 1)")
  check("guard_rtol", guard_rtol, lambda x: x >= 0, "non-negative")
  check("lrlr_growth", lrlr_growth, lambda x: x >= 1, "at least 1")
  check("max_lrlr", max_lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _probe.resolve_probe_mode(probe)
  _validation.check_choice("tie_break", tie_break, _moves.TIE_BREAKS)
  _validation.check_scale_search(scale_search)
  _validation.check_choice("decision", decision, DECISIONS)
  check("slope_rtol", slope_rtol, lambda x: 0 < x < 1, "in the interval (0, 1)")
  if total_steps is not None:
    _validation.check_positive_int("total_steps", total_steps)
    if decision != "stretch":
      raise ValueError(
        "total_steps shapes the stretch decision's probes, and "
        f'decision={decision!r} has none: pass decision="stretch", or '
        "leave total_steps out."
      )


class _Config(NamedTuple):
  """The hyperparameters of one :func:`scale_by_hillclimb`, as given."""

  learning_rate: jax.typing.ArrayLike
  lrlr: jax.typing.ArrayLike
  every_k: jax.typing.ArrayLike
  min_learning_rate: jax.typing.ArrayLike
  max_learning_rate: jax.typing.ArrayLike | None
  guard: bool
  backoff: jax.typing.ArrayLike
  guard_rtol: jax.typing.ArrayLike
  lrlr_growth: jax.typing.ArrayLike
  max_lrlr: jax.typing.ArrayLike
  probe: _probe.ProbeMode
  axis_name: str | None
  tie_break: str
  scale_search: Sequence[float] | None
  decision: str
  slope_rtol: jax.typing.ArrayLike
  total_steps: jax.typing.ArrayLike | None


def scale_by_hillclimb(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  lrlr: jax.typing.ArrayLike = 0.01,
  every_k: jax.typing.ArrayLike = 1,
  min_learning_rate: jax.typing.ArrayLike = 1e-9,
  max_learning_rate: jax.typing.ArrayLike | None = None,
  guard: bool = True,
  backoff: jax.typing.ArrayLike = 0.5,
  guard_rtol: jax.typing.ArrayLike = 1.0,
  lrlr_growth: jax.typing.ArrayLike = 1.5,
  max_lrlr: jax.typing.ArrayLike = 0.5,
  probe: _probe.ProbeMode = "auto",
  axis_name: str | None = None,
  tie_break: str = "up",
  scale_search: Sequence[float] | None = SCALE_SEARCH,
  decision: str = "two_probes",
  slope_rtol: jax.typing.ArrayLike = 0.5,
  total_steps: jax.typing.ArrayLike | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Scales updates by a learning rate that tunes itself by hill climbing.

  Plays the role of :func:`optax.scale_by_learning_rate`: given an incoming
  direction :math:`u` (a gradient, or the output of :func:`optax.scale_by_adam`
  and friends), it returns :math:`-\eta u`. Before that, on a probe step, it
  scores the loss :math:`f` at two candidate learning rates, a little above and
  a little below the current one,

  .. math::
    f_{\uparrow} = f\big(w - \eta (1 + s) u\big), \qquad
    f_{\downarrow} = f\big(w - \eta (1 - s) u\big),

  and moves the learning rate toward the better one:

  .. math::
    \eta \leftarrow \operatorname{clip}\Big(
      \begin{cases} \eta (1 + s) & \text{if } f_{\uparrow} < f_{\downarrow} \\
                    \eta (1 - s) & \text{otherwise} \end{cases},\
      \eta_{\min}, \eta_{\max}\Big).

  A non-finite probe loss, or a probe whose parameters are not finite, counts
  as :math:`+\infty`, so ties and two non-finite losses lower the learning
  rate. With ``tie_break="up"``, equal finite losses raise it instead, but
  never above the highest learning rate that unequal losses have chosen
  (``tie_ceiling`` in the state): ties climb out of float-precision traps
  without running away where the loss is flat. The relative step is
  :math:`s =` ``lrlr``, or, with ``lrlr_growth`` :math:`= g > 1`, :math:`s =
  \min(\text{lrlr} \cdot g^{n - 1}, \text{max\_lrlr})` after :math:`n \geq 1`
  consecutive moves in the same direction, so the learning rate crosses
  decades in tens of steps rather than hundreds, and falls back to ``lrlr`` as
  soon as moves alternate.

  The first update runs a scale search instead (unless ``scale_search`` is
  ``None``): it scores :math:`f(w - c\,\eta_0 u)` for every multiple
  :math:`c` in ``scale_search`` (by default :math:`10^{-6}, \dots, 10^{6}`)
  and starts from the smallest :math:`c\,\eta_0` whose loss achieves at least
  half of the best decrease (measured from the smallest candidate's loss), so
  the first step is scored rather than guessed.

  The guard (``guard=True``) watches every step. A decision step is rejected
  when the loss of the candidate it would take is non-finite or exceeds
  :math:`r + \text{guard\_rtol} \cdot |r|`, where the reference :math:`r` is
  the current loss :math:`f(w)` when given as ``value``, and otherwise the
  running average :math:`\bar f` of the losses at the candidates chosen
  before: the update is then exactly zero and :math:`\eta \leftarrow
  \text{backoff} \cdot \eta` (below ``min_learning_rate`` if need be, so
  that rejections cannot go on forever). On every step, probing or not, a
  ``value`` above :math:`\bar f + \text{guard\_rtol} \cdot |\bar f|` (a
  running average of recent values, :math:`\bar f \leftarrow 0.9 \bar f +
  0.1 f`) or non-finite backs the learning rate off on that step, at no extra
  evaluation. Without the guard, a learning rate that overshoots falls by
  only :math:`s` per step, and training diverges before it recovers.
  ``guard=False, lrlr_growth=1, tie_break="down", scale_search=None`` gives
  the reference rule exactly; the defaults, measured on the reference
  experiment, start from a searched scale, move faster and escape
  float-precision ties.

  Only steps where ``count % every_k == 0`` probe (and, with
  ``decision="stretch"``, steps 1, 2, 4, ... below ``every_k``); on the
  others the learning rate is unchanged (but for the guard) and ``value_fn``
  does not run (but, for ``"stretch"`` without ``value``, for the guard).

  ``decision`` trades evaluations for evidence. ``"one_probe"`` scores only
  :math:`f_1 = f(w - \eta u)` and compares it with :math:`f_0 = f(w)`
  (``value``) and the slope :math:`-g \cdot u` of :math:`a \mapsto f(w - a
  u)` at 0 (:math:`g` is ``grad``): it raises :math:`\eta` when

  .. math::
    g \cdot u > 0 \quad\text{and}\quad
    f_0 - f_1 > c\, \eta\, g \cdot u,

  (Armijo's sufficient-decrease test, with :math:`c =` ``slope_rtol``), and
  lowers it otherwise. With :math:`c = 1/2` the test passes exactly when the
  parabola through those three facts has its minimum beyond :math:`\eta` (or
  none): the rate settles at the best single step. With :math:`c < 1/2` it
  settles longer, at :math:`2 (1 - c)` times the parabola's minimum on a
  quadratic, which counters the short-horizon bias of a one-step comparison
  (the best single step is shorter than the best fixed rate over many).
  ``"no_probe"`` evaluates nothing: it raises :math:`\eta` when the
  gradient at the point the last step reached still falls along that step,
  :math:`g_t \cdot u_{t-1} > 0`, and lowers it when
  :math:`g_t \cdot u_{t-1} < 0` (the sign of the hypergradient of Baydin et
  al.); the first step, and the one after a rejected step, hold. Both keep
  the relative step, the ties (equal losses, or a zero dot product) and the
  guard above; without probes, the guard rejects a step whose ``grad``
  along the last step is non-finite or whose ``value`` exceeds the last
  decision step's ``value`` by more than ``guard_rtol`` times its size.

  ``"stretch"`` (the default of :func:`hillclimb` and
  :func:`hillclimb_adam`) judges the steps already taken on data that shaped
  none of them. The state keeps :math:`D`, the sum of the steps
  :math:`\eta u` taken since the last decision; a decision scores

  .. math::
    f_{\uparrow} = f(w - s D), \qquad f_{\downarrow} = f(w + s D)

  on the batch passed to this update: had those steps been :math:`1 \pm s`
  times as long (to first order in :math:`s`), would the loss be lower? The
  comparison is not fooled by the batch that made the step (on which a
  longer step always looks better), and over a window of many steps the
  noise of single steps averages out while their progress adds up, so it
  looks further than one step. Decisions come at steps 1, 2, 4, 8, ...
  (windows that double) until ``every_k``, then every ``every_k`` steps.
  Without ``value``, the guard scores the step about to be taken at every
  step (one evaluation) and does not take it if its loss is non-finite.

  A training loop that knows how many updates it will make passes
  ``total_steps`` :math:`= T` (with ``"stretch"`` only). At step :math:`t`
  the probes are then centred :math:`\theta = \frac14 (1 - t/T)` of the
  window back from its end,

  .. math::
    f_{\uparrow} = f\big(w + (\theta - s) D\big), \qquad
    f_{\downarrow} = f\big(w + (\theta + s) D\big),

  because once noise outweighs progress the loss along the window is lowest
  about halfway back to its start, and probes at its end would lower the
  rate at every decision: early in a run that anneals too soon, at its end
  it is what is wanted. And the steps of the last fifth of the run are
  shortened, linearly to zero at step :math:`T`: the step taken is
  :math:`-\eta \min\big(1, 5 (1 - t/T)\big) u`, while the climbed
  :math:`\eta` in the state is not scaled. The shape is the same from any
  :math:`\eta_0`; the climb sets the scale.

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    lrlr: relative step of the learning rate, the "learning rate of the
      learning rate" :math:`s`, in (0, 1). Probing less often (larger
      ``every_k``) wants a larger ``lrlr``.
    every_k: probe every ``every_k`` steps (a positive integer); with
      ``decision="stretch"``, also at steps 1, 2, 4, ... below it.
    min_learning_rate: the learning rate never falls below this positive value
      (near a minimum ties keep lowering it, and from zero it could never climb
      back).
    max_learning_rate: optional upper bound of the learning rate.
    guard: whether to reject steps whose better probe is non-finite or much
      worse than ``value`` (or the running average of chosen losses), and to
      back off when ``value`` spikes above its running average (see above).
    backoff: factor in (0, 1) applied to the learning rate on a rejected step.
    guard_rtol: relative tolerance of the guard's comparison with ``value``;
      ``0`` rejects any step that does not decrease the loss.
    lrlr_growth: factor (at least 1) by which the relative step grows with each
      further move in the same direction; ``1`` keeps it at ``lrlr``.
    max_lrlr: largest relative step, in (0, 1), when ``lrlr_growth > 1``
      (never below ``lrlr``).
    probe: how the probes are evaluated: ``"vmap"`` in one batched program,
      ``"sequential"`` one after the other (at most one extra copy of the
      parameters alive), ``"auto"`` sequential on CPU and vmap elsewhere. The
      scale search is batched two candidates at a time in ``"vmap"`` mode, so
      that it needs no more memory than a probe step.
    axis_name: under ``jax.pmap`` or ``shard_map`` with per-device data, the
      name of the device axis; probe losses (and ``value``) are averaged over it
      so every replica takes the same decision and keeps the same learning rate.
    tie_break: which way equal finite probe losses move the learning rate.
      ``"down"`` is the reference rule. When the step ``lr * u`` is too small
      to change the loss in its floating-point precision, both probes tie, and
      lowering the learning rate makes them tie forever; ``"up"`` climbs back
      toward ``tie_ceiling`` (see above) until the probes can tell the
      candidates apart. A zero direction ties at every learning rate and
      lowers it either way.
    scale_search: multiples of ``learning_rate`` scored at the first update;
      the smallest that achieves half of the best decrease becomes the
      learning rate (``learning_rate`` stays if all losses are equal).
      ``None`` starts from ``learning_rate`` as it is.
    decision: what a probe step spends to decide. ``"two_probes"`` (the
      default) scores two candidate learning rates; ``"one_probe"`` scores
      one and needs ``value`` and ``grad``; ``"no_probe"`` scores none and
      needs ``grad`` (and ``value_fn`` only for the scale search; it keeps a
      copy of the last direction in the state); ``"held_out"`` scores two
      candidates along the previous step's direction, which this batch did
      not shape (it keeps a copy of that direction in the state);
      ``"stretch"`` scores the steps since the last decision stretched and
      shrunk (it keeps their sum in the state). See above and the project's
      documentation, "Cheaper decisions" and "Deciding on fresh data".
    slope_rtol: with ``decision="one_probe"``, the fraction :math:`c` of the
      decrease the slope predicts, in (0, 1), that a step must achieve for
      the learning rate to rise; ``1/2`` settles at the best single step,
      smaller values at longer steps (see above). Other decisions ignore it.
    total_steps: the run's length in updates, if the training loop knows
      it (a positive integer); only with ``decision="stretch"``. Early
      decisions then favour progress, and the last fifth of the steps
      shortens to zero (see above; past ``total_steps`` the steps are zero).
      ``None`` (the default): neither.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    ``(updates, state, params, *, value_fn, value=None, **extra_args)``:

    * ``value_fn``: the loss, ``value_fn(params, **kwargs) -> scalar``. For a
      function that returns ``(loss, aux)``, pass
      :func:`optax_hillclimb.drop_aux` of it.
    * ``value``: optional loss at the current ``params``, used by the guard
      on every step (required by ``decision="one_probe"``). Without it, steps
      that do not probe are not guarded.
    * ``grad``: the gradient of the loss at ``params``, as optax's line
      searches take it; required by ``"one_probe"`` and ``"no_probe"``,
      ignored by ``"two_probes"``.
    * ``**extra_args``: those whose names are parameters of ``value_fn`` (a
      batch, say) are passed on to it; the others are ignored.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> def loss(params, target):
    ...   return jnp.sum((params - target) ** 2)
    >>> target = jnp.array([1.0, -2.0])
    >>> solver = optax.chain(
    ...     optax.scale_by_adam(),
    ...     optax_hillclimb.scale_by_hillclimb(1e-4, lrlr=0.1),
    ... )
    >>> params = jnp.zeros(2)
    >>> state = solver.init(params)
    >>> @jax.jit
    ... def step(params, state):
    ...   grads = jax.grad(loss)(params, target)
    ...   updates, state = solver.update(
    ...       grads, state, params, value_fn=loss, target=target
    ...   )
    ...   return optax.apply_updates(params, updates), state
    >>> # The scale search picks 1e-4 * 1e4; then falls of 10%, 10%, 15%.
    >>> for _ in range(4):
    ...   params, state = step(params, state)
    ...   print(f"{optax_hillclimb.get_learning_rate(state):.4f}")
    1.0000
    0.9000
    0.8100
    0.6885

  References:
    Baydin et al., `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018 (a gradient-based cousin of
    this rule)
  """
  _check_hyperparameters(
      learning_rate, lrlr, every_k, min_learning_rate, max_learning_rate,
      backoff, guard_rtol, lrlr_growth, max_lrlr, probe, tie_break,
      scale_search, decision, slope_rtol, total_steps,
  )  # fmt: skip
  config = _Config(
    learning_rate, lrlr, every_k, min_learning_rate, max_learning_rate,
    guard, backoff, guard_rtol, lrlr_growth, max_lrlr, probe, axis_name,
    tie_break, scale_search, decision, slope_rtol, total_steps,
  )  # fmt: skip

  def init_fn(params: optax.Params) -> HillclimbState:
    return _init(config, params)

  def update_fn(
    updates: optax.Updates,
    state: HillclimbState,
    params: optax.Params | None = None,
    *,
    value_fn: Callable[..., jax.typing.ArrayLike] | None = None,
    value: jax.typing.ArrayLike | None = None,
    grad: optax.Updates | None = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, HillclimbState]:
    return _update(
      config, updates, state, params, value_fn, value, grad, extra_args
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _init(config: _Config, params: optax.Params) -> HillclimbState:
  # Only the previous direction (no_probe) depends on the parameters.
  keeps_direction = _decisions.DECISIONS[config.decision].keeps_direction
  dtype = _state.learning_rate_dtype()
  lr = jnp.asarray(config.learning_rate, dtype)
  return HillclimbState(
    count=jnp.zeros([], jnp.int32),
    learning_rate=lr,
    streak=jnp.zeros([], jnp.int32),
    loss_up=jnp.asarray(jnp.inf, dtype),
    loss_down=jnp.asarray(jnp.inf, dtype),
    num_rejected=jnp.zeros([], jnp.int32),
    tie_ceiling=lr,
    loss_average=jnp.asarray(jnp.inf, dtype),
    previous_direction=(
      optax.tree.zeros_like(params) if keeps_direction else ()
    ),
  )


def _update(
  config: _Config,
  updates: optax.Updates,
  state: HillclimbState,
  params: optax.Params | None,
  value_fn: Callable[..., jax.typing.ArrayLike] | None,
  value: jax.typing.ArrayLike | None,
  grad: optax.Updates | None,
  extra_args: Mapping[str, Any],
) -> tuple[optax.Updates, HillclimbState]:
  """``update_fn`` of :func:`scale_by_hillclimb` with ``config``."""
  decision = _decisions.DECISIONS[config.decision]
  evaluates = decision.evaluates or bool(config.scale_search)
  _check_update_args(config, evaluates, value_fn, params, value, grad)
  loss = None
  if evaluates:
    # A value_fn that takes a `grad` parameter still receives it.
    named = extra_args if grad is None else {"grad": grad, **extra_args}
    loss = _value_fn.bind_value_fn(value_fn, named)
  seen = _see(config, loss, params, updates, value, grad, state)
  verdict, decides, backs_off = _verdict(config, decision, seen, state)
  new_state, reject = _search_or_decide(config, decision, seen, state, decides)
  new_state, reject = _watch(
    config, verdict, backs_off, state, new_state, reject, decides
  )
  if decision.keeps_direction:
    new_state = new_state._replace(
      previous_direction=decision.remember(
        state.previous_direction,
        updates,
        new_state.learning_rate,
        reject,
        decides,
      )
    )
  settle = _horizon.settling(
    state.count, config.total_steps, new_state.learning_rate.dtype
  )
  lr = new_state.learning_rate * settle
  # jnp.where, not a zero scale: 0 * nan is nan, and a rejected step must
  # leave the parameters exactly where they are.
  updates = jax.tree.map(
    lambda u: jnp.where(reject, jnp.zeros_like(u), (-lr * u).astype(u.dtype)),
    updates,
  )
  new_state = new_state._replace(count=numerics.safe_increment(state.count))
  return updates, new_state


def _verdict(
  config: _Config,
  decision: _decisions.Decision,
  seen: _decisions.Seen,
  state: HillclimbState,
) -> tuple[_guard.Watched | None, jax.Array, jax.Array | None]:
  """The guard's verdict, whether this update decides, and whether it backs off.

  Returns ``(verdict, decides, backs_off)``: ``verdict`` is ``None`` when
  there is no loss to watch at every step; a decision that spikes trigger
  decides on a spike, and then backs off only on a non-finite loss or a
  step that would raise this batch's loss further.
  """
  watched = _watched_loss(decision, seen, state)
  decides = _decides(config, decision, state.count)
  if watched is None:
    return None, decides, None
  verdict = _guard.watch(
    state.loss_average,
    watched,
    guard=config.guard,
    guard_rtol=config.guard_rtol,
  )
  backs_off = verdict.spike
  if decision.spikes_decide:
    decides |= verdict.spike
    if seen.value is not None:
      backs_off = verdict.reject | _diverges(seen, state, verdict.spike)
  return verdict, decides, backs_off


def _watched_loss(
  decision: _decisions.Decision,
  seen: _decisions.Seen,
  state: HillclimbState,
) -> jax.Array | None:
  """The loss the guard watches at every step: ``value``, if given."""
  if seen.value is None and decision.watches_every_step:
    # Its probes come rarely and do not score the step taken: without value,
    # the guard scores that step, so that a blow-up is never stepped into.
    return _loss_ahead(seen, state)
  return seen.value


def _loss_ahead(seen: _decisions.Seen, state: HillclimbState) -> jax.Array:
  """The loss after the step about to be taken, at the current rate."""
  return seen.score(state.learning_rate[None])[0]


def _diverges(
  seen: _decisions.Seen, state: HillclimbState, spike: jax.Array
) -> jax.Array:
  """On a spike, whether the step about to be taken raises this batch's loss.

  A batch that is merely harder than the others still falls along its own
  gradient; a learning rate past the stable one makes it rise. Evaluated
  only on a spike (one forward pass).
  """

  def ahead(_):
    return _loss_ahead(seen, state)

  def skip(_):
    return jnp.asarray(-jnp.inf, state.learning_rate.dtype)

  after = lax.cond(spike, ahead, skip, None)
  return spike & ~(after < seen.value)


def _decides(
  config: _Config, decision: _decisions.Decision, count: jax.Array
) -> jax.Array:
  """Whether the update at ``count`` decides (or, at 0, runs the search)."""
  every_k = jnp.asarray(config.every_k, count.dtype)
  decides = count % every_k == 0
  if decision.windows_double:
    # Windows of 1, 2, 4, ... steps until they reach every_k: the first
    # decisions come early, the later ones judge longer stretches.
    is_power_of_two = (count & (count - 1)) == 0
    decides |= is_power_of_two & (count < every_k)
  return decides


def _search_or_decide(
  config: _Config,
  decision: _decisions.Decision,
  seen: _decisions.Seen,
  state: HillclimbState,
  decides: jax.Array,
) -> tuple[HillclimbState, jax.Array]:
  """The new state and whether the guard rejects the step."""

  def decide(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
    return _decide(config, decision, seen, state)

  def skip(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
    return state, jnp.zeros([], bool)

  def decide_or_skip(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
    every_k = config.every_k
    if _validation.is_concrete_number(every_k) and every_k == 1:
      return decide(state)
    return lax.cond(decides, decide, skip, state)

  if not config.scale_search:
    return decide_or_skip(state)
  search = functools.partial(_search_step, config, seen)
  return lax.cond(state.count == 0, search, decide_or_skip, state)


def _decide(
  config: _Config,
  decision: _decisions.Decision,
  seen: _decisions.Seen,
  state: HillclimbState,
) -> tuple[HillclimbState, jax.Array]:
  """A decision step: gather evidence, guard, move the learning rate."""
  lr = state.learning_rate
  step = _moves.relative_step(
    state.streak, config.lrlr, config.lrlr_growth, config.max_lrlr, lr.dtype
  )
  evidence = decision.gather(seen, state, step)
  reject = _guard.rejects(
    evidence, guard=config.guard, guard_rtol=config.guard_rtol
  )
  moved = _moves.move(
    lr,
    up=lr * (1 + step),
    down=lr * (1 - step),
    evidence=evidence,
    reject=reject,
    streak=state.streak,
    tie_ceiling=state.tie_ceiling,
    rejected_value=lr * jnp.asarray(config.backoff, lr.dtype),
    # min_learning_rate bounds the climb; only the guard goes below it, so
    # that a state where every step is rejected cannot last: the step
    # shrinks until it is acceptable.
    clip=functools.partial(
      _clip,
      config,
      floor=jnp.where(
        reject,
        jnp.finfo(lr.dtype).tiny,
        jnp.minimum(jnp.asarray(config.min_learning_rate, lr.dtype), lr),
      ),
    ),
    tie_break=config.tie_break,
  )
  new_state = state._replace(
    learning_rate=moved.value,
    streak=moved.streak,
    tie_ceiling=moved.tie_ceiling,
    num_rejected=state.num_rejected + reject.astype(jnp.int32),
    loss_up=evidence.loss_up,
    loss_down=evidence.loss_down,
  )
  return new_state, reject


def _search_step(
  config: _Config, seen: _decisions.Seen, state: HillclimbState
) -> tuple[HillclimbState, jax.Array]:
  """The first update: the scale search picks the starting learning rate."""
  lr0 = state.learning_rate
  clip = functools.partial(_clip, config)
  candidates = clip(lr0 * jnp.asarray(config.scale_search, lr0.dtype))
  searched = _search.search(
    lr0,
    candidates,
    seen.score(candidates, batch_size=2),
    reference=seen.reference(state),
    guard=config.guard,
    guard_rtol=config.guard_rtol,
    backoff=config.backoff,
    clip=clip,
    # Only their ratio counts, so averaging over devices is harmless.
    step_norm=jnp.sqrt(seen.dot(seen.direction, seen.direction)),
    params_norm=jnp.sqrt(seen.dot(seen.params, seen.params)),
  )
  new_state = state._replace(
    learning_rate=searched.learning_rate,
    num_rejected=state.num_rejected + searched.reject.astype(jnp.int32),
    tie_ceiling=jnp.where(
      searched.decided,
      jnp.maximum(state.tie_ceiling, searched.learning_rate),
      state.tie_ceiling,
    ),
    loss_up=searched.loss,
    loss_down=searched.loss,
  )
  return new_state, searched.reject


def _watch(
  config: _Config,
  verdict: _guard.Watched | None,
  backs_off: jax.Array | None,
  state: HillclimbState,
  new_state: HillclimbState,
  reject: jax.Array,
  decided: jax.Array,
) -> tuple[HillclimbState, jax.Array]:
  """The guard on every step, probing or not: the running average of losses.

  With a watched loss (``value``, or for a decision that watches every step,
  the loss after the step it is about to take), the ``verdict`` of the
  guard: a loss well above the running average (or non-finite) backs the
  learning rate off where ``backs_off`` says (for a decision that spikes
  trigger, only a non-finite loss or a step that would raise it further).
  Without it, the loss at each decision's chosen candidate feeds the
  average that the next probes are compared with.
  """
  if verdict is None:
    chosen = jnp.minimum(new_state.loss_up, new_state.loss_down)
    average = _guard.running_average(state.loss_average, chosen)
    return new_state._replace(
      loss_average=jnp.where(decided, average, state.loss_average)
    ), reject
  # A step the decision rejected has backed off already.
  backs_off = backs_off & ~reject
  lr = new_state.learning_rate
  backed_off = _clip(config, lr * jnp.asarray(config.backoff, lr.dtype))
  falls = _moves.next_streak(state.streak, jnp.bool_(False))
  new_reject = verdict.reject & ~reject
  new_state = new_state._replace(
    learning_rate=jnp.where(backs_off, backed_off, lr),
    streak=jnp.where(backs_off, falls, new_state.streak),
    loss_average=verdict.average,
    num_rejected=new_state.num_rejected + new_reject.astype(jnp.int32),
  )
  return new_state, reject | verdict.reject


def _clip(
  config: _Config, lr: jax.Array, floor: jax.Array | None = None
) -> jax.Array:
  """``lr`` within its bounds (``floor``: instead of the lower one), never inf.

  From inf even the guard's back-off could not come down.
  """
  if floor is None:
    floor = jnp.asarray(config.min_learning_rate, lr.dtype)
  lr = jnp.maximum(lr, floor)
  if config.max_learning_rate is not None:
    lr = jnp.minimum(lr, jnp.asarray(config.max_learning_rate, lr.dtype))
  return jnp.minimum(lr, jnp.finfo(lr.dtype).max)


def _see(
  config: _Config,
  loss: Callable[[Any], jax.Array] | None,
  params: optax.Params,
  updates: optax.Updates,
  value: jax.typing.ArrayLike | None,
  grad: optax.Updates | None,
  state: HillclimbState,
) -> _decisions.Seen:
  """What the update received, in the form the decisions read."""
  dtype = state.learning_rate.dtype
  mode = _probe.resolve_probe_mode(config.probe)

  def score(
    learning_rates: jax.Array,
    batch_size: int | None = None,
    direction: optax.Updates | None = None,
  ) -> jax.Array:
    direction = updates if direction is None else direction
    losses = _probe.probe_losses(
      loss, params, direction, learning_rates, mode, batch_size=batch_size
    )
    return _probe.as_scores(losses, dtype, config.axis_name)

  def dot(a: optax.Updates, b: optax.Updates) -> jax.Array:
    products = jax.tree.map(
      lambda x, y: jnp.sum(x.astype(dtype) * y.astype(dtype)), a, b
    )
    total = sum(jax.tree.leaves(products), jnp.zeros([], dtype))
    return _probe.device_mean(total, dtype, config.axis_name)

  if value is not None:
    value = _probe.device_mean(value, dtype, config.axis_name)
  center = _horizon.stretch_center(state.count, config.total_steps, dtype)
  return _decisions.Seen(
    score, params, updates, value, grad, dot, config.slope_rtol, center
  )


def _check_update_args(
  config: _Config,
  evaluates: bool,
  value_fn: Callable[..., Any] | None,
  params: optax.Params | None,
  value: jax.typing.ArrayLike | None,
  grad: optax.Updates | None,
) -> None:
  """Clear errors for a missing argument that the configuration needs."""
  decision = config.decision
  if value_fn is None and evaluates:
    why = (
      "the loss function"
      if decision != "no_probe"
      else "the loss function for the scale search of the first update "
      '(or scale_search=None, to train with decision="no_probe" without '
      "one)"
    )
    raise TypeError(
      f"scale_by_hillclimb's update needs {why}: call "
      "update(updates, state, params, value_fn=loss_fn, ...), with extra "
      "keyword arguments (a batch, say) that loss_fn takes."
    )
  if params is None and evaluates:
    raise ValueError(
      "scale_by_hillclimb's update needs params, the current parameters, "
      "to evaluate value_fn around them."
    )
  needs = _decisions.DECISIONS[decision].needs
  if "value" in needs and value is None:
    raise TypeError(
      f"scale_by_hillclimb(decision={decision!r}) needs value=, the loss at "
      "params: its probe is compared with it. Call update(..., "
      "value=loss, grad=grads) with loss, grads = "
      "jax.value_and_grad(loss_fn)(params)."
    )
  if "grad" in needs and grad is None:
    raise TypeError(
      f"scale_by_hillclimb(decision={decision!r}) needs grad=, the "
      "gradient of the loss at params: its dot product with the direction "
      "decides. Call update(..., grad=grads), as for optax's line searches."
    )
