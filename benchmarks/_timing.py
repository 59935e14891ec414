"""Timing variants side by side on a noisy machine.

Nothing is timed alone: every variant runs in each round, interleaved
(A, B, C, A, B, C, ...) and starting from a different variant each round, so
that a slow spell of the machine hits all of them alike. Ratios are taken
within a round and summarised over rounds by their median and quartiles.
"""

from collections.abc import Callable, Mapping

import numpy as np


def interleaved_rounds(
  runners: Mapping[str, Callable[[int], float]],
  rounds: int,
  steps: int,
  chunk: int,
) -> dict[str, np.ndarray]:
  """Seconds taken by each chunk of steps, per variant: [rounds, chunks].

  Args:
    runners: ``runner(n)`` runs ``n`` steps of a variant and returns the
      seconds they took.
    rounds: number of rounds.
    steps: steps of every variant per round, a multiple of ``chunk``.
    chunk: consecutive steps of one variant before the next takes its turn.

  Returns:
    The seconds of every chunk of every round, by variant.
  """
  if steps % chunk:
    raise ValueError(f"steps={steps} is not a multiple of chunk={chunk}.")
  names = list(runners)
  seconds = {name: np.zeros((rounds, steps // chunk)) for name in names}
  for r in range(rounds):
    shift = r % len(names)
    order = names[shift:] + names[:shift]
    for c in range(steps // chunk):
      for name in order:
        seconds[name][r, c] = runners[name](chunk)
  return seconds


def round_ratios(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
  """Median and quartiles of the per-round ratios of ``a``'s time to ``b``'s."""
  per_round = a.sum(axis=1) / b.sum(axis=1)
  q1, median, q3 = np.percentile(per_round, [25, 50, 75])
  return {"median": float(median), "q1": float(q1), "q3": float(q3)}
