"""Hill climbing on the learning rate: the ``scale_by_hillclimb`` transform.

One update reads top to bottom in ``_update``: what the update received, the
loss the guard watches at every step, whether this step decides, the scale
search (first update) or the decision, the guard's verdict, and the step.
Below it, in this order: the decisions, the move, the scale search, the
guard, and the run's length. ``climb`` uses the move, the scale search and
the guard from here.
"""

from collections.abc import Callable, Mapping, Sequence
import functools
import numbers
import textwrap
from typing import Any, Literal, NamedTuple

import jax
from jax import lax
import jax.numpy as jnp
import optax

from optax_hillclimb import _validation
from optax_hillclimb import _value_fn

Decision = Literal["stretch", "two_probes"]
DECISIONS = ("stretch", "two_probes")
TieBreak = Literal["down", "up"]
TIE_BREAKS = ("down", "up")

# Multiples of the starting learning rate scored at the first update: six
# decades on each side in quarter decades, so that any starting guess from
# 1e-6 to 1e2 brackets the best single step for learning rates between 1e-4
# and 1 (SGD's and Adam's usual range). The rates scored are rounded to
# quarter decades (on_quarter_decades): every starting guess then scores the
# same rates, and lr0 no longer decides where the run starts.
SCALE_SEARCH = tuple(10.0 ** (k / 4) for k in range(-24, 25))
# The longest first step, as a fraction of the parameters' norm. One batch's
# loss along the update cannot see a longer step kill ReLU units: on a
# regression with targets in the hundreds the best step on the batch is 30
# times this long and leaves half the hidden units dead, while SGD's best
# rate moves the parameters by 5%; on the digits classifier the picks stay
# below it.
MAX_RELATIVE_STEP = 0.2
# The guard multiplies the learning rate by this on a rejected step or a
# spike.
BACKOFF = 0.5
# The relative step grows along a streak up to this.
MAX_LRLR = 0.5
# Bounds |streak| so that the counter cannot overflow on very long runs; the
# step it sets has long reached MAX_LRLR by then.
MAX_STREAK = 1 << 20
# The guard's running average forgets this much per loss: about the last ten
# steps count.
AVERAGE_DECAY = 0.9
# The stretch's default centre at the start of a told run (a run not told
# its length is centred where a told one is at its midpoint, half this), and
# the share of a told run over which the step falls to zero. Not told, at
# the window's end (0) the rule anneals from the first decisions on: on the
# language model (1000 steps, two seeds, windows of 128) it ended at 2.851
# bits/byte against Prodigy's 2.841; centred at 1/8 at 2.807, at 1/4 at
# 2.829.
EARLY_CENTER = 0.25
SETTLE_FRACTION = 0.2
# The stretch's windows grow with the run, so that the number of decisions,
# each of which leans towards shorter steps once noise outweighs progress,
# does not grow with its length. Told it, a window is at least this share
# of the run; not told, the largest every_k * 2^j that the steps so far
# hold ANYTIME_WINDOWS times over. On the language model over 4000 steps,
# windows of 128 took the climbed rate from 9.7e-3 to 5e-5 and ended 4%
# behind a tuned AdamW-cosine; windows of 512, 0.4% ahead of it. Not told
# the run's length, windows of 128 ended 3.3% behind Prodigy; windows that
# the steps so far hold eight or four times over 3.2% and 0.9% behind, twice
# over 1.6% ahead (at 1000 steps 0.2% ahead, against 1.2% with windows of
# 128).
WINDOWS_PER_RUN = 8
ANYTIME_WINDOWS = 2


# The Args text of the climb's settings, which the aliases share.
CLIMB_ARGS = """\
    total_steps: the run's length in updates, if the training loop knows
      it: early decisions then favour progress more, later ones less, and
      the last fifth of the steps shortens to zero (past it, the steps are
      zero; a run that goes on must be told its new length). Without it,
      the decisions judge as a told run's do at its midpoint, throughout.
    decision: ``"stretch"`` (judge the steps since the last decision on the
      current batch, which shaped none of them) or ``"two_probes"`` (the
      reference rule: two candidate rates on the step's own batch).
    every_k: decide every ``every_k`` steps (with ``"stretch"``, also at
      steps 1, 2, 4, ... below it). The stretch's windows grow with the
      run: told its length, to an eighth of it; not told, to the largest
      ``every_k`` times a power of two that the steps so far hold twice
      over.
    lrlr: the relative step :math:`s` of the learning rate, in (0, 1).
    scale_search: multiples of ``learning_rate`` whose rates, rounded to
      quarter decades, are scored at the first update; ``None`` starts from
      ``learning_rate``.
    max_learning_rate: optional upper bound of the learning rate.
    probe: ``"vmap"`` (candidates in one batched program), ``"sequential"``
      (one after another) or ``"auto"`` (sequential on CPU, where vmapping
      different weights is slower, vmap elsewhere).
    axis_name: the device axis under ``jax.pmap`` or ``shard_map``; losses
      and ``value`` are averaged over it, so replicas keep the same rate.
    judge_steps: for ``decision="stretch"``, how many steps, ending at a
      decision, score its probes (each on its own batch); the decision
      moves toward the lower sum. One batch decides a close comparison by
      its noise.
"""


def with_climb_args(fn: Callable[..., Any]) -> Callable[..., Any]:
  """Writes :data:`CLIMB_ARGS` into ``fn``'s docstring, at its marker line.

  Indented as the marker is (Python 3.13 strips docstrings' indentation).
  """
  lines = fn.__doc__.splitlines(keepends=True)
  for i, line in enumerate(lines):
    if line.strip() == "<the climb's arguments>":
      indent = line[: len(line) - len(line.lstrip())]
      lines[i] = textwrap.indent(textwrap.dedent(CLIMB_ARGS), indent)
      fn.__doc__ = "".join(lines)
      return fn
  raise ValueError(f"{fn.__name__}'s docstring has no climb arguments marker")


class HillclimbState(NamedTuple):
  r"""State of :func:`scale_by_hillclimb`.

  Attributes:
    count: number of updates so far (int32).
    learning_rate: the climbed learning rate :math:`\eta` (float32, or
      float64 when x64 is enabled, whatever the dtype of the parameters).
      With ``total_steps``, the step taken in the last fifth of the run is
      shorter: ``settling`` says by how much.
    streak: signed number of consecutive learning-rate moves in the same
      direction (int32): ``+n`` after ``n`` rises in a row, ``-n`` after ``n``
      falls, ``0`` before the first decision and after a hold. It sets the
      relative step of the next decision when ``lrlr_growth > 1``.
    loss_up: loss at the larger candidate at the last decision (after the
      scale search: the loss at the learning rate it chose; ``inf`` before
      any, and for non-finite losses).
    loss_down: loss at the smaller candidate at the last decision.
    num_rejected: number of steps rejected by the guard so far (int32).
    tie_ceiling: the highest learning rate that unequal losses have chosen
      so far (the starting learning rate before any): with
      ``tie_break="up"``, ties never raise the learning rate above it.
    loss_average: the guard's running average of recent losses (``inf``
      before any): of the watched loss at every step (``value``, or for
      ``"stretch"`` without it, the loss after the step about to be taken),
      else of the loss at the candidate each decision chose.
    settling: the factor on the last step taken: one, or with
      ``total_steps`` :math:`\min(1, 5 (1 - t/T))`, zero from step
      :math:`T` on. The rate applied is ``learning_rate * settling``, which
      :func:`~optax_hillclimb.get_learning_rate` reports.
    judged_up: with ``judge_steps > 1``, the sum of the losses at the larger
      candidate over the steps judged since the last decision (zero after
      a decision, and with ``judge_steps=1``).
    judged_down: the same at the smaller candidate.
    displacement: with ``decision="stretch"``, :math:`D`, the sum of the
      steps :math:`\eta u` taken since the last decision (rejected steps add
      nothing), a tree like the updates; ``()`` for ``"two_probes"``.
  """

  count: jax.Array
  learning_rate: jax.Array
  streak: jax.Array
  loss_up: jax.Array
  loss_down: jax.Array
  num_rejected: jax.Array
  tie_ceiling: jax.Array
  loss_average: jax.Array
  settling: jax.Array
  judged_up: jax.Array
  judged_down: jax.Array
  displacement: optax.Updates = ()


class _Config(NamedTuple):
  """The hyperparameters of one :func:`scale_by_hillclimb`, as given."""

  learning_rate: jax.typing.ArrayLike
  total_steps: jax.typing.ArrayLike | None
  decision: Decision
  every_k: jax.typing.ArrayLike
  lrlr: jax.typing.ArrayLike
  lrlr_growth: jax.typing.ArrayLike
  tie_break: TieBreak
  guard: bool
  guard_rtol: jax.typing.ArrayLike
  scale_search: Sequence[float] | None
  min_learning_rate: jax.typing.ArrayLike
  max_learning_rate: jax.typing.ArrayLike | None
  probe: _value_fn.ProbeMode
  axis_name: str | None
  center: jax.typing.ArrayLike | None
  judge_steps: int


@with_climb_args
def scale_by_hillclimb(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  total_steps: jax.typing.ArrayLike | None = None,
  decision: Decision = "stretch",
  every_k: jax.typing.ArrayLike = 128,
  lrlr: jax.typing.ArrayLike = 0.1,
  scale_search: Sequence[float] | None = SCALE_SEARCH,
  max_learning_rate: jax.typing.ArrayLike | None = None,
  probe: _value_fn.ProbeMode = "auto",
  axis_name: str | None = None,
  judge_steps: int = 1,
  lrlr_growth: jax.typing.ArrayLike = 1.5,
  tie_break: TieBreak = "up",
  guard: bool = True,
  guard_rtol: jax.typing.ArrayLike = 1.0,
  min_learning_rate: jax.typing.ArrayLike = 1e-9,
  center: jax.typing.ArrayLike | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Scales updates by a learning rate that tunes itself by hill climbing.

  Plays the role of :func:`optax.scale_by_learning_rate`: given an incoming
  direction :math:`u` (a gradient, or the output of :func:`optax.scale_by_adam`
  and friends), it returns :math:`-\eta u`, and from time to time it judges
  :math:`\eta` on the loss ``value_fn`` passed to ``update``, scored on the
  current batch (the one the gradient was taken on).

  By default (``decision="stretch"``) it judges the steps already taken, on
  data that shaped none of them. The state keeps :math:`D`, the sum of the
  steps :math:`\eta u` taken since the last decision; a decision scores

  .. math::
    f_{\uparrow} = f\big(w + (\theta - s) D\big), \qquad
    f_{\downarrow} = f\big(w + (\theta + s) D\big)

  on the current batch: had those steps been :math:`1 \pm s` times as long
  (to first order in :math:`s`), would the loss be lower? It moves the
  learning rate toward the better one,

  .. math::
    \eta \leftarrow \operatorname{clip}\Big(
      \begin{cases} \eta (1 + s) & \text{if } f_{\uparrow} < f_{\downarrow} \\
                    \eta (1 - s) & \text{otherwise} \end{cases},\
      \eta_{\min}, \eta_{\max}\Big).

  Decisions come at steps 1, 2, 4, 8, ... (windows that double) until
  the window :math:`k`, then every :math:`k` steps, and at once when
  ``value`` spikes. :math:`k` grows with the run, so that a longer run does
  not make more of the decisions that lean towards shorter steps (below):
  it is the largest ``every_k`` :math:`\times 2^j` (:math:`j \ge 0`) that
  the steps so far hold twice over, or, told the run's length
  :math:`T` (``total_steps``), :math:`\max(` ``every_k`` :math:`, T/8)`
  throughout. :math:`\theta` centres the probes back along the window
  (once noise outweighs progress, a comparison at the window's end favours
  shorter steps whatever the rate): :math:`\theta = \theta_0 / 2`
  throughout (:math:`\theta_0` = ``center``, :math:`\frac14` by default),
  unless :math:`T` is given; then :math:`\theta = \theta_0 (1 - t/T)`,
  favouring progress early and reaching the window's end at :math:`T`, and
  the step taken in the last fifth of the run is
  :math:`\eta \min(1, 5 (1 - t/T))\, u`, down to zero at :math:`T`. With
  ``judge_steps`` :math:`= m > 1`, each of the :math:`m - 1` steps before a
  decision scores the same two probes along the steps taken so far in the
  window, on its own batch, and the decision compares the sums of the
  :math:`m` losses at each candidate.

  ``decision="two_probes"`` is the blog post's reference rule: at a decision
  it scores :math:`f(w - \eta (1 \pm s) u)` on the batch that made :math:`u`.

  The relative step is :math:`s =` ``lrlr``, grown by ``lrlr_growth`` over
  consecutive moves in the same direction (up to 0.5), back to ``lrlr`` as
  soon as moves alternate. A non-finite loss counts as :math:`+\infty`, so
  ties and two non-finite losses lower the rate; with ``tie_break="up"``
  equal finite losses raise it instead, but never above the highest rate
  unequal losses have chosen (``tie_ceiling``). The first update runs a
  scale search (unless ``scale_search`` is ``None``): it scores
  :math:`f(w - q(c\,\eta_0) u)` for every multiple :math:`c` in
  ``scale_search``, :math:`q` rounding to quarter decades (1, 1.78, 3.16,
  5.62 times :math:`10^k`, so that every :math:`\eta_0` scores the same
  rates), and starts from the smallest rate whose loss achieves at least
  half of the best decrease, among steps no longer than a fifth of the
  parameters' norm.

  The guard (``guard=True``) watches every step. It rejects a decision's
  step when the loss at the chosen candidate is non-finite or exceeds
  :math:`r (1 + \rho)` for :math:`r > 0` (:math:`\rho` = ``guard_rtol``;
  :math:`r + \rho |r|` in general), where :math:`r` is ``value`` when given,
  else the running average :math:`\bar f` of recent losses: the update is
  then zero and :math:`\eta` halves. On every step, a watched loss (``value``,
  or for ``"stretch"`` without it the loss after the step about to be taken)
  above :math:`\bar f + \rho |\bar f|` or non-finite halves :math:`\eta`
  (for ``"stretch"`` with ``value``: only if the step about to be taken
  would raise that batch's loss further), and a non-finite one is not
  stepped on. ``guard=False, lrlr_growth=1, tie_break="down",
  scale_search=None`` with ``decision="two_probes", every_k=1, lrlr=0.01``
  is the reference rule exactly.

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    <the climb's arguments>
    lrlr_growth: growth (at least 1) of the relative step over consecutive
      moves in the same direction; ``1`` keeps it constant.
    tie_break: ``"up"`` or ``"down"`` (the reference rule): which way equal
      losses move the learning rate.
    guard: whether the guard watches the steps.
    guard_rtol: how far above its reference (relative to its size) a loss
      may be before the guard acts.
    min_learning_rate: lower bound of the climb (only the guard goes below
      it).
    center: :math:`\theta_0`, in [0, 1), for ``decision="stretch"``: how
      far back along the window (as a share of it) a told run's first
      decisions are centred; a larger one holds a higher rate. ``None``:
      :math:`\frac14`; :func:`hillclimb_muon` uses :math:`\frac18`.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` is
    ``update(updates, state, params, *, value_fn, value=None,
    **extra_args)``: ``value_fn(params, **kwargs)`` returns the loss on the
    current batch; the extra keyword arguments whose names are parameters
    of ``value_fn`` are passed on to it, the others are ignored; ``value``,
    the loss at ``params`` (a scalar), is optional and sharpens the guard.
    Its state is a :class:`HillclimbState`.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> def loss(params, target):
    ...   return jnp.sum((params - target) ** 2)
    >>> target = jnp.array([1.0, -2.0])
    >>> solver = optax_hillclimb.scale_by_hillclimb(1e-4, total_steps=200)
    >>> params = jnp.zeros(2)
    >>> state = solver.init(params)
    >>> @jax.jit
    ... def step(params, state):
    ...   grads = jax.grad(loss)(params, target)
    ...   updates, state = solver.update(
    ...       grads, state, params, value_fn=loss, target=target
    ...   )
    ...   return optax.apply_updates(params, updates), state
    >>> for _ in range(200):
    ...   params, state = step(params, state)
    >>> print(f"loss {loss(params, target):.1e}")
    loss 0.0e+00

  References:
    Baydin et al., `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018 (a gradient-based cousin of
    this rule)
  """
  config = _Config(
    learning_rate, total_steps, decision, every_k, lrlr, lrlr_growth,
    tie_break, guard, guard_rtol, scale_search, min_learning_rate,
    max_learning_rate, probe, axis_name, center, judge_steps,
  )  # fmt: skip
  _validation.check_hillclimb(config)

  def init_fn(params: optax.Params) -> HillclimbState:
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
      loss_average=jnp.asarray(jnp.inf, dtype),
      settling=jnp.ones([], dtype),
      judged_up=jnp.zeros([], dtype),
      judged_down=jnp.zeros([], dtype),
      displacement=(
        optax.tree.zeros_like(params) if decision == "stretch" else ()
      ),
    )

  def update_fn(
    updates: optax.Updates,
    state: HillclimbState,
    params: optax.Params | None = None,
    *,
    value_fn: Callable[..., jax.typing.ArrayLike] | None = None,
    value: jax.typing.ArrayLike | None = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, HillclimbState]:
    return _update(config, updates, state, params, value_fn, value, extra_args)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def learning_rate_dtype() -> jnp.dtype:
  """float64 when x64 is enabled, else float32.

  The learning rate is kept in this dtype whatever the parameters' dtype: in
  bfloat16, ``lr * 1.01`` rounds back to ``lr``.
  """
  return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _update(
  config: _Config,
  updates: optax.Updates,
  state: HillclimbState,
  params: optax.Params | None,
  value_fn: Callable[..., jax.typing.ArrayLike] | None,
  value: jax.typing.ArrayLike | None,
  extra_args: Mapping[str, Any],
) -> tuple[optax.Updates, HillclimbState]:
  """``update_fn`` of :func:`scale_by_hillclimb` with ``config``."""
  lr = state.learning_rate
  score, value = _value_fn.scorer(
    "scale_by_hillclimb", value_fn, extra_args, params, value,
    probe=config.probe, axis_name=config.axis_name, dtype=lr.dtype,
  )  # fmt: skip
  stretch = config.decision == "stretch"

  # What the guard watches at every step. The stretch's probes come rarely
  # and do not score the step taken: without value, the guard scores that
  # step, so that a blow-up is never stepped into.
  watched = value
  if watched is None and stretch:
    watched = score(lr[None], along=updates)[0]
  watch = watch_loss(config, state.loss_average, watched)

  # Whether this step decides: as the run's phase says, and for the stretch
  # at once when the watched loss spikes.
  phase = run_phase(config, state.count, lr.dtype)
  decides = phase.decides
  if stretch and watch is not None:
    decides |= watch.spike

  # The first update runs the scale search, a deciding one the decision.
  reference = state.loss_average if value is None else value
  decide = functools.partial(
    _decide, config, score, updates, reference, phase.center
  )
  decide = _only_when_deciding(config, state.count, lr.dtype, decides, decide)
  if config.scale_search:
    search = functools.partial(
      _search_step, config, score, updates, params, reference
    )
    new_state, rejected = lax.cond(state.count == 0, search, decide, state)
  else:
    new_state, rejected = decide(state)

  # The guard on every step: a spike backs the rate off (for the stretch
  # with value, only if the step about to be taken would raise this batch's
  # loss further), and a non-finite loss is not stepped on.
  backs_off = None if watch is None else watch.spike
  if watch is not None and stretch and value is not None:
    backs_off = watch.reject | _worsens(score, updates, lr, value, watch)
  new_state, rejected = _guard_every_step(
    config, state, new_state, rejected, decides, watch, backs_off,
    first_is_searched=bool(config.scale_search) and value is None,
  )  # fmt: skip

  lr = new_state.learning_rate
  if stretch:
    displacement = jax.tree.map(
      lambda d, u: (
        jnp.where(decides, 0, d)
        + jnp.where(rejected, 0, lr * u.astype(d.dtype))
      ).astype(d.dtype),
      state.displacement,
      updates,
    )
    new_state = new_state._replace(displacement=displacement)
  new_state = new_state._replace(settling=phase.settle)
  lr = lr * phase.settle
  # jnp.where, not a zero scale: 0 * nan is nan, and a rejected step must
  # leave the parameters exactly where they are.
  updates = jax.tree.map(
    lambda u: jnp.where(rejected, jnp.zeros_like(u), (-lr * u).astype(u.dtype)),
    updates,
  )
  return updates, new_state._replace(count=optax.safe_increment(state.count))


def _only_when_deciding(
  config: _Config,
  count: jax.Array,
  dtype: Any,
  decides: jax.Array,
  decide: Callable[[HillclimbState], tuple[HillclimbState, jax.Array]],
) -> Callable[[HillclimbState], tuple[HillclimbState, jax.Array]]:
  """``decide`` where the step decides, else a hold (or a judging step).

  Only these steps evaluate ``value_fn``: the rest hold through
  ``lax.cond``. With ``judge_steps``, the steps just before a decision score
  its probes too, each on its own batch: one batch decides a close
  comparison by its noise. ``two_probes`` deciding every step needs no
  branch.
  """
  stretch = config.decision == "stretch"
  every_step = isinstance(config.every_k, numbers.Real) and config.every_k == 1
  one_judge = (
    isinstance(config.judge_steps, numbers.Real) and config.judge_steps == 1
  )
  if stretch and not one_judge:

    def decides_ahead(ahead, soon):
      return soon | run_phase(config, count + ahead, dtype).decides

    last = jnp.asarray(config.judge_steps, count.dtype)
    soon = lax.fori_loop(1, last, decides_ahead, jnp.bool_(False))
    branch = jnp.where(decides, 1, jnp.where(soon, 2, 0))
    judge = functools.partial(decide, judging=True)
    return functools.partial(lax.switch, branch, [_hold, decide, judge])
  if stretch or not every_step:
    return functools.partial(lax.cond, decides, decide, _hold)
  return decide


# The decisions ---------------------------------------------------------------


def _decide(
  config: _Config,
  score: _value_fn.Score,
  updates: optax.Updates,
  reference: jax.Array,
  center: jax.Array,
  state: HillclimbState,
  *,
  judging: bool = False,
) -> tuple[HillclimbState, jax.Array]:
  """A decision: two probes, the guard's verdict, the move.

  Returns the new state and whether the guard rejects the step. ``judging``:
  a step just before a decision, whose probes only add to the decision's.
  """
  lr = state.learning_rate
  step = relative_step(state.streak, config.lrlr, config.lrlr_growth, lr.dtype)
  if config.decision == "two_probes":
    # The reference rule: two candidate rates along the step about to be
    # taken, on the batch that made it.
    direction = updates
    candidates = jnp.stack([lr * (1 + step), lr * (1 - step)])
  else:
    # The stretch: the steps since the last decision, 1 +/- s times as long,
    # centred theta back along them, on a batch that shaped none of them.
    direction = state.displacement
    candidates = jnp.stack([step - center, -step - center])
  loss_up, loss_down = score(candidates, along=direction)
  # With judge_steps, summed with those of the steps judged before.
  judged_up = state.judged_up + loss_up
  judged_down = state.judged_down + loss_down
  if judging:
    judged = state._replace(judged_up=judged_up, judged_down=judged_down)
    return judged, jnp.zeros([], bool)
  reject = guard_rejects(config, jnp.minimum(loss_up, loss_down), reference)
  nonzero = is_nonzero(direction)
  moved = move(
    lr,
    up=lr * (1 + step),
    down=lr * (1 - step),
    loss_up=judged_up,
    loss_down=judged_down,
    can_climb=nonzero,
    # With nothing to stretch (no step yet, or a rejected one) the stretch
    # has no evidence, and the rate holds.
    no_evidence=~nonzero if config.decision == "stretch" else jnp.bool_(False),
    reject=reject,
    streak=state.streak,
    tie_ceiling=state.tie_ceiling,
    rejected_value=lr * jnp.asarray(BACKOFF, lr.dtype),
    # min_learning_rate bounds the climb; only the guard goes below it, so
    # that a state where every step is rejected cannot last: the step
    # shrinks until it is acceptable.
    lower=jnp.where(
      reject,
      jnp.finfo(lr.dtype).tiny,
      jnp.minimum(jnp.asarray(config.min_learning_rate, lr.dtype), lr),
    ),
    upper=config.max_learning_rate,
    tie_break=config.tie_break,
  )
  new_state = state._replace(
    learning_rate=moved.value,
    streak=moved.streak,
    tie_ceiling=moved.tie_ceiling,
    num_rejected=state.num_rejected + reject.astype(jnp.int32),
    loss_up=loss_up,
    loss_down=loss_down,
    judged_up=jnp.zeros_like(state.judged_up),
    judged_down=jnp.zeros_like(state.judged_down),
  )
  return new_state, reject


def _hold(state: HillclimbState) -> tuple[HillclimbState, jax.Array]:
  """A step that does not decide: the rate holds, nothing is rejected."""
  return state, jnp.zeros([], bool)


# The move, shared with ``climb`` ---------------------------------------------


def relative_step(
  streak: jax.Array,
  lrlr: jax.typing.ArrayLike,
  lrlr_growth: jax.typing.ArrayLike,
  dtype: jnp.dtype,
) -> jax.Array:
  """``min(lrlr * lrlr_growth ** max(|streak| - 1, 0), max(MAX_LRLR, lrlr))``.

  The relative step of the next move, grown along a streak of moves in the
  same direction (``streak`` may hold one per climbed value).
  """
  base = jnp.asarray(lrlr, dtype)
  length = jnp.maximum(jnp.abs(streak) - 1, 0)
  return jnp.minimum(
    base * jnp.asarray(lrlr_growth, dtype) ** length,
    jnp.maximum(jnp.asarray(MAX_LRLR, dtype), base),
  )


def next_streak(streak: jax.Array, rising: jax.Array) -> jax.Array:
  """The streak after a move up (``rising``) or down, as int32."""
  same_way = jnp.where(rising, streak > 0, streak < 0)
  length = jnp.where(same_way, jnp.minimum(jnp.abs(streak) + 1, MAX_STREAK), 1)
  return jnp.where(rising, length, -length).astype(jnp.int32)


def is_nonzero(tree: optax.Updates) -> jax.Array:
  """Whether any entry of ``tree`` is nonzero (``False`` for no leaves)."""
  return jax.tree.reduce(
    lambda any_so_far, leaf: any_so_far | jnp.any(leaf != 0),
    tree,
    jnp.bool_(False),
  )


def clip(
  value: jax.Array,
  lower: jax.typing.ArrayLike,
  upper: jax.typing.ArrayLike | None,
) -> jax.Array:
  """``value`` within ``[lower, upper]`` (``None``: no upper bound), never inf.

  From inf even the guard's back-off could not come down.
  """
  value = jnp.maximum(value, jnp.asarray(lower, value.dtype))
  if upper is not None:
    value = jnp.minimum(value, jnp.asarray(upper, value.dtype))
  return jnp.minimum(value, jnp.finfo(value.dtype).max)


class Moved(NamedTuple):
  """A value after a move: the value, its streak and its tie ceiling."""

  value: jax.Array
  streak: jax.Array
  tie_ceiling: jax.Array


def move(
  value: jax.Array,
  *,
  up: jax.Array,
  down: jax.Array,
  loss_up: jax.Array,
  loss_down: jax.Array,
  can_climb: jax.Array,
  no_evidence: jax.Array,
  reject: jax.Array,
  streak: jax.Array,
  tie_ceiling: jax.Array,
  rejected_value: jax.Array,
  lower: jax.typing.ArrayLike,
  upper: jax.typing.ArrayLike | None,
  tie_break: TieBreak,
  ties_hold: jax.typing.ArrayLike = False,
) -> Moved:
  """Moves ``value`` to ``up`` or ``down``, toward the lower loss.

  Equal finite losses tie: with ``tie_break="up"`` a tie climbs toward
  ``tie_ceiling`` (and holds there) where the direction is nonzero
  (``can_climb``; a zero direction ties at every value, so it moves down as
  the reference rule does), else it moves down; ``ties_hold`` holds it
  instead. ``no_evidence`` holds the value. A rejected step takes
  ``rejected_value`` and counts as a fall; a hold resets the streak. Only
  unequal finite losses raise the tie ceiling.
  """
  tie = (loss_up == loss_down) & jnp.isfinite(loss_up)
  go_up = (loss_up < loss_down) & ~no_evidence
  hold = no_evidence | (tie & jnp.asarray(ties_hold, bool))
  new = jnp.where(go_up, up, down)
  if tie_break == "up":
    climbs = tie & can_climb & ~hold
    tie_value = jnp.maximum(value, jnp.minimum(up, tie_ceiling))
    new = jnp.where(climbs, tie_value, new)
    hold = hold | (climbs & (tie_value == value))
    go_up = go_up | (climbs & ~hold)
  new = jnp.where(hold, value, new)
  new = clip(jnp.where(reject, rejected_value, new), lower, upper)
  decided = ~(tie | no_evidence) & ~reject
  decided &= jnp.isfinite(jnp.minimum(loss_up, loss_down))
  new_streak = next_streak(streak, go_up & ~reject)
  return Moved(
    value=new,
    streak=jnp.where(hold & ~reject, 0, new_streak).astype(jnp.int32),
    tie_ceiling=jnp.where(decided, jnp.maximum(tie_ceiling, new), tie_ceiling),
  )


# The scale search, shared with ``climb`` -------------------------------------


def _search_step(
  config: _Config,
  score: _value_fn.Score,
  updates: optax.Updates,
  params: optax.Params,
  reference: jax.Array,
  state: HillclimbState,
) -> tuple[HillclimbState, jax.Array]:
  """The first update: the scale search picks the starting learning rate."""
  lr0 = state.learning_rate
  bounds = config.min_learning_rate, config.max_learning_rate
  candidates = clip(
    on_quarter_decades(lr0 * jnp.asarray(config.scale_search, lr0.dtype)),
    *bounds,
  )
  searched = search(
    config,
    lr0,
    candidates,
    score(candidates, along=updates, batch_size=2),
    reference=reference,
    bounds=bounds,
    # Only their ratio counts, so averaging over devices is harmless.
    step_norm=norm(updates, config.axis_name, lr0.dtype),
    params_norm=norm(params, config.axis_name, lr0.dtype),
  )
  new_state = state._replace(
    learning_rate=searched.learning_rate,
    num_rejected=state.num_rejected + searched.reject.astype(jnp.int32),
    # The search scored every larger rate and chose against it: ties may
    # climb back to its pick, not to the starting guess.
    tie_ceiling=jnp.where(
      searched.decided, searched.learning_rate, state.tie_ceiling
    ),
    loss_up=searched.loss,
    loss_down=searched.loss,
  )
  return new_state, searched.reject


def on_quarter_decades(rates: jax.Array) -> jax.Array:
  """``rates`` rounded to quarter decades: 1, 1.78, 3.16 or 5.62 times 10^k.

  Starting rates that differ only in their mantissa (3e-4 and 2e-5) then
  score the same rates at the first update, and where the same one wins,
  make the same run.
  """
  quarters = jnp.round(4 * jnp.log10(rates))
  return jnp.power(jnp.asarray(10, rates.dtype), quarters / 4)


def norm(
  tree: optax.Updates, axis_name: str | None, dtype: jnp.dtype
) -> jax.Array:
  """The norm of ``tree`` in ``dtype``, its square averaged over devices."""
  squares = jax.tree.reduce(
    lambda total, x: total + jnp.sum(jnp.square(x.astype(dtype))),
    tree,
    jnp.zeros([], dtype),
  )
  if axis_name is not None:
    squares = lax.pmean(squares, axis_name)
  return jnp.sqrt(squares)


class Searched(NamedTuple):
  """The outcome of a scale search.

  Attributes:
    learning_rate: the learning rate to continue from (clipped).
    reject: whether the guard rejected the chosen step.
    decided: whether unequal losses chose it and the guard let it pass.
    loss: the chosen candidate's loss.
  """

  learning_rate: jax.Array
  reject: jax.Array
  decided: jax.Array
  loss: jax.Array


def search(
  config: Any,
  lr0: jax.Array,
  candidates: jax.Array,
  losses: jax.Array,
  *,
  reference: jax.Array,
  bounds: tuple[jax.typing.ArrayLike, jax.typing.ArrayLike | None],
  step_norm: jax.Array,
  params_norm: jax.Array,
) -> Searched:
  """Chooses the starting learning rate from scored candidates.

  Steps longer than ``MAX_RELATIVE_STEP`` of the parameters' norm are set
  aside (:func:`bound_steps`), then :func:`pick_scale` chooses; when every
  loss within the bound is equal, ``lr0`` stays. The guard (``config.guard``,
  ``config.guard_rtol``) judges the chosen loss against ``reference``; a
  rejected search continues from the smallest candidate times ``BACKOFF``.
  The result is clipped to ``bounds``.
  """
  scored = bound_steps(
    candidates, losses, step_norm, params_norm, MAX_RELATIVE_STEP
  )
  chosen, decided = pick_scale(candidates, scored)
  # Candidates the bound set aside do not make the losses differ: where
  # every step within it scores the same, there is nothing to choose.
  set_aside = jnp.isinf(scored) & jnp.isfinite(losses)
  best = jnp.min(scored)
  decided &= jnp.any(jnp.where(set_aside, best, scored) != best)
  loss = losses[chosen]
  reject = guard_rejects(config, loss, reference)
  learning_rate = jnp.where(decided, candidates[chosen], lr0)
  backed_off = jnp.min(candidates) * jnp.asarray(BACKOFF, lr0.dtype)
  return Searched(
    learning_rate=clip(jnp.where(reject, backed_off, learning_rate), *bounds),
    reject=reject,
    decided=decided & ~reject,
    loss=loss,
  )


def bound_steps(
  candidates: jax.Array,
  losses: jax.Array,
  step_norm: jax.typing.ArrayLike,
  params_norm: jax.typing.ArrayLike,
  max_relative_step: jax.typing.ArrayLike,
) -> jax.Array:
  r"""The losses, ``inf`` for candidates whose step is too long.

  A candidate :math:`c` is too long when :math:`c \|u\| > \rho \|w\|`
  (:math:`\rho` = ``max_relative_step``); the smallest candidate always
  stays (a step must be possible), and parameters that are all zero bound
  nothing (they have no scale to keep).
  """
  dtype = candidates.dtype
  step_norm = jnp.asarray(step_norm, dtype)
  params_norm = jnp.asarray(params_norm, dtype)
  too_long = candidates * step_norm > (
    jnp.asarray(max_relative_step, dtype) * params_norm
  )
  bounded = too_long & (params_norm > 0) & (candidates > jnp.min(candidates))
  return jnp.where(bounded, jnp.inf, losses)


def pick_scale(
  candidates: jax.Array, losses: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """The smallest candidate with at least half of the best decrease.

  The decrease is measured from the smallest candidate's loss (about the
  current loss): the greedy best on one batch can be far too long for the
  steps that follow (on separable data, the longer the better, without end).
  Returns the chosen index, and whether the losses differ at all.
  """
  best = jnp.min(losses)
  reference = losses[jnp.argmin(candidates)]
  good_enough = losses <= best + (reference - best) / 2
  chosen = jnp.argmin(jnp.where(good_enough, candidates, jnp.inf))
  return chosen, jnp.any(losses != best)


# The guard, shared with ``climb`` --------------------------------------------
#
# It reads ``config.guard`` and ``config.guard_rtol``. A decision's step is
# rejected when its loss is non-finite or well above a reference
# (guard_rejects). At every step, the watched loss is compared with the
# running average of recent ones (watch_loss): a spike backs the rate off,
# a non-finite loss is not stepped on (_guard_every_step).


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


def guard_rejects(
  config: Any, loss: jax.Array, reference: jax.Array
) -> jax.Array:
  """Whether the guard rejects a step whose loss will be ``loss``."""
  bad = ~jnp.isfinite(loss) | exceeds(loss, reference, config.guard_rtol)
  return jnp.logical_and(config.guard, bad)


def running_average(average: jax.Array, loss: jax.Array) -> jax.Array:
  """``average`` moved toward a finite ``loss``; the first loss starts it."""
  loss = loss.astype(average.dtype)
  decay = jnp.asarray(AVERAGE_DECAY, average.dtype)
  moved = jnp.where(
    jnp.isfinite(average), decay * average + (1 - decay) * loss, loss
  )
  return jnp.where(jnp.isfinite(loss), moved, average)


def average_of_chosen(
  average: jax.Array, new_state: Any, decides: jax.Array
) -> jax.Array:
  """With nothing watched: the average moved by the loss a decision chose.

  ``new_state`` holds the decision's ``loss_up`` and ``loss_down``; steps
  that do not decide leave the average as it is.
  """
  chosen = jnp.minimum(new_state.loss_up, new_state.loss_down)
  return jnp.where(decides, running_average(average, chosen), average)


class Watched(NamedTuple):
  """What the guard makes of the watched loss.

  Attributes:
    spike: the loss is non-finite, or above the running average by more than
      ``guard_rtol`` of it.
    reject: the loss is non-finite: the step is not taken.
    average: the running average after this loss. A spike restarts it from
      the spike, so that a loss that stays at a new level backs the rate off
      once, not at every step.
  """

  spike: jax.Array
  reject: jax.Array
  average: jax.Array


def watch_loss(
  config: Any, average: jax.Array, watched: jax.Array | None
) -> Watched | None:
  """The guard's verdict on the watched loss (``None``: nothing watched)."""
  if watched is None:
    return None
  watched = watched.astype(average.dtype)
  finite = jnp.isfinite(watched)
  spike = jnp.logical_and(
    config.guard, ~finite | exceeds(watched, average, config.guard_rtol)
  )
  restarted = jnp.where(
    spike & finite, watched, running_average(average, watched)
  )
  return Watched(
    spike=spike,
    reject=jnp.logical_and(config.guard, ~finite),
    average=restarted,
  )


def _worsens(
  score: _value_fn.Score,
  updates: optax.Updates,
  lr: jax.Array,
  value: jax.Array,
  watch: Watched,
) -> jax.Array:
  """On a spike, whether the step about to be taken raises the batch's loss.

  A batch that is merely harder than the others still falls along its own
  gradient; a learning rate past the stable one makes it rise. Evaluated
  only on a spike (one forward pass).
  """
  after = lax.cond(
    watch.spike,
    lambda: score(lr[None], along=updates)[0],
    lambda: jnp.asarray(-jnp.inf, lr.dtype),
  )
  return watch.spike & ~(after < value)


def _guard_every_step(
  config: _Config,
  state: HillclimbState,
  new_state: HillclimbState,
  rejected: jax.Array,
  decides: jax.Array,
  watch: Watched | None,
  backs_off: jax.Array | None,
  first_is_searched: bool,
) -> tuple[HillclimbState, jax.Array]:
  """The guard's verdict on the watched loss, applied after the decision.

  Where ``backs_off`` (and the decision has not backed off already), the
  rate is multiplied by ``BACKOFF`` and the move counts as a fall from the
  previous streak; a non-finite watched loss rejects the step. With nothing
  watched, the losses at the candidates that decisions chose feed the
  average that later decisions compare with.

  Returns the new state and whether the step is rejected.
  """
  if watch is None:
    return new_state._replace(
      loss_average=average_of_chosen(state.loss_average, new_state, decides)
    ), rejected
  if first_is_searched:
    # Without value the watched loss is lr0's step, but the first step is
    # the search's pick: the search has scored and guarded it, and its loss
    # starts the average.
    later = state.count != 0
    backs_off = backs_off & later
    watch = Watched(
      spike=watch.spike & later,
      reject=watch.reject & later,
      average=jnp.where(
        later,
        watch.average,
        running_average(state.loss_average, new_state.loss_up),
      ),
    )
  backs_off = backs_off & ~rejected
  lr = new_state.learning_rate
  backed_off = clip(
    lr * jnp.asarray(BACKOFF, lr.dtype),
    config.min_learning_rate,
    config.max_learning_rate,
  )
  newly_rejected = watch.reject & ~rejected
  new_state = new_state._replace(
    learning_rate=jnp.where(backs_off, backed_off, lr),
    streak=jnp.where(
      backs_off, next_streak(state.streak, jnp.bool_(False)), new_state.streak
    ),
    loss_average=watch.average,
    num_rejected=new_state.num_rejected + newly_rejected.astype(jnp.int32),
  )
  return new_state, rejected | watch.reject


# The run's length ------------------------------------------------------------


class Phase(NamedTuple):
  """Where a step stands in the run: see :func:`run_phase`."""

  window: jax.Array
  decides: jax.Array
  center: jax.Array
  settle: jax.Array


def run_phase(config: _Config, count: jax.Array, dtype: Any) -> Phase:
  r"""The window, whether step t decides, the centre and the settling factor.

  A step decides once a window; the stretch's first decisions come at steps
  1, 2, 4, ... below the first full window.

  Once the steps' noise outweighs their progress, the loss along the line
  through a window of steps is lowest about halfway back to its start, so
  probes centred at its end find shorter steps better at every decision,
  whatever the learning rate: the rule anneals. That is what the end of a
  run needs and its beginning does not. With the run's length :math:`T`
  (``total_steps``):

  - the window is :math:`\max(k, \lfloor T/8 \rfloor)` steps
    (:math:`k` = ``every_k``, 8 = ``WINDOWS_PER_RUN``), so that a longer
    run does not make more of those decisions;
  - the probes are centred :math:`\theta_0 (1 - t/T)` of the window back
    from its end (:math:`\theta_0` = ``center``), reaching the
    window's end at step :math:`T`;
  - the step taken is shortened by :math:`\min(1, (1 - t/T) / f)`, one
    until the last :math:`f` = ``SETTLE_FRACTION`` of the run, then
    linearly down to zero at step :math:`T` (and zero past it), as a
    warmup-stable-decay schedule ends. The climbed rate itself is not
    scaled: the decisions judge it.

  Without it, the window is the largest :math:`k\,2^j` (:math:`j \ge 0`)
  that the steps so far hold twice over (``ANYTIME_WINDOWS``); the centre
  is :math:`\theta_0 / 2`, where a told run's is at its midpoint; the factor
  is one. With ``decision="two_probes"`` (which judges the step about to be
  taken, not a window), the window is ``every_k`` and the factor one.
  """
  every_k = jnp.asarray(config.every_k, count.dtype)
  early_center = jnp.asarray(
    EARLY_CENTER if config.center is None else config.center, dtype
  )
  center, settle = early_center / 2, jnp.ones([], dtype)
  if config.decision == "two_probes":
    # The reference rule: the probes judge the step about to be taken.
    decides = count % every_k == 0
    return Phase(every_k, decides, jnp.zeros([], dtype), settle)
  if config.total_steps is None:
    doublings = 31 - lax.clz(
      jnp.maximum(count // (ANYTIME_WINDOWS * every_k), 1).astype(jnp.int32)
    )
    window = every_k << doublings.astype(count.dtype)
  else:
    total = jnp.asarray(config.total_steps, count.dtype)
    done = jnp.clip(count.astype(dtype) / total.astype(dtype), 0, 1)
    window = jnp.maximum(every_k, total // WINDOWS_PER_RUN)
    center = early_center * (1 - done)
    settle = jnp.minimum((1 - done) / jnp.asarray(SETTLE_FRACTION, dtype), 1)
  first = ((count & (count - 1)) == 0) & (count < window)
  return Phase(window, (count % window == 0) | first, center, settle)
