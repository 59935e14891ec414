"""Hill climbing on the learning rate: the ``scale_by_hillclimb`` transform."""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import optax
from optax._src import numerics

from optax_hillclimb import _moves
from optax_hillclimb import _probe
from optax_hillclimb import _validation
from optax_hillclimb import _value_fn

TIE_BREAKS = ("down", "up")

# What a decision spends: two probes (the reference rule), one probe (compared
# with ``value`` and the slope ``-grad . u``), or none (the sign of the next
# gradient's dot product with the previous step's direction).
DECISIONS = ("two_probes", "one_probe", "no_probe")

# Multiples of the starting learning rate scored at the first update: six
# decades on each side, so that any starting guess from 1e-6 to 1e2 lands
# within a factor of 10 of the best single step for learning rates between
# 1e-4 and 1 (SGD's and Adam's usual range).
SCALE_SEARCH = tuple(10.0**k for k in range(-6, 7))


class HillclimbState(NamedTuple):
  """State of :func:`scale_by_hillclimb`.

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
    previous_direction: with ``decision="no_probe"``, the direction of the
      last step taken (a tree like the updates, in their dtypes; zeros before
      the first step and after a rejected one), whose dot product with the
      next gradient decides; ``()`` otherwise, so the other rules keep no
      copy.
  """

  count: jax.Array
  learning_rate: jax.Array
  streak: jax.Array
  loss_up: jax.Array
  loss_down: jax.Array
  num_rejected: jax.Array
  tie_ceiling: jax.Array
  previous_direction: optax.Updates = ()


def _dot(a: optax.Updates, b: optax.Updates, dtype: jnp.dtype) -> jax.Array:
  """Sum over leaves of ``a * b``, accumulated in ``dtype``."""
  products = jax.tree.map(
    lambda x, y: jnp.sum(x.astype(dtype) * y.astype(dtype)), a, b
  )
  return sum(jax.tree.leaves(products), jnp.zeros([], dtype))


def learning_rate_dtype() -> jnp.dtype:
  """float64 when x64 is enabled, else float32.

  The learning rate is kept in this dtype whatever the parameters' dtype: in
  bfloat16, ``lr * 1.01`` rounds back to ``lr``.
  """
  return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _check_hyperparameters(
    learning_rate, lrlr, every_k, min_learning_rate, max_learning_rate,
    backoff, guard_rtol, lrlr_growth, max_lrlr, probe, tie_break,
    scale_search, decision, slope_rtol,
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
  _validation.check_choice("tie_break", tie_break, TIE_BREAKS)
  _validation.check_scale_search(scale_search)
  _validation.check_choice("decision", decision, DECISIONS)
  check("slope_rtol", slope_rtol, lambda x: 0 < x < 1, "in the interval (0, 1)")


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

  The guard (``guard=True``) rejects a step whose better probe is non-finite
  or, when the current loss :math:`f(w)` is given as ``value``, exceeds
  :math:`f(w) + \text{guard\_rtol} \cdot |f(w)|`: the update is then exactly
  zero and :math:`\eta \leftarrow \text{backoff} \cdot \eta`. Without it, a
  learning rate that overshoots falls by only :math:`s` per step, and
  training diverges before it recovers. ``guard=False, lrlr_growth=1,
  tie_break="down", scale_search=None`` gives the reference rule exactly; the
  defaults, measured on the reference experiment, start from a searched
  scale, move faster and escape float-precision ties.

  Only steps where ``count % every_k == 0`` probe; on the others the learning
  rate is unchanged and ``value_fn`` does not run.

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

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    lrlr: relative step of the learning rate, the "learning rate of the
      learning rate" :math:`s`, in (0, 1). Probing less often (larger
      ``every_k``) wants a larger ``lrlr``.
    every_k: probe every ``every_k`` steps (a positive integer).
    min_learning_rate: the learning rate never falls below this positive value
      (near a minimum ties keep lowering it, and from zero it could never climb
      back).
    max_learning_rate: optional upper bound of the learning rate.
    guard: whether to reject steps whose better probe is non-finite or much
      worse than ``value`` (see above).
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
      copy of the last direction in the state). See above and the project's
      documentation, "Cheaper decisions".
    slope_rtol: with ``decision="one_probe"``, the fraction :math:`c` of the
      decrease the slope predicts, in (0, 1), that a step must achieve for
      the learning rate to rise; ``1/2`` settles at the best single step,
      smaller values at longer steps (see above). Other decisions ignore it.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    ``(updates, state, params, *, value_fn, value=None, **extra_args)``:

    * ``value_fn``: the loss, ``value_fn(params, **kwargs) -> scalar``. For a
      function that returns ``(loss, aux)``, pass
      :func:`optax_hillclimb.drop_aux` of it.
    * ``value``: optional loss at the current ``params``, used by the guard
      (required by ``decision="one_probe"``).
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
      scale_search, decision, slope_rtol,
  )  # fmt: skip
  searches = bool(scale_search)

  def init_fn(params: optax.Params) -> HillclimbState:
    # Only the previous direction (no_probe) depends on the parameters.
    previous_direction = (
      optax.tree.zeros_like(params) if decision == "no_probe" else ()
    )
    dtype = learning_rate_dtype()
    lr = jnp.asarray(learning_rate, dtype)
    return HillclimbState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=lr,
      streak=jnp.zeros([], jnp.int32),
      loss_up=jnp.asarray(jnp.inf, dtype),
      loss_down=jnp.asarray(jnp.inf, dtype),
      num_rejected=jnp.zeros([], jnp.int32),
      tie_ceiling=lr,
      previous_direction=previous_direction,
    )

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
    evaluates = decision != "no_probe" or searches
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
    if decision == "one_probe" and value is None:
      raise TypeError(
        'scale_by_hillclimb(decision="one_probe") needs value=, the loss at '
        "params: its one probe is compared with it. Call update(..., "
        "value=loss, grad=grads) with loss, grads = "
        "jax.value_and_grad(loss_fn)(params)."
      )
    if decision != "two_probes" and grad is None:
      raise TypeError(
        f"scale_by_hillclimb(decision={decision!r}) needs grad=, the "
        "gradient of the loss at params: its dot product with the direction "
        "decides. Call update(..., grad=grads), as for optax's line searches."
      )
    if evaluates:
      # A value_fn that takes a `grad` parameter still receives it.
      named = extra_args if grad is None else {"grad": grad, **extra_args}
      loss = _value_fn.bind_value_fn(value_fn, named)
    mode = _probe.resolve_probe_mode(probe)
    dtype = state.learning_rate.dtype

    def as_lr(x: jax.typing.ArrayLike) -> jax.Array:
      return jnp.asarray(x, dtype)

    def mean(x: jax.Array) -> jax.Array:
      """``x`` in the learning rate's dtype, averaged over ``axis_name``."""
      x = jnp.asarray(x).astype(dtype)
      return x if axis_name is None else lax.pmean(x, axis_name)

    def clip(lr: jax.Array) -> jax.Array:
      lr = jnp.maximum(lr, as_lr(min_learning_rate))
      if max_learning_rate is not None:
        lr = jnp.minimum(lr, as_lr(max_learning_rate))
      # Never inf: from there even the guard's back-off could not come down.
      return jnp.minimum(lr, jnp.finfo(dtype).max)

    def score(candidates: jax.Array, batch_size: int | None) -> jax.Array:
      losses = mean(
        _probe.probe_losses(
          loss, params, updates, candidates, mode, batch_size=batch_size
        )
      )
      return jnp.where(jnp.isfinite(losses), losses, jnp.inf)

    def rejects(best: jax.Array) -> jax.Array:
      """The guard: whether the better probe loss is unacceptable."""
      current = None if value is None else mean(value)
      return _moves.rejects(best, current, guard=guard, guard_rtol=guard_rtol)

    def settle(
      state: HillclimbState,
      new_lr: jax.Array,
      *,
      decided: jax.Array,
      reject: jax.Array,
      **fields: jax.Array,
    ) -> HillclimbState:
      """The state after a probe or search step that chose ``new_lr``."""
      return state._replace(
        learning_rate=new_lr,
        num_rejected=state.num_rejected + reject.astype(jnp.int32),
        # Only unequal losses are evidence for a learning rate that ties may
        # climb back to.
        tie_ceiling=jnp.where(
          decided, jnp.maximum(state.tie_ceiling, new_lr), state.tie_ceiling
        ),
        **fields,
      )

    def search_step(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
      lr0 = state.learning_rate
      candidates = clip(lr0 * as_lr(scale_search))
      losses = score(candidates, batch_size=2)
      chosen, decided = _moves.pick_scale(candidates, losses)
      # All equal: nothing to choose between, so lr0 stays.
      reject = rejects(losses[chosen])
      new_lr = jnp.where(decided, candidates[chosen], lr0)
      new_lr = clip(
        jnp.where(reject, jnp.min(candidates) * as_lr(backoff), new_lr)
      )
      new_state = settle(
        state,
        new_lr,
        decided=decided & ~reject,
        reject=reject,
        loss_up=losses[chosen],
        loss_down=losses[chosen],
      )
      return new_state, reject

    def relative_step(state: HillclimbState) -> jax.Array:
      """The relative step s of the next move, grown by the streak."""
      return _moves.relative_step(
        state.streak, lrlr, lrlr_growth, max_lrlr, dtype
      )

    def move(
      state: HillclimbState,
      *,
      go_up: jax.Array,
      tie: jax.Array,
      can_climb: jax.Array,
      reject: jax.Array,
      finite: jax.Array,
      no_evidence: jax.Array | None = None,
      **fields: jax.Array,
    ) -> tuple[HillclimbState, jax.Array]:
      """Moves the learning rate up (``go_up``) or down by one relative step.

      Args:
        state: the state before the decision.
        go_up: whether the evidence says the learning rate is too low.
        tie: whether the evidence cannot tell (equal finite losses).
        can_climb: whether a tie may raise the learning rate (a nonzero
          direction).
        reject: whether the guard rejects the step.
        finite: whether the evidence was finite (a decision on it counts for
          the tie ceiling).
        no_evidence: where there is nothing to decide from, the learning rate
          holds (``"no_probe"`` before any step).
        **fields: further fields of the new state.

      Returns:
        The new state, and ``reject``.
      """
      lr = state.learning_rate
      step = relative_step(state)
      up, down = lr * (1 + step), lr * (1 - step)
      new_lr = jnp.where(go_up, up, down)
      hold = jnp.zeros([], bool)
      if tie_break == "up":
        # A zero direction ties at every learning rate: climbing would never
        # end, so it lowers the learning rate as the reference rule does.
        climb = tie & can_climb
        tie_lr = jnp.maximum(lr, jnp.minimum(up, state.tie_ceiling))
        new_lr = jnp.where(climb, tie_lr, new_lr)
        hold = climb & (tie_lr == lr)
        go_up = go_up | (climb & ~hold)
      if no_evidence is not None:
        new_lr = jnp.where(no_evidence, lr, new_lr)
        hold = hold | no_evidence
        go_up = go_up & ~no_evidence
        tie = tie | no_evidence
      new_lr = clip(jnp.where(reject, lr * as_lr(backoff), new_lr))
      decided = ~tie & ~reject & finite

      # A rejected step lowers the learning rate, so it counts as a fall.
      streak = _moves.next_streak(state.streak, go_up & ~reject)
      new_state = settle(
        state,
        new_lr,
        decided=decided,
        reject=reject,
        streak=jnp.where(hold & ~reject, 0, streak).astype(jnp.int32),
        **fields,
      )
      return new_state, reject

    def two_probe_step(
      state: HillclimbState,
    ) -> tuple[HillclimbState, jax.Array]:
      lr, step = state.learning_rate, relative_step(state)
      candidates = jnp.stack([lr * (1 + step), lr * (1 - step)])
      loss_up, loss_down = score(candidates, batch_size=None)
      best = jnp.minimum(loss_up, loss_down)
      return move(
        state,
        go_up=loss_up < loss_down,
        tie=(loss_up == loss_down) & jnp.isfinite(loss_up),
        can_climb=_moves.is_nonzero(updates),
        reject=rejects(best),
        finite=jnp.isfinite(best),
        loss_up=loss_up,
        loss_down=loss_down,
      )

    def one_probe_step(
      state: HillclimbState,
    ) -> tuple[HillclimbState, jax.Array]:
      lr = state.learning_rate
      (f1,) = score(lr[None], batch_size=None)
      f0 = mean(value)
      slope = mean(_dot(grad, updates, dtype))  # f(w - a u) falls as a * slope
      # Armijo's test. With slope_rtol = 1/2: the parabola through f0, its
      # slope -slope at 0 and f1 at lr has its minimum beyond lr exactly when
      # the step achieved more than half of the decrease the slope predicts
      # (docs/rule.md derives it).
      sufficient = f0 - f1 > as_lr(slope_rtol) * slope * lr
      return move(
        state,
        go_up=(slope > 0) & sufficient,
        tie=(f1 == f0) & jnp.isfinite(f1),
        can_climb=_moves.is_nonzero(updates),
        reject=rejects(f1),
        finite=jnp.isfinite(f1) & jnp.isfinite(f0) & jnp.isfinite(slope),
        loss_up=f1,
        loss_down=f1,
      )

    def no_probe_step(
      state: HillclimbState,
    ) -> tuple[HillclimbState, jax.Array]:
      # The slope of the loss along the last step, at the point it reached:
      # still falling (positive) says the step was too short.
      slope = mean(_dot(grad, state.previous_direction, dtype))
      finite = jnp.isfinite(slope)
      reject = jnp.logical_and(guard, ~finite)
      current = jnp.asarray(jnp.inf, dtype)
      if value is not None:
        current = mean(value)
        # The loss of the last decision step came from another batch, so the
        # guard only catches a blow-up (by default, more than a doubling).
        previous = state.loss_down
        blown_up = jnp.isfinite(previous) & _moves.exceeds(
          current, previous, guard_rtol
        )
        reject = reject | jnp.logical_and(guard, blown_up)
        current = jnp.where(jnp.isfinite(current), current, jnp.inf)
      return move(
        state,
        go_up=slope > 0,
        tie=(slope == 0) & finite,
        can_climb=_moves.is_nonzero(grad),
        reject=reject,
        finite=finite,
        no_evidence=~_moves.is_nonzero(state.previous_direction),
        loss_up=current,
        loss_down=current,
      )

    decision_step = {
      "two_probes": two_probe_step,
      "one_probe": one_probe_step,
      "no_probe": no_probe_step,
    }[decision]

    def skip_step(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
      return state, jnp.zeros([], bool)

    def decide_or_skip(
      state: HillclimbState,
    ) -> tuple[HillclimbState, jax.Array]:
      if _validation.is_concrete_number(every_k) and every_k == 1:
        return decision_step(state)
      return lax.cond(
        state.count % every_k == 0, decision_step, skip_step, state
      )

    if searches:
      new_state, reject = lax.cond(
        state.count == 0, search_step, decide_or_skip, state
      )
    else:
      new_state, reject = decide_or_skip(state)
    lr = new_state.learning_rate
    if decision == "no_probe":
      # The direction of the step taken: none on a rejected step.
      new_state = new_state._replace(
        previous_direction=jax.tree.map(
          lambda u, p: jnp.where(reject, jnp.zeros_like(p), u.astype(p.dtype)),
          updates,
          state.previous_direction,
        )
      )
    # jnp.where, not a zero scale: 0 * nan is nan, and a rejected step must
    # leave the parameters exactly where they are.
    updates = jax.tree.map(
      lambda u: jnp.where(reject, jnp.zeros_like(u), (-lr * u).astype(u.dtype)),
      updates,
    )
    new_state = new_state._replace(count=numerics.safe_increment(state.count))
    return updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def get_learning_rate(state: optax.OptState) -> jax.Array:
  """Returns the current learning rate held in a (possibly nested) state.

  Works for :func:`scale_by_hillclimb`, the aliases and any chain or wrapper
  that contains exactly one :class:`HillclimbState`, including
  :func:`optax.inject_hyperparams`, whose state also holds the (starting)
  ``learning_rate`` hyperparameter and so confuses
  ``optax.tree.get(state, "learning_rate")``.

  Args:
    state: an optimizer state.

  Returns:
    The ``learning_rate`` field of the :class:`HillclimbState` in ``state``, as
    a JAX array (also for ``nnx.Optimizer.opt_state``, whose leaves Flax
    wraps).

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> opt = optax_hillclimb.hillclimb(learning_rate=0.05)
    >>> state = opt.init(jnp.zeros(3))
    >>> print(optax_hillclimb.get_learning_rate(state))
    0.05
  """
  found = [
    node
    for node in jax.tree.leaves(
      state, is_leaf=lambda x: isinstance(x, HillclimbState)
    )
    if isinstance(node, HillclimbState)
  ]
  if len(found) != 1:
    raise ValueError(
      "get_learning_rate expects exactly one HillclimbState in the optimizer"
      f" state, found {len(found)}."
    )
  learning_rate = found[0].learning_rate
  if not isinstance(learning_rate, jax.Array):
    # Wrappers such as Flax NNX's OptArray hold the array; unwrap it.
    learning_rate = jnp.asarray(learning_rate)
  return learning_rate
