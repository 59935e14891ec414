"""Binding the loss function ``value_fn`` to the extra arguments of update."""

from collections.abc import Callable, Mapping
import functools
import inspect
import numbers
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_KEYWORD_KINDS = (
  inspect.Parameter.POSITIONAL_OR_KEYWORD,
  inspect.Parameter.KEYWORD_ONLY,
)


def keyword_names(fn: Callable[..., Any]) -> frozenset[str]:
  """Names of the parameters of ``fn`` that can be passed by keyword."""
  try:
    parameters = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    # Some callables (builtins, C extensions) have no signature: they can only
    # receive the parameters.
    return frozenset()
  return frozenset(p.name for p in parameters if p.kind in _KEYWORD_KINDS)


def missing_arguments(
  fn: Callable[..., Any], given: Mapping[str, Any]
) -> list[str]:
  """Required parameters of ``fn``, after the first, that ``given`` lacks."""
  try:
    parameters = list(inspect.signature(fn).parameters.values())
  except (TypeError, ValueError):
    return []
  if not parameters or parameters[0].kind not in (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
  ):
    return []
  return [
    p.name
    for p in parameters[1:]
    if p.kind in _KEYWORD_KINDS
    and p.default is inspect.Parameter.empty
    and p.name not in given
  ]


def bind_value_fn(
  value_fn: Callable[..., jax.typing.ArrayLike],
  extra_args: Mapping[str, Any],
) -> Callable[[Any], jax.Array]:
  """Returns ``params -> value_fn(params, **matching_extra_args)``.

  Extra arguments whose names are parameters of ``value_fn`` are passed on to
  it; the others belong to other transformations of a chain and are ignored.
  The returned function checks that ``value_fn`` returns a scalar.

  Args:
    value_fn: the loss function, ``value_fn(params, **kwargs) -> scalar``.
    extra_args: the keyword arguments given to ``update``.

  Returns:
    A function of the parameters alone, returning a scalar array.
  """
  if not callable(value_fn):
    raise TypeError(
      f"value_fn must be callable (the loss function), got {value_fn!r}."
    )
  if _is_nnx(value_fn, "Module"):
    raise TypeError(
      f"value_fn is the model ({type(value_fn).__name__}), not a loss "
      f"function. {_NNX_ADVICE}"
    )
  if missing := missing_arguments(value_fn, extra_args):
    raise TypeError(
      f"value_fn {_name(value_fn)} needs {', '.join(missing)}, which update "
      "did not receive. update passes its extra keyword arguments to value_fn "
      "by name (their order does not matter); it got "
      f"{', '.join(sorted(extra_args)) or 'none'}. Call update(..., "
      f"{', '.join(f'{m}=...' for m in missing)})."
    )
  names = keyword_names(value_fn)
  kwargs = {k: v for k, v in extra_args.items() if k in names}

  def loss(params: Any) -> jax.Array:
    try:
      value = value_fn(params, **kwargs)
    except (TypeError, AttributeError) as error:
      if _is_nnx(params, "State") and not _from_nnx_value_fn(value_fn):
        raise type(error)(
          f"value_fn {_name(value_fn)} failed ({error}) on parameters given "
          "as an nnx.State, which is what nnx.Optimizer.update passes. A loss "
          f"written for the model, loss_fn(model, ...), cannot take them. "
          f"{_NNX_ADVICE}"
        ) from error
      raise
    return _as_scalar_loss(value)

  return loss


_NNX_ADVICE = (
  "With Flax NNX, pass value_fn=optax_hillclimb.nnx_value_fn(model, "
  "loss_fn, *batch): it rebuilds the model around the probe parameters and "
  "calls loss_fn on it."
)


def _name(fn: Any) -> str:
  return repr(getattr(fn, "__name__", fn))


def _is_nnx(obj: Any, class_name: str) -> bool:
  """Whether ``obj`` is a ``flax.nnx`` ``class_name``, without importing it."""
  nnx = sys.modules.get("flax.nnx")
  return nnx is not None and isinstance(obj, getattr(nnx, class_name))


def _from_nnx_value_fn(fn: Any) -> bool:
  return getattr(fn, "is_nnx_value_fn", False)


def _as_scalar_loss(value: Any) -> jax.Array:
  """Checks that ``value_fn`` returned one real number; returns it, shape ()."""
  if isinstance(value, (tuple, list)):
    raise TypeError(
      f"value_fn must return a scalar loss, got a {type(value).__name__} of "
      f"{len(value)} items. For a function that returns (loss, aux), as the "
      "loss_fn of jax.value_and_grad(..., has_aux=True) does, pass "
      "value_fn=optax_hillclimb.drop_aux(loss_fn)."
    )
  if isinstance(value, Mapping):
    raise TypeError(
      "value_fn must return a scalar loss, got a mapping with keys "
      f"{sorted(map(str, value))}. Return the loss alone, or wrap a function "
      "that returns (loss, aux) in optax_hillclimb.drop_aux."
    )
  if not isinstance(value, (jax.Array, np.ndarray, np.generic, numbers.Real)):
    raise TypeError(
      "value_fn must return a scalar loss (a JAX or NumPy array, or a real "
      f"number), got {type(value).__name__}: {value!r:.80}."
    )
  value = jnp.asarray(value)
  if not (
    jnp.issubdtype(value.dtype, jnp.floating)
    or jnp.issubdtype(value.dtype, jnp.integer)
  ):
    raise TypeError(
      "value_fn must return a real-valued loss, got an array of dtype "
      f"{value.dtype}."
    )
  if value.size != 1:
    raise ValueError(
      "value_fn must return a scalar loss, got an array of shape "
      f"{value.shape}. Reduce it, for example with jnp.mean."
    )
  return value.reshape(())


def drop_aux(
  fn: Callable[..., tuple[jax.typing.ArrayLike, Any]],
) -> Callable[..., jax.Array]:
  """Turns a function returning ``(loss, aux)`` into one returning the loss.

  Flax's examples write the loss as ``loss_fn(params, ...) -> (loss, logits)``
  for ``jax.value_and_grad(loss_fn, has_aux=True)``; the probes need the loss
  alone. The wrapper keeps ``fn``'s signature, so that the extra keyword
  arguments of ``update`` still reach it by name.

  Args:
    fn: a function whose result is a pair ``(loss, aux)``.

  Returns:
    A function with the same parameters that returns the loss.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> def loss_fn(params, batch):
    ...   predictions = batch * params
    ...   return jnp.mean(predictions**2), predictions
    >>> value_fn = optax_hillclimb.drop_aux(loss_fn)
    >>> print(value_fn(jnp.array(2.0), batch=jnp.array([1.0, 3.0])))
    20.0
  """

  @functools.wraps(fn)
  def loss_only(*args: Any, **kwargs: Any) -> jax.Array:
    out = fn(*args, **kwargs)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
      raise TypeError(
        "drop_aux expects a function that returns a pair (loss, aux), got "
        f"{type(out).__name__} from {getattr(fn, '__name__', fn)!r}."
      )
    return out[0]

  return loss_only
