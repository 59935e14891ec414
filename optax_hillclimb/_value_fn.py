"""Binding the loss function ``value_fn`` to the extra arguments of update."""

from collections.abc import Callable, Mapping
import inspect
from typing import Any

import jax
import jax.numpy as jnp

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
    value = jnp.asarray(value_fn(params, **kwargs))
    if value.size != 1:
      raise ValueError(
        "value_fn must return a scalar loss, got an array of shape "
        f"{value.shape}. Reduce it, for example with jnp.mean."
      )
    return value.reshape(())

  return loss
