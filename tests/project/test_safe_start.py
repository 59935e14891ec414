"""From any starting learning rate up to 100, no destructive first steps.

A ReLU network trained from a far too large learning rate can lose most of its
units in the first steps, before the guard reacts: before the scale search,
``hillclimb_adam`` from lr0 = 1 or 100 left 50-60% of this MLP's units dead.
The first update now scores 49 rates, lr0 times quarter decades from 1e-6 to
1e6, each rounded to a quarter decade, so every lr0 starts from a searched
learning rate (benchmarks/safe_start.py has the full grid).
"""

import pytest

from benchmarks import safe_start
import optax_hillclimb as ohc

# Long (trains an MLP from every lr0 of a grid): the README's test command
# leaves it out (-m 'not slow'); CI runs it.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("make", [ohc.hillclimb, ohc.hillclimb_adam])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_lr0_up_to_100_trains_without_destroying_units(make, seed):
  results = {lr0: safe_start.train(make(lr0), seed) for lr0 in (1e-6, 1, 100)}
  for lr0, (accuracy, dead, growth) in results.items():
    assert accuracy > 0.9, (lr0, results)
    assert dead < 0.35, (lr0, results)
    # No accepted step more than doubles its batch's loss (the guard's bound).
    assert growth <= 2.0 + 1e-6, (lr0, results)
