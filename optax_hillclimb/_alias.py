"""Optimizers built with ``optax.chain`` around ``scale_by_hillclimb``.

Each alias is its chain: a direction, then :func:`scale_by_hillclimb` with
the same defaults. The settings only the reference rule needs (``guard``,
``tie_break``, ``lrlr_growth``, ...) are :func:`scale_by_hillclimb`'s.
"""

from collections.abc import Sequence

import jax
import optax

from optax_hillclimb import _transform
from optax_hillclimb import _validation
from optax_hillclimb import _value_fn


@_transform.with_climb_args
def hillclimb(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  smoothing: jax.typing.ArrayLike = 0.9,
  total_steps: jax.typing.ArrayLike | None = None,
  decision: _transform.Decision = "stretch",
  every_k: jax.typing.ArrayLike = 128,
  lrlr: jax.typing.ArrayLike = 0.1,
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  max_learning_rate: jax.typing.ArrayLike | None = None,
  probe: _value_fn.ProbeMode = "auto",
  axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent on a smoothed gradient with a hill-climbed learning rate.

  The gradient :math:`g_t` is smoothed by a debiased exponential moving
  average (:func:`optax.ema`),

  .. math::
    m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
    u_t = m_t / (1 - \beta^t),

  so that one noisy batch does not throw the decisions off, and
  :func:`scale_by_hillclimb` moves along :math:`u_t` with a learning rate that
  it tunes itself. Both the learning rate and :math:`m_t` live in the state.

  By default the learning rate is judged at steps 1, 2, 4, ..., 64 and then
  every 128 steps, on the current batch: would the steps taken since the
  last decision, 10% longer or shorter, have done better on it? Those steps
  were made from other batches, so the judgement is not fooled by the batch
  that made them. Pass ``total_steps`` when the training loop knows its
  length.

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    smoothing: decay :math:`\beta` of the moving average, in [0, 1); ``0``
      means the raw gradient.
    <the climb's arguments>

  Returns:
    ``optax.chain(optax.ema(smoothing, debias=True),
    scale_by_hillclimb(...))``: its ``update`` takes ``value_fn`` (and
    optionally ``value`` and the arguments of ``value_fn``) as keyword
    arguments, see :func:`scale_by_hillclimb`.

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
    >>> @jax.jit
    ... def step(params, state):
    ...   value, grads = jax.value_and_grad(loss)(params)
    ...   updates, state = solver.update(
    ...       grads, state, params, value_fn=loss, value=value
    ...   )
    ...   return optax.apply_updates(params, updates), state
    >>> for _ in range(50):
    ...   params, state = step(params, state)
    >>> print(f"loss {loss(params):.2e}")
    loss 3.71e-05

  References:
    The rule follows a blog post's experiment on MNIST; see the project's
    documentation, "How the rule works".
  """
  _validation.check(
    "smoothing", smoothing, lambda x: 0 <= x < 1, "in the interval [0, 1)"
  )
  if _validation.as_concrete_number(smoothing) == 0:
    direction = optax.identity()
  else:
    direction = optax.ema(smoothing, debias=True)
  return optax.chain(
    direction,
    _transform.scale_by_hillclimb(
      learning_rate,
      total_steps=total_steps,
      decision=decision,
      every_k=every_k,
      lrlr=lrlr,
      scale_search=scale_search,
      max_learning_rate=max_learning_rate,
      probe=probe,
      axis_name=axis_name,
    ),
  )


@_transform.with_climb_args
def hillclimb_adam(
  learning_rate: jax.typing.ArrayLike = 1e-3,
  *,
  b1: jax.typing.ArrayLike = 0.9,
  b2: jax.typing.ArrayLike = 0.999,
  eps: jax.typing.ArrayLike = 1e-8,
  total_steps: jax.typing.ArrayLike | None = None,
  decision: _transform.Decision = "stretch",
  every_k: jax.typing.ArrayLike = 128,
  lrlr: jax.typing.ArrayLike = 0.1,
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  max_learning_rate: jax.typing.ArrayLike | None = None,
  probe: _value_fn.ProbeMode = "auto",
  axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam with a hill-climbed learning rate.

  :func:`optax.scale_by_adam` gives the direction :math:`u_t = \hat m_t /
  (\sqrt{\hat v_t} + \epsilon)`, and :func:`scale_by_hillclimb` moves along it
  with a learning rate that it tunes itself, deciding as :func:`hillclimb`
  does. Start here: ``hillclimb_adam(1e-3, total_steps=N)``, with
  ``value_fn`` scoring the current batch at every update.

  The learning rate is not a hyperparameter that
  :func:`optax.inject_hyperparams` can set during the run: it is only the
  starting rate. Read the climbed rate with
  :func:`~optax_hillclimb.get_learning_rate`.

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`.
    b1: decay of Adam's first moment.
    b2: decay of Adam's second moment.
    eps: term added to the denominator for numerical stability.
    <the climb's arguments>

  Returns:
    ``optax.chain(optax.scale_by_adam(b1, b2, eps),
    scale_by_hillclimb(...))``: its ``update`` takes ``value_fn`` (and
    optionally ``value`` and the arguments of ``value_fn``) as keyword
    arguments, see :func:`scale_by_hillclimb`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> solver = optax_hillclimb.hillclimb_adam(1e-2, total_steps=1000)
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
      total_steps=total_steps,
      decision=decision,
      every_k=every_k,
      lrlr=lrlr,
      scale_search=scale_search,
      max_learning_rate=max_learning_rate,
      probe=probe,
      axis_name=axis_name,
    ),
  )
