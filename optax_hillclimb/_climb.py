"""Hill climbing on any scalar hyperparameters: the ``climb`` wrapper.

It climbs hyperparameters of an inner optimizer with the parts of
``scale_by_hillclimb``'s two-probe rule: the move, the scale search with its
first-step bound, and the guard on every step (``_transform``).
"""

from collections.abc import Callable, Mapping, Sequence
import functools
import numbers
from typing import Any, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

from optax_hillclimb import _climb_config
from optax_hillclimb import _transform
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
    loss_average: the guard's running average of recent losses (``inf``
      before any): of ``value`` when the training loop passes it, else of
      the loss at the candidate each probe step chose.
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
  loss_average: jax.Array
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
  layout: Layout
  guard: bool
  guard_rtol: jax.typing.ArrayLike
  lrlr_growth: jax.typing.ArrayLike
  tie_break: _transform.TieBreak
  scale_search: Sequence[float] | None
  probe: _value_fn.ProbeMode
  axis_name: str | None


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
  guard_rtol: jax.typing.ArrayLike = 1.0,
  lrlr_growth: jax.typing.ArrayLike = 1.5,
  tie_break: _transform.TieBreak = "up",
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  probe: _value_fn.ProbeMode = "auto",
  axis_name: str | None = None,
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
  consecutive moves the same way (up to 0.5); ties (equal finite losses) move
  a ``"log"``-scale hyperparameter as ``tie_break`` says, up to its
  ``tie_ceiling``, and hold a ``"decay"``-scale one; the guard (the same as
  :func:`scale_by_hillclimb`'s two-probe rule's, on every step) rejects a step
  whose better loss is non-finite or well above ``value``, or without it the
  running average of the losses at the chosen candidates: the update is then
  zero, the inner state does not advance, and the learning rate (the inner
  optimizer's ``"learning_rate"``, climbed or not) halves; with ``value``, a
  ``value`` well above its running average halves it too. When
  ``learning_rate`` is climbed, the first update scores its multiples
  ``scale_search`` as :func:`scale_by_hillclimb` does, with the same bound on
  the first step's length (unless ``scale_search`` is ``None``). Steps where
  ``count % every_k != 0`` run the inner update as it is.

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
    guard_rtol: relative tolerance of the guard's comparison with ``value``.
    lrlr_growth: growth (at least 1) of the relative step over consecutive
      moves of a hyperparameter in the same direction.
    probe: ``"vmap"`` (the candidates' inner updates and losses in one batched
      program), ``"sequential"`` (``lax.map``, one after another) or
      ``"auto"`` (sequential on CPU, vmap elsewhere).
    axis_name: the device axis under ``jax.pmap`` or ``shard_map``; losses
      (and ``value``) are averaged over it so replicas decide alike.
    tie_break: ``"up"`` or ``"down"``: how equal finite losses move a
      ``"log"``-scale hyperparameter, see :func:`scale_by_hillclimb`.
    scale_search: multiples of the starting learning rate whose rates,
      rounded to quarter decades, are scored at the first update (when
      ``learning_rate`` is climbed); ``None`` to start as given.

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
  _validation.check_choice("layout", layout, _climb_config.LAYOUTS)
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
    lrlr, every_k, layout, guard, guard_rtol, lrlr_growth, tie_break,
    scale_search, probe, axis_name,
  )  # fmt: skip
  _validation.check_rule(config)

  def init_fn(params: optax.Params) -> ClimbState:
    inner_state = config.inner.init(params)
    _climb_config.check_inner_state(
      inner_state, config.names, config.kinds, config.bounds, config.guard
    )
    dtype = _transform.learning_rate_dtype()
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
      loss_average=jnp.asarray(jnp.inf, dtype),
      inner_state=inner_state,
    )

  def update_fn(
    updates: optax.Updates,
    state: ClimbState,
    params: optax.Params | None = None,
    *,
    value_fn: Callable[..., jax.typing.ArrayLike] | None = None,
    value: jax.typing.ArrayLike | None = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ClimbState]:
    return _update(config, updates, state, params, value_fn, value, extra_args)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class _Step(NamedTuple):
  """One update of :func:`climb`: what it received, bound for the probes.

  Attributes:
    updates: the incoming updates.
    params: the current parameters.
    inner_args: the keyword arguments passed on to the inner optimizer.
    score: scores rows of hyperparameter values (``step_at=...``).
    reference: the loss the guard compares a probe with.
  """

  updates: optax.Updates
  params: optax.Params
  inner_args: dict[str, Any]
  score: _value_fn.Score
  reference: jax.Array


def _update(
  config: _Config,
  updates: optax.Updates,
  state: ClimbState,
  params: optax.Params | None,
  value_fn: Callable[..., jax.typing.ArrayLike] | None,
  value: jax.typing.ArrayLike | None,
  extra_args: Mapping[str, Any],
) -> tuple[optax.Updates, ClimbState]:
  """``update_fn`` of :func:`climb`: as ``scale_by_hillclimb``'s two probes."""
  score, mean_value = _value_fn.scorer(
    "climb", value_fn, extra_args, params, value,
    probe=config.probe, axis_name=config.axis_name,
    dtype=state.loss_average.dtype,
  )  # fmt: skip
  inner_args = dict(extra_args, value_fn=value_fn)
  if value is not None:
    inner_args["value"] = value
  reference = state.loss_average if value is None else mean_value
  step = _Step(updates, params, inner_args, score, reference)
  watch = _transform.watch_loss(config, state.loss_average, mean_value)

  decides = state.count % jnp.asarray(config.every_k, state.count.dtype) == 0
  probe = functools.partial(_probe_step, config, step)
  if not (isinstance(config.every_k, numbers.Real) and config.every_k == 1):
    probe = functools.partial(lax.cond, decides, probe, _hold)
  if config.scale_search and config.lr_index is not None:
    search = functools.partial(_search_step, config, step)
    new_state, rejected = lax.cond(state.count == 0, search, probe, state)
  else:
    new_state, rejected = probe(state)

  # The guard on every step, as scale_by_hillclimb's: a spike of value
  # backs the learning rate off, a non-finite one is not stepped on.
  backs_off = jnp.zeros([], bool)
  if watch is not None:
    backs_off = watch.spike & ~rejected
    h = _vector(config, new_state.hyperparams)
    h, streak = _back_off_learning_rate(
      config,
      h,
      _vector(config, new_state.streak),
      h,
      _vector(config, state.streak),
      backs_off,
    )
    newly_rejected = watch.reject & ~rejected
    new_state = new_state._replace(
      hyperparams=_by_name(config, h),
      streak=_by_name(config, streak),
      loss_average=watch.average,
      num_rejected=new_state.num_rejected + newly_rejected.astype(jnp.int32),
    )
    rejected |= watch.reject
  else:
    # Nothing to watch: the losses at the chosen candidates feed the
    # average that later probes compare with.
    new_state = new_state._replace(
      loss_average=_transform.average_of_chosen(
        state.loss_average, new_state, decides
      )
    )
  return _take_step(config, step, state, new_state, rejected, backs_off)


def _hold(state: ClimbState) -> tuple[ClimbState, jax.Array]:
  """A step that does not probe: the values hold, nothing is rejected."""
  return state, jnp.zeros([], bool)


def _with_values(config: _Config, inner_state: Any, h: jax.Array) -> Any:
  """The inner state with the climbed hyperparameters set to ``h``."""
  hp = dict(inner_state.hyperparams)
  for i, name in enumerate(config.names):
    hp[name] = h[i].astype(jnp.result_type(hp[name]))
  return inner_state._replace(hyperparams=hp)


def _inner_step(
  config: _Config, step: _Step, state: ClimbState, h: jax.Array
) -> optax.Updates:
  """The inner optimizer's update with the climbed values set to ``h``."""
  inner_state = _with_values(config, state.inner_state, h)
  return config.inner.update(
    step.updates, inner_state, step.params, **step.inner_args
  )[0]


def _vector(config: _Config, tree: Mapping[str, jax.Array]) -> jax.Array:
  """The values of ``tree``, in the order of ``config.names``."""
  return jnp.stack([tree[n] for n in config.names])


def _by_name(config: _Config, vector: jax.Array) -> dict[str, jax.Array]:
  """The inverse of :func:`_vector`."""
  return {n: vector[i] for i, n in enumerate(config.names)}


def _bounds(config: _Config, index: Any = None) -> tuple[Any, Any]:
  """The lower and upper bounds of every value (or of the one at ``index``)."""
  lower = np.array([lo for lo, _ in config.bounds])
  upper = np.array([hi for _, hi in config.bounds])
  if index is None:
    return lower, upper
  return jnp.asarray(lower)[index], jnp.asarray(upper)[index]


def _search_step(
  config: _Config, step: _Step, state: ClimbState
) -> tuple[ClimbState, jax.Array]:
  """The first update: the scale search sets the learning rate."""
  i = config.lr_index
  h = _vector(config, state.hyperparams)
  ceiling = _vector(config, state.tie_ceiling)
  scales = jnp.asarray(config.scale_search, h.dtype)
  candidates = jnp.stack([h] * len(config.scale_search))
  candidates = _transform.clip(
    candidates.at[:, i].set(_transform.on_quarter_decades(h[i] * scales)),
    *_bounds(config),
  )
  dtype = h.dtype
  searched = _transform.search(
    config,
    h[i],
    candidates[:, i],
    step.score(
      candidates,
      step_at=functools.partial(_inner_step, config, step, state),
      batch_size=2,
    ),
    reference=step.reference,
    bounds=_bounds(config, i),
    # The step at a learning rate of one: the search bounds c times it.
    step_norm=_transform.norm(
      _inner_step(config, step, state, h.at[i].set(1)), config.axis_name, dtype
    ),
    params_norm=_transform.norm(step.params, config.axis_name, dtype),
  )
  new_h = h.at[i].set(searched.learning_rate)
  # As in scale_by_hillclimb: ties may climb back to the pick, not to lr0.
  ceiling = ceiling.at[i].set(jnp.where(searched.decided, new_h[i], ceiling[i]))
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
  config: _Config, h: jax.Array, steps: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Each value's larger and smaller candidate, on its scale, clipped."""
  is_decay = np.array([k == "decay" for k in config.kinds])
  up = jnp.where(is_decay, 1 - (1 - h) * (1 - steps), h * (1 + steps))
  down = jnp.where(is_decay, 1 - (1 - h) * (1 + steps), h * (1 - steps))
  bounds = _bounds(config)
  return _transform.clip(up, *bounds), _transform.clip(down, *bounds)


def _score_layout(
  config: _Config,
  step: _Step,
  state: ClimbState,
  h: jax.Array,
  up: jax.Array,
  down: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Which value is probed, and the losses at its two candidates."""
  n = len(config.names)
  step_at = functools.partial(_inner_step, config, step, state)
  if config.layout == "cycle":
    which = ((state.count // config.every_k) % n).astype(jnp.int32)
    candidates = jnp.stack(
      [h.at[which].set(up[which]), h.at[which].set(down[which])]
    )
    loss_up, loss_down = step.score(candidates, step_at=step_at)
    return which, loss_up, loss_down
  rows = []
  for i in range(n):
    rows += [h.at[i].set(up[i]), h.at[i].set(down[i])]
  pairs = step.score(jnp.stack(rows), step_at=step_at).reshape(n, 2)
  which = jnp.argmin(jnp.min(pairs, axis=1)).astype(jnp.int32)
  return which, pairs[which, 0], pairs[which, 1]


def _probe_step(
  config: _Config, step: _Step, state: ClimbState
) -> tuple[ClimbState, jax.Array]:
  """A probe step: score one value's candidates and move it."""
  h = _vector(config, state.hyperparams)
  ceiling = _vector(config, state.tie_ceiling)
  streak = _vector(config, state.streak)
  steps = _transform.relative_step(
    streak, config.lrlr, config.lrlr_growth, h.dtype
  )
  up, down = _candidates(config, h, steps)
  which, loss_up, loss_down = _score_layout(config, step, state, h, up, down)
  reject = _transform.guard_rejects(
    config, jnp.minimum(loss_up, loss_down), step.reference
  )
  backoff = jnp.asarray(_transform.BACKOFF, h.dtype)
  lr_index = config.lr_index
  is_lr = jnp.bool_(False) if lr_index is None else which == lr_index
  moved = _transform.move(
    h[which],
    up=up[which],
    down=down[which],
    loss_up=loss_up,
    loss_down=loss_down,
    can_climb=_transform.is_nonzero(step.updates),
    no_evidence=jnp.bool_(False),
    reject=reject,
    streak=streak[which],
    tie_ceiling=ceiling[which],
    rejected_value=jnp.where(is_lr, h[which] * backoff, h[which]),
    lower=_bounds(config, which)[0],
    upper=_bounds(config, which)[1],
    tie_break=config.tie_break,
    ties_hold=jnp.asarray([k == "decay" for k in config.kinds])[which],
  )
  # A rejected step backs the learning rate off, probed or not.
  new_h, new_streak = _back_off_learning_rate(
    config,
    h.at[which].set(moved.value),
    streak.at[which].set(moved.streak),
    h,
    streak,
    reject,
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


def _back_off_learning_rate(
  config: _Config,
  h: jax.Array,
  streak: jax.Array,
  from_h: jax.Array,
  from_streak: jax.Array,
  backs_off: jax.Array,
) -> tuple[jax.Array, jax.Array]:
  """Where ``backs_off``, a climbed learning rate halves: a fall.

  The values ``h`` and their ``streak`` after this update's move; the
  learning rate becomes half of its value in ``from_h``, and its streak a
  fall from ``from_streak``. An inner learning rate that is not climbed is
  backed off when the step is taken (:func:`_take_step`).
  """
  i = config.lr_index
  if i is None:
    return h, streak
  backed_off = _transform.clip(
    from_h[i] * jnp.asarray(_transform.BACKOFF, h.dtype), *_bounds(config, i)
  )
  fall = _transform.next_streak(from_streak[i], jnp.bool_(False))
  return (
    h.at[i].set(jnp.where(backs_off, backed_off, h[i])),
    streak.at[i].set(jnp.where(backs_off, fall, streak[i])),
  )


def _take_step(
  config: _Config,
  step: _Step,
  state: ClimbState,
  new_state: ClimbState,
  rejected: jax.Array,
  backs_off: jax.Array,
) -> tuple[optax.Updates, ClimbState]:
  """The inner update at the new values; nothing moves on a rejected step."""
  new_h = _vector(config, new_state.hyperparams)
  inner_state = _with_values(config, state.inner_state, new_h)
  if config.guard and config.lr_index is None:
    # The guard backs off the inner learning rate, which is not climbed.
    hp = dict(inner_state.hyperparams)
    lr = hp[LEARNING_RATE]
    hp[LEARNING_RATE] = jnp.where(
      rejected | backs_off, (lr * _transform.BACKOFF).astype(lr.dtype), lr
    )
    inner_state = inner_state._replace(hyperparams=hp)
  new_updates, new_inner = config.inner.update(
    step.updates, inner_state, step.params, **step.inner_args
  )
  # A rejected step leaves the parameters and the inner state where they
  # were (jnp.where, not a zero scale: 0 * nan is nan).
  new_updates = jax.tree.map(
    lambda u: jnp.where(rejected, jnp.zeros_like(u), u), new_updates
  )
  new_inner = jax.tree.map(
    lambda old, new: jnp.where(rejected, old, new), inner_state, new_inner
  )
  new_state = new_state._replace(
    count=optax.safe_increment(state.count), inner_state=new_inner
  )
  return new_updates, new_state
