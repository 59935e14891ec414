"""Optimizers built with ``optax.chain`` around ``scale_by_hillclimb``."""

from collections.abc import Sequence

import jax
import optax

from optax_hillclimb import _probe
from optax_hillclimb import _transform
from optax_hillclimb import _validation


def hillclimb(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  lrlr: jax.typing.ArrayLike = 0.1,
  smoothing: jax.typing.ArrayLike = 0.9,
  debias: bool = True,
  every_k: jax.typing.ArrayLike = 128,
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
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  decision: str = "stretch",
  slope_rtol: jax.typing.ArrayLike = 0.5,
  total_steps: jax.typing.ArrayLike | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent on a smoothed gradient with a hill-climbed learning rate.

  The reference optimizer: the gradient :math:`g_t` is smoothed by an
  exponential moving average (:func:`optax.ema`),

  .. math::
    m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
    u_t = m_t / (1 - \beta^t) \ \text{(debiased)},

  so that one noisy batch does not throw the probes off, and
  :func:`scale_by_hillclimb` moves along :math:`u_t` with a learning rate that
  it tunes itself. Both the learning rate and :math:`m_t` live in the state.

  By default (``decision="stretch"``) the learning rate is judged at steps
  1, 2, 4, ..., 64 and then every 128 steps, on the batch passed to
  ``update``: would the steps taken since the last decision, 10% longer or
  shorter, have done better on it? Those steps were made from other
  batches, so the judgement is not fooled by the batch that made them, and
  a window of many steps looks further ahead than one step (the project's
  documentation, "Deciding on fresh data").

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    lrlr: relative step of the learning rate, see :func:`scale_by_hillclimb`.
    smoothing: decay :math:`\beta` of the moving average, in [0, 1); ``0``
      means the raw gradient.
    debias: whether to debias the moving average, so that the first step uses
      the raw gradient.
    every_k: decide every ``every_k`` steps (with ``decision="stretch"``,
      also at steps 1, 2, 4, ... below it).
    min_learning_rate: lower bound of the learning rate.
    max_learning_rate: optional upper bound of the learning rate.
    guard: whether to reject steps whose better probe is non-finite or much
      worse than the current loss ``value``.
    backoff: factor applied to the learning rate on a rejected step.
    guard_rtol: relative tolerance of the guard's comparison with ``value``.
    lrlr_growth: growth of the relative step over consecutive moves in the same
      direction; ``1`` keeps it constant.
    max_lrlr: largest relative step when ``lrlr_growth > 1``.
    probe: ``"auto"``, ``"vmap"`` or ``"sequential"`` evaluation of the probes.
    axis_name: device axis over which probe losses are averaged under ``pmap``.
    tie_break: ``"down"`` (the reference rule) or ``"up"``: which way equal
      probe losses move the learning rate, see :func:`scale_by_hillclimb`.
    scale_search: multiples of ``learning_rate`` scored at the first update,
      the smallest achieving half of the best decrease starts the climb;
      ``None`` starts from ``learning_rate``. See :func:`scale_by_hillclimb`.
    decision: how a probe step decides: ``"stretch"`` (the default: the
      steps since the last decision, stretched and shrunk, scored on the
      batch after them), ``"two_probes"`` (two candidate learning rates on
      the batch that made the step; at ``every_k=1, lrlr=0.01`` the
      defaults before ``"stretch"``), ``"one_probe"`` (needs ``value`` and
      ``grad``) or ``"no_probe"`` (needs ``grad``), see
      :func:`scale_by_hillclimb`.
    slope_rtol: with ``decision="one_probe"``, the fraction of the decrease
      the slope predicts that a step must achieve for the learning rate to
      rise, see :func:`scale_by_hillclimb`.
    total_steps: the run's length in updates, if the training loop knows
      it: early decisions then favour progress and the last fifth of the
      steps shortens to zero, see :func:`scale_by_hillclimb`.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`; its ``update`` takes
    ``value_fn`` (and optionally ``value``, ``grad`` and the arguments of
    ``value_fn``) as keyword arguments, see :func:`scale_by_hillclimb`.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> def loss(params):
    ...   return jnp.sum((params - 3.0) ** 2)
    >>> solver = optax_hillclimb.hillclimb(learning_rate=1e-3)
    >>> params = jnp.zeros(2)
    >>> state = solver.init(params)
    >>> for _ in range(50):
    ...   value, grads = jax.value_and_grad(loss)(params)
    ...   updates, state = solver.update(
    ...       grads, state, params, value_fn=loss, value=value
    ...   )
    ...   params = optax.apply_updates(params, updates)
    >>> print(f"loss {loss(params):.2e}")
    loss 3.71e-05

  References:
    The rule follows a blog post's experiment on MNIST; see the project's
    documentation, "How the rule works".
  """
  _validation.check(
    "smoothing", smoothing, lambda x: 0 <= x < 1, "in the interval [0, 1)"
  )
  if _validation.is_concrete_number(smoothing) and smoothing == 0:
    direction = optax.identity()
  else:
    direction = optax.ema(smoothing, debias=debias)
  return optax.chain(
    direction,
    _transform.scale_by_hillclimb(
      learning_rate,
      lrlr=lrlr,
      every_k=every_k,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate,
      guard=guard,
      backoff=backoff,
      guard_rtol=guard_rtol,
      lrlr_growth=lrlr_growth,
      max_lrlr=max_lrlr,
      probe=probe,
      axis_name=axis_name,
      tie_break=tie_break,
      scale_search=scale_search,
      decision=decision,
      slope_rtol=slope_rtol,
      total_steps=total_steps,
    ),
  )


def hillclimb_adam(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  b1: jax.typing.ArrayLike = 0.9,
  b2: jax.typing.ArrayLike = 0.999,
  eps: jax.typing.ArrayLike = 1e-8,
  lrlr: jax.typing.ArrayLike = 0.1,
  every_k: jax.typing.ArrayLike = 128,
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
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  decision: str = "stretch",
  slope_rtol: jax.typing.ArrayLike = 0.5,
  total_steps: jax.typing.ArrayLike | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam with a hill-climbed learning rate.

  :func:`optax.scale_by_adam` gives the direction :math:`u_t = \hat m_t /
  (\sqrt{\hat v_t} + \epsilon)`, and :func:`scale_by_hillclimb` moves along it
  with a learning rate that it tunes itself. Adam's first moment already
  smooths the gradient.

  It decides as :func:`hillclimb` does (by default ``decision="stretch"``,
  every 128 steps).

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    b1: decay of Adam's first moment.
    b2: decay of Adam's second moment.
    eps: term added to the denominator for numerical stability.
    lrlr: relative step of the learning rate, see :func:`scale_by_hillclimb`.
    every_k: decide every ``every_k`` steps (with ``decision="stretch"``,
      also at steps 1, 2, 4, ... below it).
    min_learning_rate: lower bound of the learning rate.
    max_learning_rate: optional upper bound of the learning rate.
    guard: whether to reject steps whose better probe is non-finite or much
      worse than the current loss ``value``.
    backoff: factor applied to the learning rate on a rejected step.
    guard_rtol: relative tolerance of the guard's comparison with ``value``.
    lrlr_growth: growth of the relative step over consecutive moves in the same
      direction; ``1`` keeps it constant.
    max_lrlr: largest relative step when ``lrlr_growth > 1``.
    probe: ``"auto"``, ``"vmap"`` or ``"sequential"`` evaluation of the probes.
    axis_name: device axis over which probe losses are averaged under ``pmap``.
    tie_break: ``"down"`` (the reference rule) or ``"up"``: which way equal
      probe losses move the learning rate, see :func:`scale_by_hillclimb`.
    scale_search: multiples of ``learning_rate`` scored at the first update,
      the smallest achieving half of the best decrease starts the climb;
      ``None`` starts from ``learning_rate``. See :func:`scale_by_hillclimb`.
    decision: how a probe step decides (``"stretch"`` by default), see
      :func:`hillclimb` and :func:`scale_by_hillclimb`.
    slope_rtol: with ``decision="one_probe"``, the fraction of the decrease
      the slope predicts that a step must achieve for the learning rate to
      rise, see :func:`scale_by_hillclimb`.
    total_steps: the run's length in updates, if the training loop knows
      it: early decisions then favour progress and the last fifth of the
      steps shortens to zero, see :func:`scale_by_hillclimb`.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`; its ``update`` takes
    ``value_fn`` (and optionally ``value``, ``grad`` and the arguments of
    ``value_fn``) as keyword arguments, see :func:`scale_by_hillclimb`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> solver = optax_hillclimb.hillclimb_adam(learning_rate=1e-2)
    >>> state = solver.init({"w": jnp.zeros(3)})
    >>> print(optax_hillclimb.get_learning_rate(state))
    0.01

  References:
    Kingma et al., `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """
  return optax.chain(
    optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
    _transform.scale_by_hillclimb(
      learning_rate,
      lrlr=lrlr,
      every_k=every_k,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate,
      guard=guard,
      backoff=backoff,
      guard_rtol=guard_rtol,
      lrlr_growth=lrlr_growth,
      max_lrlr=max_lrlr,
      probe=probe,
      axis_name=axis_name,
      tie_break=tie_break,
      scale_search=scale_search,
      decision=decision,
      slope_rtol=slope_rtol,
      total_steps=total_steps,
    ),
  )
