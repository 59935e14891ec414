"""Flax NNX glue: a ``value_fn`` that scores a model at probe parameters.

Flax is imported only when these functions run, so ``optax_hillclimb`` itself
does not depend on it.
"""

from collections.abc import Callable
from typing import Any

import jax


def nnx_value_fn(
  model: Any,
  loss_fn: Callable[..., Any],
  *args: Any,
  wrt: Any = None,
  has_aux: bool = False,
  **kwargs: Any,
) -> Callable[[Any], jax.Array]:
  """Returns ``value_fn(params)``: ``loss_fn`` of ``model`` with ``params``.

  :func:`optax_hillclimb.hillclimb` scores the loss at two probe parameter
  sets, but an NNX model holds its parameters itself.
  ``nnx.Optimizer.update(model, grads, value_fn=...)`` hands ``value_fn`` the
  parameters selected by the optimizer's ``wrt`` filter, as a pure
  ``nnx.State``; this function rebuilds a throwaway copy of ``model`` around
  them and calls ``loss_fn(copy, *args, **kwargs)``.

  Everything else in the model (BatchNorm statistics, dropout random state,
  counters) is frozen as it is when ``nnx_value_fn`` is called, so both probes
  score the same network:

  * Call it in your train step *before* computing the gradient: the probes
    then see the dropout masks the gradient saw (the RNG counts the gradient
    computation is about to advance are captured first).
  * In training mode BatchNorm normalizes with the batch's statistics, the
    same for both probes; the running averages the probes would update belong
    to the copies and are thrown away. Probing in evaluation mode instead
    (``model.eval()`` before splitting) would score a different network than
    the one the gradient was taken of.
  * Keep the ``nnx.Rngs`` in the model (the NNX default) rather than passing
    one to ``__call__``: a shared ``Rngs`` would advance between probes.

  The copies are pure values, so the probes can run under ``vmap``,
  ``lax.map`` or ``jit`` without NNX trace-context errors.

  Args:
    model: the ``nnx.Module`` being trained.
    loss_fn: ``loss_fn(model, *args, **kwargs)`` returning the scalar loss, or
      ``(loss, aux)`` with ``has_aux=True``; typically the same function you
      differentiate.
    *args: positional arguments of ``loss_fn`` after the model (the batch).
    wrt: the ``nnx`` filter of the parameters, as given to ``nnx.Optimizer``
      (default ``nnx.Param``).
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``; ``aux`` is dropped.
    **kwargs: keyword arguments of ``loss_fn``.

  Returns:
    ``value_fn(params) -> loss``, to pass as ``value_fn=`` to
    ``nnx.Optimizer.update``.

  Examples:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> from optax_hillclimb.flax_utils import nnx_value_fn
    >>> model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    >>> optimizer = nnx.Optimizer(
    ...     model, optax_hillclimb.hillclimb(0.1), wrt=nnx.Param
    ... )
    >>> def loss_fn(model, x, y):
    ...   return jnp.mean((model(x) - y) ** 2)
    >>> @nnx.jit
    ... def train_step(model, optimizer, x, y):
    ...   value_fn = nnx_value_fn(model, loss_fn, x, y)
    ...   loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    ...   optimizer.update(model, grads, value_fn=value_fn, value=loss)
    ...   return loss
    >>> x, y = jnp.ones((8, 3)), jnp.zeros((8, 1))
    >>> losses = [float(train_step(model, optimizer, x, y)) for _ in range(5)]
    >>> losses[-1] < losses[0]
    True
  """
  try:
    from flax import nnx  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    if e.name is None or e.name.split(".")[0] != "flax":
      raise  # something Flax itself imports is missing: its own message
    raise ModuleNotFoundError(
      "nnx_value_fn needs Flax, which is not installed: pip install flax "
      '(or pip install "optax-hillclimb[examples]", with the MNIST '
      "example's other packages).",
      name=e.name,
    ) from e

  if not isinstance(model, nnx.Module):
    raise TypeError(
      f"nnx_value_fn expects an nnx.Module, got {type(model).__name__}."
    )
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {loss_fn!r}.")
  if wrt is None:
    wrt = nnx.Param
  graphdef, _, rest = nnx.split(model, wrt, ...)
  # Pure arrays, not live Variables: the probes may be traced inside vmap or
  # lax.map, where touching the outer trace's Variables is an error.
  rest = nnx.as_pure(rest)

  def value_fn(params: Any) -> jax.Array:
    probe_model = nnx.merge(graphdef, params, rest)
    out = loss_fn(probe_model, *args, **kwargs)
    if has_aux:
      if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(
          "has_aux=True needs loss_fn to return a (loss, aux) pair, got "
          f"{type(out).__name__}."
        )
      out = out[0]
    return out

  # Errors raised inside loss_fn are its own: the hint for a loss passed
  # without this wrapper (optax_hillclimb._value_fn) must not blame them on it.
  value_fn.is_nnx_value_fn = True
  return value_fn
