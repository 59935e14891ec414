"""Hill climbing on any scalar hyperparameters: the ``climb`` wrapper.

It uses the parts of ``scale_by_hillclimb``: two scored candidates make the
:class:`~optax_hillclimb._evidence.Evidence`, the guard judges the step and
the move sets the probed hyperparameter (``_moves.move``); the scale search
sets the learning rate at the first update.
"""

from collections.abc import Callable, Mapping, Sequence
import functools
from typing import Any, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import numerics

from optax_hillclimb import _climb_config
from optax_hillclimb import _evidence
from optax_hillclimb import _guard
from optax_hillclimb import _moves
from optax_hillclimb import _probe
from optax_hillclimb import _search
from optax_hillclimb import _state
from optax_hillclimb import _validation
from optax_hillclimb import _value_fn

Scale = _climb_config.Scale
Layout = _climb_config.Layout
LEARNING_RATE = _climb_config.LEARNING_RATE


class ClimbState(NamedTuple):
  """State of :func:`climb`.

  Attributes:
    count: number of updates so far (int32).
    hyperparams: the current value of each climbed hyperparameter, by name
      (float32, or float64 when x64 is enabled, whatever the inner state's
      dtype).
    streak: by name, the signed number of consecutive moves of that
      hyperparameter in the same direction (int32; ``+n`` after ``n`` rises of
      its value, ``-n`` after ``n`` falls), as in :class:`HillclimbState`.
    tie_ceiling: by name, the highest value that a comparison of unequal
      losses chose so far (the starting value before any). Ties raise a
      hyperparameter on the ``"log"`` scale at most up to it.
    loss_up: loss at the larger candidate value of the hyperparameter probed
      last (``inf`` before the first probe and for non-finite losses).
    loss_down: loss at its smaller candidate value.
    probed: index, in ``hyperparams`` as given to :func:`climb`, of the
      hyperparameter probed last (int32; ``-1`` before the first probe).
    num_rejected: number of steps rejected by the guard so far (int32).
    inner_state: the state of the inner optimizer, whose ``hyperparams`` hold
      the climbed values too (in the inner state's own dtypes).
  """

  count: jax.Array
  hyperparams: dict[str, jax.Array]
  streak: dict[str, jax.Array]
  tie_ceiling: dict[str, jax.Array]
  loss_up: jax.Array
  loss_down: jax.Array
  probed: jax.Array
  num_rejected: jax.Array
  inner_state: optax.OptState


class _Config(NamedTuple):
  """What one :func:`climb` climbs, and how, resolved and checked."""

  inner: optax.GradientTransformationExtraArgs
  names: tuple[str, ...]
  kinds: tuple[str, ...]
  bounds: tuple[tuple[float, float], ...]
  lr_index: int | None
  lrlr: jax.typing.ArrayLike
  every_k: jax.typing.ArrayLike
  layout: str
  guard: bool
  backoff: jax.typing.ArrayLike
  guard_rtol: jax.typing.ArrayLike
  lrlr_growth: jax.typing.ArrayLike
  max_lrlr: jax.typing.ArrayLike
  probe: _probe.ProbeMode
  axis_name: str | None
  tie_break: str
  scale_search: Sequence[float] | None


def climb(
  inner: optax.GradientTransformation,
  hyperparams: str | Sequence[str] = ("learning_rate", "momentum"),
  *,
  lrlr: jax.typing.ArrayLike = 0.01,
  every_k: jax.typing.ArrayLike = 1,
  layout: Layout = "cycle",
  scales: Mapping[str, Scale] | None = None,
  bounds: Mapping[str, tuple[float, float | None]] | None = None,
  guard: bool = True,
  backoff: jax.typing.ArrayLike = 0.5,
  guard_rtol: jax.typing.ArrayLike = 1.0,
  lrlr_growth: jax.typing.ArrayLike = 1.5,
  max_lrlr: jax.typing.ArrayLike = 0.5,
  probe: _probe.ProbeMode = "auto",
  axis_name: str | None = None,
  tie_break: str = "up",
  scale_search: Sequence[float] | None = _search.SCALE_SEARCH,
) -> optax.GradientTransformationExtraArgs:
  r"""Hill-climbs scalar hyperparameters of an optimizer, by the loss.

  Wraps an optimizer built with :func:`optax.inject_hyperparams` and moves the
  hyperparameters named in ``hyperparams`` as :func:`scale_by_hillclimb` moves
  its learning rate. On a probe step it takes one hyperparameter :math:`h`
  (``layout="cycle"``, the next in turn) or each of them (``layout="all"``),
  and for a candidate value above and below the current one computes the
  inner optimizer's update :math:`\Delta(h')` at that value (from the same
  inner state) and the loss there,

  .. math::
    f_{\uparrow} = f\big(w + \Delta(h_{\uparrow})\big), \qquad
    f_{\downarrow} = f\big(w + \Delta(h_{\downarrow})\big).

  The better candidate wins, and its update and inner state are the step
  taken. A positive hyperparameter (``"log"`` scale: learning rate, weight
  decay) moves multiplicatively, :math:`h_{\uparrow, \downarrow} = h (1 \pm
  s)`; one that behaves like one minus a decay (``"decay"`` scale: momentum,
  Adam's ``b1`` and ``b2``) moves multiplicatively in :math:`1 - h`,

  .. math::
    h_{\uparrow, \downarrow} = 1 - (1 - h)(1 \mp s),

  so that 0.9, 0.99 and 0.999 are as far apart as they behave (memories of
  10, 100 and 1000 steps), and the value never reaches 1. Values are clipped
  to ``bounds``. With ``layout="all"``, the best of all :math:`2n` candidates
  wins and only its hyperparameter moves.

  The rest is :func:`scale_by_hillclimb`'s rule, per hyperparameter: the
  relative step :math:`s` starts at ``lrlr`` and grows by ``lrlr_growth`` over
  consecutive moves the same way (up to ``max_lrlr``); ties (equal finite
  losses) move a ``"log"``-scale hyperparameter as ``tie_break`` says, up to
  its ``tie_ceiling``, and hold a ``"decay"``-scale one; the guard rejects a
  step whose better loss is non-finite or worse than :math:`f(w) +
  \text{guard\_rtol}\,|f(w)|` (with ``value`` given): the update is then zero,
  the inner state does not advance, and the learning rate (the inner
  optimizer's ``"learning_rate"``, climbed or not) is multiplied by
  ``backoff``. When ``learning_rate`` is climbed, the first update scores
  its multiples ``scale_search`` as :func:`scale_by_hillclimb` does (unless
  ``scale_search`` is ``None``). Steps where ``count % every_k != 0`` run the
  inner update as it is.

  Args:
    inner: an optimizer built with :func:`optax.inject_hyperparams`, for
      example ``optax.inject_hyperparams(optax.sgd)(learning_rate=0.1,
      momentum=0.5)``.
    hyperparams: the names of the scalar hyperparameters to climb; each must
      be a constant (not a schedule) floating-point hyperparameter of
      ``inner``.
    lrlr: relative step :math:`s` in (0, 1), of every climbed hyperparameter.
    every_k: probe every ``every_k`` steps (a positive integer).
    layout: ``"cycle"``: each probe step scores both directions of one
      hyperparameter (two candidates, the cost of one probe step of
      :func:`scale_by_hillclimb`), taking them in turn; ``"all"``: both
      directions of every hyperparameter at once (:math:`2n` candidates).
    scales: by name, ``"log"`` or ``"decay"``; by default ``"decay"`` for
      ``momentum``, ``b1``, ``b2``, ``beta1``, ``beta2``, ``decay`` and
      ``smoothing``, ``"log"`` for the others.
    bounds: by name, ``(lower, upper)`` bounds of the value (``upper`` may be
      ``None`` on the ``"log"`` scale). By default ``(1e-9, None)`` on the
      ``"log"`` scale and ``(0.0, 0.999)`` on the ``"decay"`` scale.
    guard: whether to reject steps whose better loss is non-finite or much
      worse than ``value``; it needs a ``learning_rate`` hyperparameter.
    backoff: factor in (0, 1) applied to the learning rate on a rejected step.
    guard_rtol: relative tolerance of the guard's comparison with ``value``.
    lrlr_growth: growth (at least 1) of the relative step over consecutive
      moves of a hyperparameter in the same direction.
    max_lrlr: largest relative step, in (0, 1).
    probe: ``"vmap"`` (the candidates' inner updates and losses in one batched
      program), ``"sequential"`` (``lax.map``, one after another) or
      ``"auto"`` (sequential on CPU, vmap elsewhere).
    axis_name: the device axis under ``jax.pmap`` or ``shard_map``; losses
      (and ``value``) are averaged over it so replicas decide alike.
    tie_break: ``"up"`` or ``"down"``: how equal finite losses move a
      ``"log"``-scale hyperparameter, see :func:`scale_by_hillclimb`.
    scale_search: multiples of the starting learning rate scored at the first
      update (when ``learning_rate`` is climbed); ``None`` to start as given.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    ``(updates, state, params, *, value_fn, value=None, **extra_args)``, as
    :func:`scale_by_hillclimb`'s does; ``value_fn``, ``value`` and the extra
    arguments are passed on to the inner optimizer too. Its state is a
    :class:`ClimbState`; read the values with :func:`get_hyperparams`.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> def loss(params):
    ...   return jnp.sum(jnp.array([1.0, 10.0]) * params**2)
    >>> inner = optax.inject_hyperparams(optax.sgd)(
    ...     learning_rate=0.01, momentum=0.0
    ... )
    >>> solver = optax_hillclimb.climb(inner, lrlr=0.1, scale_search=None)
    >>> params = jnp.array([1.0, 1.0])
    >>> state = solver.init(params)
    >>> @jax.jit
    ... def step(params, state):
    ...   grads = jax.grad(loss)(params)
    ...   updates, state = solver.update(grads, state, params, value_fn=loss)
    ...   return optax.apply_updates(params, updates), state
    >>> # Probes take learning_rate and momentum in turn: both rise.
    >>> for _ in range(4):
    ...   params, state = step(params, state)
    ...   hp = optax_hillclimb.get_hyperparams(state)
    ...   print(f"{hp['learning_rate']:.4f} {hp['momentum']:.4f}")
    0.0110 0.0000
    0.0110 0.1000
    0.0121 0.1000
    0.0121 0.1900

  References:
    Baydin et al., `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018
  """
  names = _climb_config.as_names(hyperparams)
  kinds = _climb_config.resolve_scales(names, scales)
  check = _validation.check
  check("lrlr", lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _validation.check_positive_int("every_k", every_k)
  check("backoff", backoff, lambda x: 0 < x < 1, "in the interval (0, 1)")
  check("guard_rtol", guard_rtol, lambda x: x >= 0, "non-negative")
  check("lrlr_growth", lrlr_growth, lambda x: x >= 1, "at least 1")
  check("max_lrlr", max_lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _probe.resolve_probe_mode(probe)
  _validation.check_choice("layout", layout, _climb_config.LAYOUTS)
  _validation.check_choice("tie_break", tie_break, _moves.TIE_BREAKS)
  _validation.check_scale_search(scale_search)
  if not callable(getattr(inner, "init", None)) or not callable(
    getattr(inner, "update", None)
  ):
    raise TypeError(
      "climb's inner must be an optax.GradientTransformation built with "
      f"optax.inject_hyperparams, got {inner!r:.80}."
    )
  config = _Config(
    optax.with_extra_args_support(inner), names, kinds,
    _climb_config.resolve_bounds(names, kinds, bounds),
    names.index(LEARNING_RATE) if LEARNING_RATE in names else None,
    lrlr, every_k, layout, guard, backoff, guard_rtol, lrlr_growth, max_lrlr,
    probe, axis_name, tie_break, scale_search,
  )  # fmt: skip

  def init_fn(params: optax.Params) -> ClimbState:
    return _init(config, params)

  def update_fn(
    updates: optax.Updates,
    state: ClimbState,
    params: optax.Params | None = None,
    *,
    value_fn: Callable[..., jax.typing.ArrayLike] | None = None,
    value: jax.typing.ArrayLike | None = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ClimbState]:
    ctx = _context(config, updates, state, params, value_fn, value, extra_args)
    return _update(ctx, state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _init(config: _Config, params: optax.Params) -> ClimbState:
  inner_state = config.inner.init(params)
  _climb_config.check_inner_state(
    inner_state, config.names, config.kinds, config.bounds, config.guard
  )
  dtype = _state.learning_rate_dtype()
  names = config.names
  values = {n: jnp.asarray(inner_state.hyperparams[n], dtype) for n in names}
  return ClimbState(
    count=jnp.zeros([], jnp.int32),
    hyperparams=values,
    streak={n: jnp.zeros([], jnp.int32) for n in names},
    tie_ceiling=dict(values),
    loss_up=jnp.asarray(jnp.inf, dtype),
    loss_down=jnp.asarray(jnp.inf, dtype),
    probed=jnp.asarray(-1, jnp.int32),
    num_rejected=jnp.zeros([], jnp.int32),
    inner_state=inner_state,
  )


class _Context(NamedTuple):
  """One update of :func:`climb`: its configuration and what it received.

  Attributes:
    config: the configuration.
    updates: the incoming updates.
    params: the current parameters.
    inner_args: the keyword arguments passed on to the inner optimizer.
    score: ``score(candidates, batch_size) -> losses``: the loss after the
      inner update at each row of hyperparameter values, averaged over
      devices, ``inf`` where non-finite.
    reference: the loss the guard compares with (``value``, or ``inf``).
  """

  config: _Config
  updates: optax.Updates
  params: optax.Params
  inner_args: dict[str, Any]
  score: Callable[[jax.Array, int | None], jax.Array]
  reference: jax.Array


def _context(
  config, updates, state, params, value_fn, value, extra_args
) -> _Context:
  """Checks the update's arguments and binds what the probes need."""
  if value_fn is None:
    raise TypeError(
      "climb's update needs the loss function: call update(updates, state, "
      "params, value_fn=loss_fn, ...), with extra keyword arguments (a "
      "batch, say) that loss_fn takes."
    )
  if params is None:
    raise ValueError(
      "climb's update needs params, the current parameters, to evaluate "
      "value_fn around them."
    )
  loss = _value_fn.bind_value_fn(value_fn, extra_args)
  mode = _probe.resolve_probe_mode(config.probe)
  dtype = state.loss_up.dtype
  inner_args = dict(extra_args, value_fn=value_fn)
  reference = jnp.asarray(jnp.inf, dtype)
  if value is not None:
    inner_args["value"] = value
    reference = _probe.device_mean(value, dtype, config.axis_name)

  def step_at(h: jax.Array) -> optax.Updates:
    inner_state = _with_values(config, state.inner_state, h)
    return config.inner.update(updates, inner_state, params, **inner_args)[0]

  def score(candidates: jax.Array, batch_size: int | None) -> jax.Array:
    losses = _probe.candidate_losses(
      loss, params, step_at, candidates, mode, batch_size=batch_size
    )
    return _probe.as_scores(losses, dtype, config.axis_name)

  return _Context(config, updates, params, inner_args, score, reference)


def _with_values(config: _Config, inner_state: Any, h: jax.Array) -> Any:
  """The inner state with the climbed hyperparameters set to ``h``."""
  hp = dict(inner_state.hyperparams)
  for i, name in enumerate(config.names):
    hp[name] = h[i].astype(jnp.result_type(hp[name]))
  return inner_state._replace(hyperparams=hp)


def _vector(config: _Config, tree: Mapping[str, jax.Array]) -> jax.Array:
  """The values of ``tree``, in the order of ``config.names``."""
  return jnp.stack([tree[n] for n in config.names])


def _by_name(config: _Config, vector: jax.Array) -> dict[str, jax.Array]:
  """The inverse of :func:`_vector`."""
  return {n: vector[i] for i, n in enumerate(config.names)}


def _clip(config: _Config, h: jax.Array, index: Any = None) -> jax.Array:
  """``h`` (all values, or the one at ``index``) within its bounds."""
  lower = np.array([lo for lo, _ in config.bounds])
  upper = np.array([hi for _, hi in config.bounds])
  if index is not None:
    lower, upper = jnp.asarray(lower)[index], jnp.asarray(upper)[index]
  h = jnp.clip(h, jnp.asarray(lower, h.dtype), jnp.asarray(upper, h.dtype))
  return jnp.minimum(h, jnp.finfo(h.dtype).max)


def _update(
  ctx: _Context, state: ClimbState
) -> tuple[optax.Updates, ClimbState]:
  """``update_fn`` of :func:`climb`."""
  config = ctx.config

  def probe(state: ClimbState) -> tuple[ClimbState, jax.Array]:
    return _probe_step(ctx, state)

  def skip(state: ClimbState) -> tuple[ClimbState, jax.Array]:
    return state, jnp.zeros([], bool)

  def probe_or_skip(state: ClimbState) -> tuple[ClimbState, jax.Array]:
    every_k = config.every_k
    if _validation.is_concrete_number(every_k) and every_k == 1:
      return probe(state)
    return lax.cond(state.count % every_k == 0, probe, skip, state)

  if config.scale_search and config.lr_index is not None:
    search = functools.partial(_search_step, ctx)
    new_state, reject = lax.cond(state.count == 0, search, probe_or_skip, state)
  else:
    new_state, reject = probe_or_skip(state)
  return _take_step(ctx, state, new_state, reject)


def _search_step(
  ctx: _Context, state: ClimbState
) -> tuple[ClimbState, jax.Array]:
  """The first update: the scale search sets the learning rate."""
  config, i = ctx.config, ctx.config.lr_index
  h = _vector(config, state.hyperparams)
  ceiling = _vector(config, state.tie_ceiling)
  scales = jnp.asarray(config.scale_search, h.dtype)
  candidates = jnp.stack([h] * len(config.scale_search))
  candidates = _clip(config, candidates.at[:, i].set(h[i] * scales))
  searched = _search.search(
    h[i],
    candidates[:, i],
    ctx.score(candidates, 2),
    reference=ctx.reference,
    guard=config.guard,
    guard_rtol=config.guard_rtol,
    backoff=config.backoff,
    clip=functools.partial(_clip, config, index=i),
  )
  new_h = h.at[i].set(searched.learning_rate)
  ceiling = ceiling.at[i].set(
    jnp.where(searched.decided, jnp.maximum(ceiling[i], new_h[i]), ceiling[i])
  )
  new_state = state._replace(
    hyperparams=_by_name(config, new_h),
    tie_ceiling=_by_name(config, ceiling),
    num_rejected=state.num_rejected + searched.reject.astype(jnp.int32),
    loss_up=searched.loss,
    loss_down=searched.loss,
    probed=jnp.asarray(i, jnp.int32),
  )
  return new_state, searched.reject


def _candidates(
  ctx: _Context, h: jax.Array, steps: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Each value's larger and smaller candidate, on its scale, clipped."""
  config = ctx.config
  is_decay = np.array([k == "decay" for k in config.kinds])
  up = jnp.where(is_decay, 1 - (1 - h) * (1 - steps), h * (1 + steps))
  down = jnp.where(is_decay, 1 - (1 - h) * (1 + steps), h * (1 - steps))
  return _clip(config, up), _clip(config, down)


def _score_layout(
  ctx: _Context, state: ClimbState, h: jax.Array, up: jax.Array, down: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Which value is probed, and the losses at its two candidates."""
  config, n = ctx.config, len(ctx.config.names)
  if config.layout == "cycle":
    which = ((state.count // config.every_k) % n).astype(jnp.int32)
    candidates = jnp.stack(
      [h.at[which].set(up[which]), h.at[which].set(down[which])]
    )
    loss_up, loss_down = ctx.score(candidates, None)
    return which, loss_up, loss_down
  rows = []
  for i in range(n):
    rows += [h.at[i].set(up[i]), h.at[i].set(down[i])]
  pairs = ctx.score(jnp.stack(rows), None).reshape(n, 2)
  which = jnp.argmin(jnp.min(pairs, axis=1)).astype(jnp.int32)
  return which, pairs[which, 0], pairs[which, 1]


def _probe_step(
  ctx: _Context, state: ClimbState
) -> tuple[ClimbState, jax.Array]:
  """A probe step: score one value's candidates and move it."""
  config, lr_index = ctx.config, ctx.config.lr_index
  h = _vector(config, state.hyperparams)
  ceiling = _vector(config, state.tie_ceiling)
  streak = _vector(config, state.streak)
  steps = _moves.relative_step(
    streak, config.lrlr, config.lrlr_growth, config.max_lrlr, h.dtype
  )
  up, down = _candidates(ctx, h, steps)
  which, loss_up, loss_down = _score_layout(ctx, state, h, up, down)
  evidence = _evidence.compare(
    loss_up,
    loss_down,
    can_climb=_moves.is_nonzero(ctx.updates),
    reference=ctx.reference,
  )
  reject = _guard.rejects(
    evidence, guard=config.guard, guard_rtol=config.guard_rtol
  )
  backoff = jnp.asarray(config.backoff, h.dtype)
  is_lr = jnp.bool_(False) if lr_index is None else which == lr_index
  moved = _moves.move(
    h[which],
    up=up[which],
    down=down[which],
    evidence=evidence,
    reject=reject,
    streak=streak[which],
    tie_ceiling=ceiling[which],
    rejected_value=jnp.where(is_lr, h[which] * backoff, h[which]),
    clip=functools.partial(_clip, config, index=which),
    tie_break=config.tie_break,
    ties_hold=jnp.asarray([k == "decay" for k in config.kinds])[which],
  )
  new_h = h.at[which].set(moved.value)
  new_streak = streak.at[which].set(moved.streak)
  if lr_index is not None:
    # A rejected step backs the learning rate off, probed or not, and counts
    # as a fall.
    backed_off = _clip(config, h[lr_index] * backoff, index=lr_index)
    new_h = new_h.at[lr_index].set(
      jnp.where(reject, backed_off, new_h[lr_index])
    )
    fall = _moves.next_streak(streak[lr_index], jnp.bool_(False))
    new_streak = new_streak.at[lr_index].set(
      jnp.where(reject, fall, new_streak[lr_index])
    )
  new_state = state._replace(
    hyperparams=_by_name(config, new_h),
    streak=_by_name(config, new_streak),
    tie_ceiling=_by_name(config, ceiling.at[which].set(moved.tie_ceiling)),
    num_rejected=state.num_rejected + reject.astype(jnp.int32),
    loss_up=loss_up,
    loss_down=loss_down,
    probed=which,
  )
  return new_state, reject


def _take_step(
  ctx: _Context, state: ClimbState, new_state: ClimbState, reject: jax.Array
) -> tuple[optax.Updates, ClimbState]:
  """The inner update at the new values; nothing moves on a rejected step."""
  config = ctx.config
  new_h = _vector(config, new_state.hyperparams)
  inner_state = _with_values(config, state.inner_state, new_h)
  if config.guard and config.lr_index is None:
    # The guard backs off the inner learning rate, which is not climbed.
    hp = dict(inner_state.hyperparams)
    lr = hp[LEARNING_RATE]
    hp[LEARNING_RATE] = jnp.where(
      reject, (lr * config.backoff).astype(lr.dtype), lr
    )
    inner_state = inner_state._replace(hyperparams=hp)
  new_updates, new_inner = config.inner.update(
    ctx.updates, inner_state, ctx.params, **ctx.inner_args
  )
  # A rejected step leaves the parameters and the inner state where they
  # were (jnp.where, not a zero scale: 0 * nan is nan).
  new_updates = jax.tree.map(
    lambda u: jnp.where(reject, jnp.zeros_like(u), u), new_updates
  )
  new_inner = jax.tree.map(
    lambda old, new: jnp.where(reject, old, new), inner_state, new_inner
  )
  new_state = new_state._replace(
    count=numerics.safe_increment(state.count), inner_state=new_inner
  )
  return new_updates, new_state
