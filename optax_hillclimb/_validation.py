"""Checks of hyperparameters that are concrete Python numbers.

Hyperparameters may also arrive as (traced) arrays, for example through
``optax.inject_hyperparams``; those cannot be checked in Python and are left
alone, so that every transformation here stays injectable.
"""

from collections.abc import Callable, Sequence
import math
import numbers
from typing import Any


def is_concrete_number(value: Any) -> bool:
  """Whether ``value`` is a plain Python or NumPy number (not a bool)."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check(
  name: str,
  value: Any,
  is_valid: Callable[[Any], bool],
  expected: str,
) -> None:
  """Raises a ``ValueError`` naming ``name`` if a concrete value is invalid.

  Args:
    name: the hyperparameter's name, as the user spelled it.
    value: its value; only concrete numbers are checked.
    is_valid: predicate on the concrete value.
    expected: what a valid value is, completing "``name`` must be ...".
  """
  if is_concrete_number(value) and not is_valid(value):
    raise ValueError(f"{name} must be {expected}, got {name}={value!r}.")


def check_positive_int(name: str, value: Any) -> None:
  """Checks that a concrete ``value`` is an integer of at least one."""
  if isinstance(value, bool) or (
    is_concrete_number(value) and (int(value) != value or value < 1)
  ):
    raise ValueError(
      f"{name} must be a positive integer, got {name}={value!r}."
    )


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
  """Raises a ``ValueError`` naming ``name`` unless ``value`` is a choice."""
  if value not in choices:
    raise ValueError(
      f"{name} must be one of {tuple(choices)}, got {name}={value!r}."
    )


def check_order(
  lower_name: str, lower: Any, upper_name: str, upper: Any
) -> None:
  """Checks ``lower <= upper`` when both are concrete numbers."""
  if (
    is_concrete_number(lower)
    and is_concrete_number(upper)
    and not lower <= upper
  ):
    raise ValueError(
      f"{lower_name} must be at most {upper_name}={upper!r}, got "
      f"{lower_name}={lower!r}."
    )


def check_scale_search(scale_search: Any) -> None:
  """Checks ``scale_search``: ``None`` or positive finite multiples."""
  if scale_search is None:
    return
  if not isinstance(scale_search, Sequence) or isinstance(scale_search, str):
    raise TypeError(
      "scale_search must be None or a sequence of positive multiples of the "
      f"starting learning rate, got scale_search={scale_search!r}."
    )
  for scale in scale_search:
    if not is_concrete_number(scale) or not 0 < scale < math.inf:
      raise ValueError(
        "scale_search must hold positive finite numbers, got "
        f"scale_search={tuple(scale_search)!r}."
      )
