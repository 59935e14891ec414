"""Checking and resolving what ``climb`` is asked to climb, before it runs."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from optax_hillclimb import _validation

Scale = Literal["log", "decay"]
SCALES = ("log", "decay")
Layout = Literal["cycle", "all"]
LAYOUTS = ("cycle", "all")

# Hyperparameters that behave like ``1 - decay``: climbed multiplicatively in
# ``1 - value``. Every other name is climbed multiplicatively in the value.
DECAY_NAMES = frozenset(
  ("momentum", "b1", "b2", "beta1", "beta2", "decay", "smoothing")
)
# Default bounds: ``(lower, upper)`` of the value, by scale.
DEFAULT_BOUNDS = {"log": (1e-9, None), "decay": (0.0, 0.999)}
# The hyperparameter that the guard backs off and that the scale search sets.
LEARNING_RATE = "learning_rate"


def as_names(hyperparams: str | Sequence[str]) -> tuple[str, ...]:
  """The names to climb, as a tuple: one or more, none repeated."""
  names = (hyperparams,) if isinstance(hyperparams, str) else hyperparams
  if not isinstance(names, Sequence) or not all(
    isinstance(n, str) for n in names
  ):
    raise TypeError(
      "hyperparams must be a name or a sequence of names of the inner "
      f"optimizer's hyperparameters, got hyperparams={hyperparams!r}."
    )
  names = tuple(names)
  if not names:
    raise ValueError("hyperparams must name at least one hyperparameter.")
  if len(set(names)) != len(names):
    raise ValueError(f"hyperparams has repeated names: {names!r}.")
  return names


def resolve_scales(
  names: tuple[str, ...], scales: Mapping[str, str] | None
) -> tuple[str, ...]:
  """Each name's scale: as given, else ``"decay"`` for decay-like names."""
  scales = dict(scales or {})
  unknown = sorted(set(scales) - set(names))
  if unknown:
    raise ValueError(
      f"scales names {unknown}, which are not climbed (hyperparams={names!r})."
    )
  for name, scale in scales.items():
    _validation.check_choice(f"scales[{name!r}]", scale, SCALES)
  return tuple(
    scales.get(n, "decay" if n in DECAY_NAMES else "log") for n in names
  )


def resolve_bounds(
  names: tuple[str, ...],
  kinds: tuple[str, ...],
  bounds: Mapping[str, tuple[Any, Any]] | None,
) -> tuple[tuple[float, float], ...]:
  """Each name's ``(lower, upper)`` bounds, checked against its scale."""
  bounds = dict(bounds or {})
  unknown = sorted(set(bounds) - set(names))
  if unknown:
    raise ValueError(
      f"bounds names {unknown}, which are not climbed (hyperparams={names!r})."
    )
  resolved = []
  for name, kind in zip(names, kinds, strict=True):
    lo, hi = bounds.get(name, DEFAULT_BOUNDS[kind])
    if hi is None:
      hi = np.inf
    valid = (
      _validation.is_concrete_number(lo)
      and _validation.is_concrete_number(hi)
      and lo < hi
      and (lo > 0 if kind == "log" else 0 <= lo and hi < 1)
    )
    if not valid:
      domain = (
        "0 < lower < upper" if kind == "log" else "0 <= lower < upper < 1"
      )
      raise ValueError(
        f"bounds[{name!r}] must be numbers (lower, upper) with {domain} (the "
        f"{kind!r} scale), got {(lo, hi)!r}."
      )
    resolved.append((float(lo), float(hi)))
  return tuple(resolved)


def check_inner_state(
  inner_state: Any,
  names: tuple[str, ...],
  kinds: tuple[str, ...],
  bounds: tuple[tuple[float, float], ...],
  guard: bool,
) -> None:
  """Raises a clear error unless ``inner_state`` can be climbed."""
  hyperparams = getattr(inner_state, "hyperparams", None)
  if not isinstance(hyperparams, Mapping) or not hasattr(
    inner_state, "_replace"
  ):
    raise TypeError(
      "climb needs an inner optimizer built with optax.inject_hyperparams, "
      "whose state holds its hyperparameters in a `hyperparams` dict, for "
      "example optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, "
      f"momentum=0.9). Its init returned a {type(inner_state).__name__}, "
      "which has no `hyperparams`."
    )
  scheduled = getattr(inner_state, "hyperparams_states", None) or {}
  for name, kind, (lo, hi) in zip(names, kinds, bounds, strict=True):
    if name not in hyperparams:
      raise ValueError(
        f"climb: {name!r} is not a hyperparameter of the inner optimizer, "
        f"whose state has {sorted(hyperparams)}. Give it as a number to the "
        "factory wrapped by optax.inject_hyperparams (optax.sgd's momentum "
        "defaults to None: pass momentum=0.0 to climb it)."
      )
    if name in scheduled:
      raise ValueError(
        f"climb: the hyperparameter {name!r} is a schedule, which "
        "optax.inject_hyperparams recomputes at every step; climb it from a "
        "constant starting value instead."
      )
    value = hyperparams[name]
    shape = getattr(value, "shape", ())
    if shape != ():
      raise ValueError(
        f"climb: the hyperparameter {name!r} must be a scalar, got an array "
        f"of shape {shape}."
      )
    dtype = getattr(value, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
        f"climb: the hyperparameter {name!r} must be a floating-point "
        f"number, got {value!r} (give it as a float, e.g. 0.0, not 0)."
      )
    if not isinstance(value, jax.core.Tracer):
      # Compared in the value's precision: float32(0.999) > 0.999.
      low, high = (np.asarray(b).astype(dtype) for b in (lo, hi))
      value = float(value)
      if not low <= value <= high:
        raise ValueError(
          f"climb: the hyperparameter {name!r} starts at {value!r}, outside "
          f"its bounds [{lo!r}, {hi!r}] ({kind!r} scale); change it or pass "
          "bounds={...}."
        )
  if guard and LEARNING_RATE not in hyperparams:
    raise ValueError(
      "climb's guard backs off the inner optimizer's 'learning_rate' "
      f"hyperparameter, which it lacks (it has {sorted(hyperparams)}): pass "
      "guard=False."
    )
