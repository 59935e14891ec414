"""Checks of hyperparameters, made when the transformation is built.

Hyperparameters may arrive as traced arrays, for example through
``optax.inject_hyperparams`` under ``jit``; those cannot be checked in Python
and are left alone, so that every transformation here stays injectable.
Concrete numbers and concrete scalar arrays are checked.
"""

from collections.abc import Callable, Sequence
import math
import numbers
from typing import Any

import jax
import numpy as np


def as_concrete_number(value: Any) -> float | None:
  """``value`` as a float if it is a concrete real scalar, else ``None``."""
  if isinstance(value, bool):
    return None
  if isinstance(value, numbers.Real):
    return float(value)
  if isinstance(value, (jax.Array, np.ndarray, np.generic)) and not isinstance(
    value, jax.core.Tracer
  ):
    if np.size(value) == 1 and np.issubdtype(
      np.asarray(value).dtype, np.number
    ):
      return float(np.asarray(value).reshape(()))
  return None


def is_concrete_number(value: Any) -> bool:
  """Whether ``value`` is a concrete real scalar (not a bool, not traced)."""
  return as_concrete_number(value) is not None


def check(
  name: str,
  value: Any,
  is_valid: Callable[[float], bool],
  expected: str,
) -> None:
  """Raises a ``ValueError`` naming ``name`` if a concrete value is invalid.

  Args:
    name: the hyperparameter's name, as the user spelled it.
    value: its value; only concrete numbers and scalar arrays are checked.
    is_valid: predicate on the concrete value.
    expected: what a valid value is, completing "``name`` must be ...".
  """
  number = as_concrete_number(value)
  if number is not None and not is_valid(number):
    raise ValueError(f"{name} must be {expected}, got {name}={value!r}.")


def check_positive_int(name: str, value: Any) -> None:
  """Checks that a concrete ``value`` is an integer of at least one."""
  number = as_concrete_number(value)
  if isinstance(value, bool) or (
    number is not None and (int(number) != number or number < 1)
  ):
    raise ValueError(
      f"{name} must be a positive integer, got {name}={value!r}."
    )


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
  """Raises a ``ValueError`` naming ``name`` unless ``value`` is a choice."""
  if not isinstance(value, str) or value not in choices:
    raise ValueError(
      f"{name} must be one of {tuple(choices)}, got {name}={value!r}."
    )


def check_order(
  lower_name: str, lower: Any, upper_name: str, upper: Any
) -> None:
  """Checks ``lower <= upper`` when both are concrete numbers."""
  low, high = as_concrete_number(lower), as_concrete_number(upper)
  if low is not None and high is not None and not low <= high:
    raise ValueError(
      f"{lower_name} must be at most {upper_name}={upper!r}, got "
      f"{lower_name}={lower!r}."
    )


def check_not_schedule(name: str, value: Any) -> None:
  """A clear error for an optax schedule where a starting value is wanted."""
  if callable(value):
    raise TypeError(
      f"{name} is the starting learning rate, a number, got a function "
      f"({getattr(value, '__name__', type(value).__name__)}). The climb sets "
      "the rate itself, so a schedule cannot drive it: pass its starting "
      "value (for example learning_rate=1e-3), and total_steps=N if the "
      "training loop knows its length, which makes the last fifth of the "
      "steps decay to zero as a schedule would."
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
    if not isinstance(scale, numbers.Real) or not 0 < scale < math.inf:
      raise ValueError(
        "scale_search must hold positive finite numbers, got "
        f"scale_search={tuple(scale_search)!r}."
      )


def check_rule(config: Any) -> None:
  """Checks the settings that ``scale_by_hillclimb`` and ``climb`` share."""
  check("lrlr", config.lrlr, lambda x: 0 < x < 1, "in the interval (0, 1)")
  check_positive_int("every_k", config.every_k)
  check("lrlr_growth", config.lrlr_growth, lambda x: x >= 1, "at least 1")
  check_choice("tie_break", config.tie_break, ("down", "up"))
  check("guard_rtol", config.guard_rtol, lambda x: x >= 0, "non-negative")
  check_scale_search(config.scale_search)
  check_choice("probe", config.probe, ("auto", "vmap", "sequential"))


def check_hillclimb(config: Any) -> None:
  """Checks the hyperparameters of one ``scale_by_hillclimb``."""
  lr, lower, upper = (
    config.learning_rate,
    config.min_learning_rate,
    config.max_learning_rate,
  )
  check_not_schedule("learning_rate", lr)
  check("learning_rate", lr, lambda x: 0 < x < math.inf, "positive and finite")
  check("min_learning_rate", lower, lambda x: x > 0, "positive")
  check("max_learning_rate", upper, lambda x: x > 0, "positive")
  check_order("min_learning_rate", lower, "max_learning_rate", upper)
  check_order("min_learning_rate", lower, "learning_rate", lr)
  check_order("learning_rate", lr, "max_learning_rate", upper)
  check_choice("decision", config.decision, ("stretch", "two_probes"))
  check_rule(config)
  if config.center is not None:
    check(
      "center", config.center, lambda x: 0 <= x < 1, "in the interval [0, 1)"
    )
    _check_stretch_only("center", "places", config.decision)
  if config.total_steps is not None:
    check_positive_int("total_steps", config.total_steps)
    _check_stretch_only("total_steps", "shapes", config.decision)
  check_positive_int("judge_steps", config.judge_steps)
  judge_steps = as_concrete_number(config.judge_steps)
  if judge_steps is not None and judge_steps > 1:
    _check_stretch_only("judge_steps", "sums", config.decision)


def _check_stretch_only(name: str, verb: str, decision: str) -> None:
  """Refuses ``name``, which ``verb`` the stretch's probes, without them."""
  if decision != "stretch":
    raise ValueError(
      f"{name} {verb} the stretch decision's probes, and "
      f'decision={decision!r} has none: pass decision="stretch", '
      f"or leave {name} out."
    )
