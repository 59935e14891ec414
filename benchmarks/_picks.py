"""Candidate picks of the first update's scale search, and their swap.

A pick has the signature of ``optax_hillclimb._transform.pick_scale``:
``(candidates, losses) -> (index of the chosen candidate, whether the losses
differ at all)``. :func:`picking` swaps one in for the library's while a
training program is traced, so that a whole grid trains with it
(``benchmarks.first_step`` measures them side by side).
"""

from collections.abc import Callable
import contextlib

import jax.numpy as jnp

from optax_hillclimb import _transform

# The library's multiples: 49, a quarter decade apart, whose rates the
# search rounds to quarter decades (1, 1.78, 3.16, 5.62 times 10^k).
QUARTERS = _transform.SCALE_SEARCH
# The library's bound on the first step, whatever its value.
LIBRARY_BOUND = "library"
# One quarter decade: the ratio of neighbouring candidates.
NEXT_UP = 10**0.25


def fraction_of_best(fraction: float) -> Callable:
  """The smallest candidate with ``fraction`` of the best decrease."""

  def pick(candidates, losses):
    best = jnp.min(losses)
    reference = losses[jnp.argmin(candidates)]
    good_enough = losses <= best + (reference - best) * (1 - fraction)
    chosen = jnp.argmin(jnp.where(good_enough, candidates, jnp.inf))
    return chosen, jnp.any(losses != best)

  return pick


def decade_lower(pick: Callable) -> Callable:
  """``pick``'s choice, then the candidate ten times smaller (if any)."""

  def lower(candidates, losses):
    chosen, decided = pick(candidates, losses)
    lower = jnp.isclose(candidates, candidates[chosen] / 10, rtol=1e-3)
    return jnp.where(jnp.any(lower), jnp.argmax(lower), chosen), decided

  return lower


def only_where(admissible: Callable, pick: Callable) -> Callable:
  """``pick`` among the candidates that ``admissible`` lets through.

  The others score ``inf``; when none is admissible, the smallest candidate.
  """

  def restricted(candidates, losses):
    ok = admissible(candidates, losses)
    chosen, decided = pick(candidates, jnp.where(ok, losses, jnp.inf))
    smallest = jnp.argmin(candidates)
    chosen = jnp.where(jnp.any(ok), chosen, smallest)
    return chosen, decided & jnp.any(ok)

  return restricted


def next_rate_decreases(candidates, losses):
  """The next rate up (a quarter decade longer) scores no worse.

  The search's rates are rounded to quarter decades, so a longer step of a
  fixed ratio (the former ``2 c``) is not among them; the next candidate is.
  The largest candidate has none and is never admissible.
  """
  match = jnp.isclose(
    candidates[None, :], NEXT_UP * candidates[:, None], rtol=1e-3
  )
  longer = jnp.where(jnp.any(match, 1), losses[jnp.argmax(match, 1)], jnp.nan)
  return longer <= losses


HALF = fraction_of_best(0.5)
BEFORE = "half of best (before)"
AFTER = "half, step <= 0.2 norm(w) (after)"
# name: (pick, scale_search, longest first step as a fraction of the
# parameters' norm: a number, None for no bound or LIBRARY_BOUND).
PICKS = {
  BEFORE: (HALF, QUARTERS, None),
  "half, step <= 0.1 norm(w)": (HALF, QUARTERS, 0.1),
  AFTER: (HALF, QUARTERS, LIBRARY_BOUND),
  "half, step <= 0.3 norm(w)": (HALF, QUARTERS, 0.3),
  "tenth of best": (fraction_of_best(0.1), QUARTERS, None),
  "half, a decade lower": (decade_lower(HALF), QUARTERS, None),
  "half, next rate up decreases": (
    only_where(next_rate_decreases, HALF),
    QUARTERS,
    None,
  ),
}


@contextlib.contextmanager
def picking(pick: Callable, max_relative_step: float | str | None):
  """Swaps ``pick`` and the bound in for the library's while tracing.

  The scale search reads ``_transform.pick_scale`` and
  ``_transform.MAX_RELATIVE_STEP`` when it is traced; ``None`` lifts the
  bound (``inf``), ``LIBRARY_BOUND`` keeps the library's.
  """
  library = _transform.pick_scale, _transform.MAX_RELATIVE_STEP
  if max_relative_step is None:
    max_relative_step = float("inf")
  elif max_relative_step == LIBRARY_BOUND:
    max_relative_step = library[1]
  _transform.pick_scale = pick
  _transform.MAX_RELATIVE_STEP = max_relative_step
  try:
    yield
  finally:
    _transform.pick_scale, _transform.MAX_RELATIVE_STEP = library
