"""One model trained at several scales of its loss, and what the scale moves.

Multiplying a loss by a constant changes neither its minimiser nor its
gradient's direction, only the lengths of the steps that a rate gives: SGD's
best rate scales back, ``hillclimb``'s rates scale with it, and a scale
search of fixed multiples of lr0 may no longer reach the good ones.
:func:`train` runs ``_train.train_grid`` at each scale and stacks the grids;
the dead hidden units are counted after the steps of :data:`DEAD_AFTER`.
"""

from collections.abc import Callable
import dataclasses

import jax
import numpy as np

from benchmarks import _train
from optax_hillclimb import _transform

# The dead units are counted after these steps, and at the end.
DEAD_AFTER = (1, 20)


@dataclasses.dataclass(frozen=True)
class Problem:
  """A model at each scale of its loss, its data and protocol.

  The tasks' metrics include ``test_loss``, ``dead`` (the share of hidden
  units dead on the training set) and the one that ``score`` names.
  """

  name: str
  data: _train.Data
  task: Callable[[float], _train.Task]  # The model at a loss scale.
  score: str  # The metric that scores a run: "r2" or "accuracy".
  grid: dict  # train_grid's batch_size and epochs.
  loss_scales: tuple[float, ...] = (1.0,)
  raw_scale: float = 1.0  # The raw loss's scale, SGD's rates' unit.


def train(problem: Problem, method: Callable, lr0s, num_seeds: int) -> dict:
  """Trains a grid [loss scale, seed, lr0]; numpy arrays by metric.

  ``method(loss_scale)`` is the ``_train.Method`` to train at that scale.
  """
  runs = []
  for scale in problem.loss_scales:
    r = _train.train_grid(
      method(scale),
      problem.task(scale),
      problem.data,
      lr0s=lr0s,
      num_seeds=num_seeds,
      eval_at=DEAD_AFTER,
      **problem.grid,
    )
    # Each grid is its own compiled program; drop them as we go: XLA:CPU maps
    # memory for every program it keeps, and a few dozen grids exhaust the
    # kernel's limit on memory maps ("LLVM compilation error").
    jax.clear_caches()
    dead = [r.metrics_at[s]["dead"] for s in DEAD_AFTER] + [r.metrics["dead"]]
    runs.append(
      {
        "test_loss": r.metrics["test_loss"],
        "score": r.metrics[problem.score],
        "value": r.train_loss,
        "dead": np.stack(dead, -1),  # After step 1, step 20, the last.
        "learning_rate": r.learning_rate,
      }
    )
  return {k: np.stack([run[k] for run in runs]) for k in runs[0]}


def in_reach(problem: Problem, alias: str, sgd_rates, lr0s) -> np.ndarray:
  """Cells [loss scale, lr0] whose search reaches SGD's best rate.

  ``hillclimb`` steps along the gradient, so its rates scale with the loss
  as SGD's do: from lr0 the search reaches at most lr0 times the largest
  multiple. ``hillclimb_adam``'s steps do not depend on the loss's scale.
  """
  lr0s = np.asarray(lr0s)[None, :]
  if alias != "hillclimb":
    return np.ones((len(problem.loss_scales), lr0s.size), bool)
  scales = np.asarray(problem.loss_scales)[:, None]
  needed = np.asarray(sgd_rates)[:, None] * problem.raw_scale / scales
  return lr0s * max(_transform.SCALE_SEARCH) >= needed
