"""Optimizers built with ``optax.chain`` around ``scale_by_hillclimb``.

Each alias is its chain: a direction, then :func:`scale_by_hillclimb` with
the same defaults. The settings only the reference rule needs (``guard``,
``tie_break``, ``lrlr_growth``, ...) are :func:`scale_by_hillclimb`'s.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
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
  judge_steps: int = 1,
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
    >>> for _ in range(100):
    ...   params, state = step(params, state)
    >>> print(f"loss {loss(params):.2e}")
    loss 4.27e-05

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
      judge_steps=judge_steps,
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
  judge_steps: int = 1,
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
      judge_steps=judge_steps,
    ),
  )


# The stretch's centre for Muon's direction (the default is 1/4): centred
# there, a told climb held Muon's rate near 0.02, the peak of its tuned
# warmup-cosine, on the language model; at 1/4 it climbed to 0.04-0.07 within
# the first 200 steps, and ended 1.6% behind over 4000 steps and 2.5% on the
# larger model.
MUON_CENTER = 0.125


def _muon_labels(params: optax.Params) -> optax.Params:
  """Muon's partition: matrices to ``"muon"``, the other parameters to Adam."""
  return jax.tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)


def _scale_by_width() -> optax.GradientTransformation:
  r"""Muon's width scaling of a matrix update: :math:`\sqrt{\max(1, n/m)}`.

  For an :math:`m \times n` matrix (``fan_in`` :math:`m`, ``fan_out``
  :math:`n`), as ``optax.contrib.muon`` scales its orthogonalised updates.
  """

  def update_fn(updates, state, params=None):
    del params

    def scale(u):
      return u * jnp.sqrt(jnp.maximum(1.0, u.shape[1] / u.shape[0]))

    return jax.tree.map(scale, updates), state

  return optax.GradientTransformation(optax.init_empty_state, update_fn)


@_transform.with_climb_args
def hillclimb_muon(
  learning_rate: jax.typing.ArrayLike = 0.02,
  *,
  beta: jax.typing.ArrayLike = 0.95,
  ns_steps: int = 5,
  nesterov: bool = True,
  total_steps: jax.typing.ArrayLike | None = None,
  decision: _transform.Decision = "stretch",
  every_k: jax.typing.ArrayLike = 128,
  lrlr: jax.typing.ArrayLike = 0.1,
  scale_search: Sequence[float] | None = _transform.SCALE_SEARCH,
  max_learning_rate: jax.typing.ArrayLike | None = None,
  probe: _value_fn.ProbeMode = "auto",
  axis_name: str | None = None,
  judge_steps: int = 1,
) -> optax.GradientTransformationExtraArgs:
  r"""Muon with a hill-climbed learning rate.

  The direction is Muon's, partitioned as :func:`optax.contrib.muon` does
  with its defaults: every matrix (a parameter with two dimensions) gets the
  momentum :math:`\hat m_t` of its gradient orthogonalised by ``ns_steps``
  Newton-Schulz iterations (:func:`optax.contrib.scale_by_muon`) and scaled
  for the matrix's shape, :math:`\sqrt{\max(1, n/m)}` for an
  :math:`m \times n` matrix; every other parameter (biases, scales, higher
  ranks) gets Adam's direction (:func:`optax.scale_by_adam` with
  ``b1=0.9, b2=0.999``, the same ``nesterov``). :func:`scale_by_hillclimb`
  moves along the whole direction with one learning rate that it tunes
  itself, so that the update is :math:`-\eta u_t` where
  ``optax.contrib.muon(eta)`` would give the same :math:`-\eta u_t` had it
  been told the rate.

  One rate drives both parts, as in :func:`optax.contrib.muon` when its
  ``adam_learning_rate`` is left at ``None``: both directions have entries of
  order one (an orthogonalised :math:`m \times n` matrix has entries of about
  :math:`1/\sqrt{\min(m, n)}` before the width scaling, Adam's are about
  :math:`\pm 1`), and a second rate would need a second climb judged on the
  same loss. Muon's usual rates (about ``0.02``) are larger than Adam's;
  the climb finds its own.

  The first update's scale search picks the start on one batch, from rates
  that do not depend on ``learning_rate`` (they are rounded to quarter
  decades): on the project's small transformer language model every start
  from 1e-6 to 1.5 picked 0.018 and trained the same run (see the
  documentation's "Any direction"). The decisions' probes are centred at
  :math:`\theta_0 = \frac18` (``center`` of :func:`scale_by_hillclimb`;
  its default, :math:`\frac14`, suits Adam's direction): Muon's steps keep
  paying further along the window than Adam's, and centred at
  :math:`\frac14` the climb took Muon's rate to twice its tuned peak.

  Args:
    learning_rate: the starting learning rate :math:`\eta_0`; the default
      is Muon's usual rate (the scale search scores rates six decades
      either side of it).
    beta: decay of Muon's momentum of the gradient, in [0, 1).
    ns_steps: number of Newton-Schulz iterations.
    nesterov: whether Muon's and Adam's momenta are Nesterov's.
    <the climb's arguments>

  Returns:
    ``optax.chain(muon_direction, scale_by_hillclimb(...))``, where
    ``muon_direction`` is an :func:`optax.partition` of
    ``optax.contrib.scale_by_muon(...)`` (then the width scaling) for the
    matrices and ``optax.scale_by_adam(...)`` for the rest: its ``update``
    takes ``value_fn`` (and optionally ``value`` and the arguments of
    ``value_fn``) as keyword arguments, see :func:`scale_by_hillclimb`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> solver = optax_hillclimb.hillclimb_muon(total_steps=1000)
    >>> params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}
    >>> state = solver.init(params)  # w is Muon's, b Adam's
    >>> print(optax_hillclimb.get_learning_rate(state))
    0.02

  References:
    Jordan, `Muon: An optimizer for hidden layers in neural networks
    <https://kellerjordan.github.io/posts/muon/>`_, 2024

    Kingma et al., `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """
  _validation.check(
    "beta", beta, lambda x: 0 <= x < 1, "in the interval [0, 1)"
  )
  _validation.check_positive_int("ns_steps", ns_steps)
  if not isinstance(nesterov, bool):
    raise TypeError(f"nesterov must be a bool, got nesterov={nesterov!r}.")
  matrices = optax.chain(
    optax.contrib.scale_by_muon(
      ns_steps=ns_steps,
      beta=beta,
      nesterov=nesterov,
      weight_dimension_numbers=lambda updates: jax.tree.map(
        lambda _: optax.contrib.MuonDimensionNumbers(), updates
      ),
    ),
    _scale_by_width(),
  )
  others = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, nesterov=nesterov)
  return optax.chain(
    optax.partition({"muon": matrices, "adam": others}, _muon_labels),
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
      # Only the stretch has probes to centre: two_probes refuses a centre.
      center=MUON_CENTER if decision == "stretch" else None,
      judge_steps=judge_steps,
    ),
  )
