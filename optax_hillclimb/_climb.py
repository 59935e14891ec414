"""Hill climbing on any scalar hyperparameters: the ``climb`` wrapper."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import numerics

from optax_hillclimb import _moves
from optax_hillclimb import _probe
from optax_hillclimb import _transform
from optax_hillclimb import _validation
from optax_hillclimb import _value_fn

Scale = Literal["log", "decay"]
SCALES = ("log", "decay")
Layout = Literal["cycle", "all"]
LAYOUTS = ("cycle", "all")

# Hyperparameters that behave like ``1 - decay``: climbed multiplicatively in
# ``1 - value``. Every other name is climbed multiplicatively in the value.
DECAY_NAMES = frozenset(
  ("momentum", "b1", "b2", "beta1", "beta2", "decay", "smoothing")
)
# Default bounds: ``(lower, upper)`` of the value, by scale.
DEFAULT_BOUNDS = {"log": (1e-9, None), "decay": (0.0, 0.999)}
# The hyperparameter that the guard backs off and that the scale search sets.
LEARNING_RATE = "learning_rate"


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


def _as_names(hyperparams: str | Sequence[str]) -> tuple[str, ...]:
  names = (hyperparams,) if isinstance(hyperparams, str) else hyperparams
  if not isinstance(names, Sequence) or not all(
    isinstance(n, str) for n in names
  ):
    raise TypeError(
      "hyperparams must be a name or a sequence of names of the inner "
      f"optimizer's hyperparameters, got hyperparams={hyperparams!r}."
    )
  names = tuple(names)
  if not names:
    raise ValueError("hyperparams must name at least one hyperparameter.")
  if len(set(names)) != len(names):
    raise ValueError(f"hyperparams has repeated names: {names!r}.")
  return names


def _resolve_scales(
  names: tuple[str, ...], scales: Mapping[str, str] | None
) -> tuple[str, ...]:
  scales = dict(scales or {})
  unknown = sorted(set(scales) - set(names))
  if unknown:
    raise ValueError(
      f"scales names {unknown}, which are not climbed (hyperparams={names!r})."
    )
  for name, scale in scales.items():
    _validation.check_choice(f"scales[{name!r}]", scale, SCALES)
  return tuple(
    scales.get(n, "decay" if n in DECAY_NAMES else "log") for n in names
  )


def _resolve_bounds(
  names: tuple[str, ...],
  kinds: tuple[str, ...],
  bounds: Mapping[str, tuple[Any, Any]] | None,
) -> tuple[tuple[float, float], ...]:
  bounds = dict(bounds or {})
  unknown = sorted(set(bounds) - set(names))
  if unknown:
    raise ValueError(
      f"bounds names {unknown}, which are not climbed (hyperparams={names!r})."
    )
  resolved = []
  for name, kind in zip(names, kinds, strict=True):
    lo, hi = bounds.get(name, DEFAULT_BOUNDS[kind])
    if hi is None:
      hi = np.inf
    valid = (
      _validation.is_concrete_number(lo)
      and _validation.is_concrete_number(hi)
      and lo < hi
      and (lo > 0 if kind == "log" else 0 <= lo and hi < 1)
    )
    if not valid:
      domain = (
        "0 < lower < upper" if kind == "log" else "0 <= lower < upper < 1"
      )
      raise ValueError(
        f"bounds[{name!r}] must be numbers (lower, upper) with {domain} (the "
        f"{kind!r} scale), got {(lo, hi)!r}."
      )
    resolved.append((float(lo), float(hi)))
  return tuple(resolved)


def _check_inner_state(
  inner_state: Any,
  names: tuple[str, ...],
  kinds: tuple[str, ...],
  bounds: tuple[tuple[float, float], ...],
  guard: bool,
) -> None:
  """Raises a clear error unless ``inner_state`` can be climbed."""
  hyperparams = getattr(inner_state, "hyperparams", None)
  if not isinstance(hyperparams, Mapping) or not hasattr(
    inner_state, "_replace"
  ):
    raise TypeError(
      "climb needs an inner optimizer built with optax.inject_hyperparams, "
      "whose state holds its hyperparameters in a `hyperparams` dict, for "
      "example optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, "
      f"momentum=0.9). Its init returned a {type(inner_state).__name__}, "
      "which has no `hyperparams`."
    )
  scheduled = getattr(inner_state, "hyperparams_states", None) or {}
  for name, kind, (lo, hi) in zip(names, kinds, bounds, strict=True):
    if name not in hyperparams:
      raise ValueError(
        f"climb: {name!r} is not a hyperparameter of the inner optimizer, "
        f"whose state has {sorted(hyperparams)}. Give it as a number to the "
        "factory wrapped by optax.inject_hyperparams (optax.sgd's momentum "
        "defaults to None: pass momentum=0.0 to climb it)."
      )
    if name in scheduled:
      raise ValueError(
        f"climb: the hyperparameter {name!r} is a schedule, which "
        "optax.inject_hyperparams recomputes at every step; climb it from a "
        "constant starting value instead."
      )
    value = hyperparams[name]
    shape = getattr(value, "shape", ())
    if shape != ():
      raise ValueError(
        f"climb: the hyperparameter {name!r} must be a scalar, got an array "
        f"of shape {shape}."
      )
    dtype = getattr(value, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
        f"climb: the hyperparameter {name!r} must be a floating-point "
        f"number, got {value!r} (give it as a float, e.g. 0.0, not 0)."
      )
    if not isinstance(value, jax.core.Tracer):
      # Compared in the value's precision: float32(0.999) > 0.999.
      low, high = (np.asarray(b).astype(dtype) for b in (lo, hi))
      value = float(value)
      if not low <= value <= high:
        raise ValueError(
          f"climb: the hyperparameter {name!r} starts at {value!r}, outside "
          f"its bounds [{lo!r}, {hi!r}] ({kind!r} scale); change it or pass "
          "bounds={...}."
        )
  if guard and LEARNING_RATE not in hyperparams:
    raise ValueError(
      "climb's guard backs off the inner optimizer's 'learning_rate' "
      f"hyperparameter, which it lacks (it has {sorted(hyperparams)}): pass "
      "guard=False."
    )


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
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
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
  names = _as_names(hyperparams)
  kinds = _resolve_scales(names, scales)
  bounds_ = _resolve_bounds(names, kinds, bounds)
  check = _validation.check
  check("lrlr", lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _validation.check_positive_int("every_k", every_k)
  check("backoff", backoff, lambda x: 0 < x < 1, "in the interval (0, 1)")
  check("guard_rtol", guard_rtol, lambda x: x >= 0, "non-negative")
  check("lrlr_growth", lrlr_growth, lambda x: x >= 1, "at least 1")
  check("max_lrlr", max_lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  _probe.resolve_probe_mode(probe)
  _validation.check_choice("layout", layout, LAYOUTS)
  _validation.check_choice("tie_break", tie_break, _transform.TIE_BREAKS)
  _validation.check_scale_search(scale_search)
  if not callable(getattr(inner, "init", None)) or not callable(
    getattr(inner, "update", None)
  ):
    raise TypeError(
      "climb's inner must be an optax.GradientTransformation built with "
      f"optax.inject_hyperparams, got {inner!r:.80}."
    )
  inner = optax.with_extra_args_support(inner)
  n = len(names)
  lr_index = names.index(LEARNING_RATE) if LEARNING_RATE in names else None
  searches = bool(scale_search) and lr_index is not None
  is_decay = np.array([k == "decay" for k in kinds])
  lower = np.array([lo for lo, _ in bounds_])
  upper = np.array([hi for _, hi in bounds_])

  def init_fn(params: optax.Params) -> ClimbState:
    inner_state = inner.init(params)
    _check_inner_state(inner_state, names, kinds, bounds_, guard)
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
    mode = _probe.resolve_probe_mode(probe)
    dtype = state.loss_up.dtype
    inner_args = dict(extra_args, value_fn=value_fn)
    if value is not None:
      inner_args["value"] = value

    def as_h(x: Any) -> jax.Array:
      return jnp.asarray(x, dtype)

    def vector(tree: Mapping[str, jax.Array]) -> jax.Array:
      return jnp.stack([tree[n] for n in names])

    def clip(h: jax.Array) -> jax.Array:
      h = jnp.clip(h, as_h(lower), as_h(upper))
      return jnp.minimum(h, jnp.finfo(dtype).max)

    def with_values(inner_state: Any, h: jax.Array) -> Any:
      """The inner state with the climbed hyperparameters set to ``h``."""
      hp = dict(inner_state.hyperparams)
      for i, name in enumerate(names):
        hp[name] = h[i].astype(jnp.result_type(hp[name]))
      return inner_state._replace(hyperparams=hp)

    def step_at(h: jax.Array) -> optax.Updates:
      return inner.update(
        updates, with_values(state.inner_state, h), params, **inner_args
      )[0]

    def score(candidates: jax.Array, batch_size: int | None) -> jax.Array:
      losses = _probe.candidate_losses(
        loss, params, step_at, candidates, mode, batch_size=batch_size
      ).astype(dtype)
      if axis_name is not None:
        losses = lax.pmean(losses, axis_name)
      return jnp.where(jnp.isfinite(losses), losses, jnp.inf)

    def rejects(best: jax.Array) -> jax.Array:
      current = None
      if value is not None:
        current = jnp.asarray(value).astype(dtype)
        if axis_name is not None:
          current = lax.pmean(current, axis_name)
      return _moves.rejects(best, current, guard=guard, guard_rtol=guard_rtol)

    def settle(
      state: ClimbState, h, streak, ceiling, *, reject, **fields
    ) -> ClimbState:
      return state._replace(
        hyperparams={n: h[i] for i, n in enumerate(names)},
        streak={n: streak[i] for i, n in enumerate(names)},
        tie_ceiling={n: ceiling[i] for i, n in enumerate(names)},
        num_rejected=state.num_rejected + reject.astype(jnp.int32),
        **fields,
      )

    def search_step(state: ClimbState) -> tuple[ClimbState, jax.Array]:
      h, ceiling = vector(state.hyperparams), vector(state.tie_ceiling)
      lr0 = h[lr_index]
      candidates = jnp.stack([h] * len(scale_search))
      candidates = clip(
        candidates.at[:, lr_index].set(lr0 * as_h(scale_search))
      )
      lrs = candidates[:, lr_index]
      losses = score(candidates, batch_size=2)
      chosen, decided = _moves.pick_scale(lrs, losses)
      reject = rejects(losses[chosen])
      new_lr = jnp.where(decided, lrs[chosen], lr0)
      new_lr = jnp.where(reject, jnp.min(lrs) * as_h(backoff), new_lr)
      new_h = clip(h.at[lr_index].set(new_lr))
      keep = decided & ~reject
      ceiling = ceiling.at[lr_index].set(
        jnp.where(keep, jnp.maximum(ceiling[lr_index], new_h[lr_index]),
                  ceiling[lr_index])
      )  # fmt: skip
      new_state = settle(
        state,
        new_h,
        vector(state.streak),
        ceiling,
        reject=reject,
        loss_up=losses[chosen],
        loss_down=losses[chosen],
        probed=jnp.asarray(lr_index, jnp.int32),
      )
      return new_state, reject

    def probe_step(state: ClimbState) -> tuple[ClimbState, jax.Array]:
      h, ceiling = vector(state.hyperparams), vector(state.tie_ceiling)
      streak = vector(state.streak)
      steps = _moves.relative_step(streak, lrlr, lrlr_growth, max_lrlr, dtype)
      # Larger and smaller candidate value of each hyperparameter.
      up = clip(jnp.where(is_decay, 1 - (1 - h) * (1 - steps), h * (1 + steps)))
      down = clip(
        jnp.where(is_decay, 1 - (1 - h) * (1 + steps), h * (1 - steps))
      )
      if layout == "cycle":
        which = ((state.count // every_k) % n).astype(jnp.int32)
        candidates = jnp.stack(
          [h.at[which].set(up[which]), h.at[which].set(down[which])]
        )
        loss_up, loss_down = score(candidates, batch_size=None)
      else:
        rows = []
        for i in range(n):
          rows += [h.at[i].set(up[i]), h.at[i].set(down[i])]
        pairs = score(jnp.stack(rows), batch_size=None).reshape(n, 2)
        which = jnp.argmin(jnp.min(pairs, axis=1)).astype(jnp.int32)
        loss_up, loss_down = pairs[which, 0], pairs[which, 1]
      current, up_i, down_i = h[which], up[which], down[which]
      go_up = loss_up < loss_down
      new_value = jnp.where(go_up, up_i, down_i)
      tie = (loss_up == loss_down) & jnp.isfinite(loss_up)
      decay = jnp.asarray(is_decay)[which]
      # A tie holds a "decay"-scale hyperparameter: nothing to learn.
      hold = tie & decay
      if tie_break == "up":
        climbs = tie & ~decay & _moves.is_nonzero(updates)
        tie_value = jnp.maximum(current, jnp.minimum(up_i, ceiling[which]))
        new_value = jnp.where(climbs, tie_value, new_value)
        hold = hold | (climbs & (tie_value == current))
        go_up = go_up | (climbs & ~hold)
      new_value = jnp.where(hold, current, new_value)
      best = jnp.minimum(loss_up, loss_down)
      reject = rejects(best)
      new_h = jnp.where(reject, h, h.at[which].set(new_value))
      if lr_index is not None:
        new_h = new_h.at[lr_index].set(
          jnp.where(reject, h[lr_index] * as_h(backoff), new_h[lr_index])
        )
      new_h = clip(new_h)
      decided = ~tie & ~reject & jnp.isfinite(best)
      ceiling = ceiling.at[which].set(
        jnp.where(decided, jnp.maximum(ceiling[which], new_h[which]),
                  ceiling[which])
      )  # fmt: skip

      new_streak = streak.at[which].set(
        jnp.where(
          hold & ~reject, 0, _moves.next_streak(streak[which], go_up & ~reject)
        )
      )
      if lr_index is not None:
        # A rejected step lowers the learning rate: it counts as a fall.
        new_streak = new_streak.at[lr_index].set(
          jnp.where(
            reject, _moves.next_streak(streak[lr_index], jnp.bool_(False)),
            new_streak[lr_index],
          )
        )  # fmt: skip
      new_state = settle(
        state,
        new_h,
        new_streak,
        ceiling,
        reject=reject,
        loss_up=loss_up,
        loss_down=loss_down,
        probed=which,
      )
      return new_state, reject

    def skip_step(state: ClimbState) -> tuple[ClimbState, jax.Array]:
      return state, jnp.zeros([], bool)

    def probe_or_skip(state: ClimbState) -> tuple[ClimbState, jax.Array]:
      if _validation.is_concrete_number(every_k) and every_k == 1:
        return probe_step(state)
      return lax.cond(state.count % every_k == 0, probe_step, skip_step, state)

    if searches:
      new_state, reject = lax.cond(
        state.count == 0, search_step, probe_or_skip, state
      )
    else:
      new_state, reject = probe_or_skip(state)

    inner_state = with_values(state.inner_state, vector(new_state.hyperparams))
    if guard and lr_index is None:
      # The guard backs off the inner learning rate, which is not climbed.
      hp = dict(inner_state.hyperparams)
      lr = hp[LEARNING_RATE]
      hp[LEARNING_RATE] = jnp.where(reject, (lr * backoff).astype(lr.dtype), lr)
      inner_state = inner_state._replace(hyperparams=hp)
    new_updates, new_inner = inner.update(
      updates, inner_state, params, **inner_args
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

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _unwrap(x: Any) -> jax.Array:
  # Wrappers such as Flax NNX's OptArray hold the array; unwrap it.
  return x if isinstance(x, jax.Array) else jnp.asarray(x)


def _states(state: optax.OptState) -> list[Any]:
  """The HillclimbState and ClimbState nodes of ``state``, outermost only."""
  kinds = (_transform.HillclimbState, ClimbState)
  return [
    node
    for node in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kinds))
    if isinstance(node, kinds)
  ]


def get_hyperparams(state: optax.OptState) -> dict[str, jax.Array]:
  """Returns the current values of the hyperparameters that :func:`climb` tunes.

  Args:
    state: an optimizer state that contains exactly one :class:`ClimbState`
      (the state of :func:`climb`, possibly inside a chain or wrapper).

  Returns:
    A dict from each climbed hyperparameter's name to its current value, a
    JAX array.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> opt = optax_hillclimb.climb(
    ...     optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.5)
    ... )
    >>> state = opt.init(jnp.zeros(3))
    >>> hp = optax_hillclimb.get_hyperparams(state)
    >>> print({name: f"{v:.2f}" for name, v in hp.items()})
    {'learning_rate': '0.10', 'momentum': '0.50'}
  """
  found = [s for s in _states(state) if isinstance(s, ClimbState)]
  if len(found) != 1:
    raise ValueError(
      "get_hyperparams expects exactly one ClimbState (the state of "
      f"optax_hillclimb.climb) in the optimizer state, found {len(found)}."
    )
  return {name: _unwrap(v) for name, v in found[0].hyperparams.items()}


def get_learning_rate(state: optax.OptState) -> jax.Array:
  """Returns the current learning rate held in a (possibly nested) state.

  Works for :func:`scale_by_hillclimb`, the aliases, :func:`climb` and any
  chain or wrapper that contains exactly one :class:`HillclimbState` or
  :class:`ClimbState`, including :func:`optax.inject_hyperparams`, whose state
  also holds the (starting) ``learning_rate`` hyperparameter and so confuses
  ``optax.tree.get(state, "learning_rate")``. For :func:`climb`, it is the
  climbed learning rate, or the inner optimizer's when it is not climbed.

  Args:
    state: an optimizer state.

  Returns:
    The current learning rate, as a JAX array (also for
    ``nnx.Optimizer.opt_state``, whose leaves Flax wraps).

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> opt = optax_hillclimb.hillclimb(learning_rate=0.05)
    >>> state = opt.init(jnp.zeros(3))
    >>> print(optax_hillclimb.get_learning_rate(state))
    0.05
  """
  found = _states(state)
  if len(found) != 1:
    raise ValueError(
      "get_learning_rate expects exactly one HillclimbState (or ClimbState) "
      f"in the optimizer state, found {len(found)}."
    )
  (node,) = found
  if isinstance(node, _transform.HillclimbState):
    return _unwrap(node.learning_rate)
  if LEARNING_RATE in node.hyperparams:
    return _unwrap(node.hyperparams[LEARNING_RATE])
  hyperparams = getattr(node.inner_state, "hyperparams", {})
  if LEARNING_RATE not in hyperparams:
    raise ValueError(
      "get_learning_rate: this climb state's inner optimizer has no "
      "'learning_rate' hyperparameter."
    )
  return _unwrap(hyperparams[LEARNING_RATE])
