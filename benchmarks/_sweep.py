"""What a sweep over starting learning rates says: bands and shortfalls.

Scores are higher-is-better (accuracy); pass the negative of a
lower-is-better metric (bits per byte, a loss).
"""

import numpy as np


def robust_range(
  score: np.ndarray, lr0s: np.ndarray, best: float, within: float
) -> tuple[float, float, float]:
  """Widest run of consecutive lr0s whose score is within ``within`` of best.

  Args:
    score: mean score per lr0.
    lr0s: the grid, increasing.
    best: the best score of any method.
    within: how far below ``best`` a score may be.

  Returns:
    ``(decades, lowest lr0, highest lr0)`` (one lr0 alone is 0 decades);
    ``(0, nan, nan)`` if no lr0 is within.
  """
  good = score >= best - within
  widest, lo, hi = 0.0, np.nan, np.nan
  start = None
  for i, ok in enumerate([*good, False]):
    if ok and start is None:
      start = i
    elif not ok and start is not None:
      width = float(np.log10(lr0s[i - 1] / lr0s[start]))
      if np.isnan(lo) or width > widest:
        widest, lo, hi = width, lr0s[start], lr0s[i - 1]
      start = None
  return widest, lo, hi


def window(lr0s: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Which grid values lie in ``[lo, hi]`` (the grid is rounded)."""
  return (lr0s >= lo * (1 - 1e-6)) & (lr0s <= hi * (1 + 1e-6))


def shortfall(
  score: np.ndarray,
  reference: float | np.ndarray,
  lr0s: np.ndarray,
  where: np.ndarray,
  limit: float,
) -> dict:
  """How far ``score`` falls below ``reference`` over ``lr0s[where]``.

  Returns:
    The worst shortfall and its index and lr0, how many lr0s are within
    ``limit`` of the reference, of how many, and whether all are.
  """
  gap = np.where(where, reference - score, -np.inf)
  i = int(np.argmax(gap))
  return {
    "worst_shortfall": float(gap[i]),
    "index": i,
    "at_lr0": float(lr0s[i]),
    "within": int(np.sum(where & (gap <= limit))),
    "of": int(np.sum(where)),
    "met": bool(gap[i] <= limit),
  }
