"""Binding the loss function ``value_fn`` to the extra arguments of update."""

from collections.abc import Callable, Mapping
import functools
import inspect
import numbers
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
  names = keyword_names(value_fn)
  kwargs = {k: v for k, v in extra_args.items() if k in names}

  def loss(params: Any) -> jax.Array:
    return _as_scalar_loss(value_fn(params, **kwargs))

  return loss


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
