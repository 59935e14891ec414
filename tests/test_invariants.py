"""Properties that hold on every step, checked on random problems.

- The learning rate is finite and inside [min_learning_rate,
  max_learning_rate].
- A rejected step returns exactly zero updates, even for a non-finite
  direction.
- After an accepted step that the rule scored, the parameters are finite: a
  "two_probes" decision whose probes were finite, or any step of "stretch"
  without ``value`` (the guard scores the step about to be taken).

Each rule of ``decision`` is drawn as often as the others (even seeds draw
"stretch", odd ones "two_probes"), with and without ``value``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hillclimb as ohc
from optax_hillclimb import _transform


def random_problem(rng):
  """A small tanh regression with random data and a random loss scale."""
  dim, hidden = rng.integers(1, 6), rng.integers(1, 6)
  params = {
    "w1": jnp.asarray(rng.normal(size=(dim, hidden)), jnp.float32),
    "w2": jnp.asarray(rng.normal(size=(hidden,)), jnp.float32),
  }
  x = jnp.asarray(rng.normal(size=(8, dim)), jnp.float32)
  y = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
  scale = float(10.0 ** rng.uniform(-3, 3))
  explosive = bool(rng.integers(2))

  def loss(p):
    residual = jnp.tanh(x @ p["w1"]) @ p["w2"] - y
    # The explosive loss overflows to inf for large steps.
    if explosive:
      return scale * jnp.mean(jnp.exp(jnp.abs(residual)))
    return scale * jnp.mean(residual**2)

  return params, loss


def random_optimizer(rng, decision):
  min_lr = float(10.0 ** rng.uniform(-9, -5))
  max_lr = [None, float(10.0 ** rng.uniform(0, 3))][rng.integers(2)]
  lr0 = float(10.0 ** rng.uniform(np.log10(min_lr), np.log10(max_lr or 1e3)))
  # The aliases' directions, before the rule with every setting drawn.
  direction = [optax.ema(0.9, debias=True), optax.scale_by_adam()][
    rng.integers(2)
  ]
  settings = dict(
    decision=decision,
    lrlr=float(rng.uniform(0.01, 0.9)),
    every_k=int(rng.integers(1, 4)),
    min_learning_rate=min_lr,
    max_learning_rate=max_lr,
    guard=bool(rng.integers(2)),
    guard_rtol=float(rng.uniform(0, 2)),
    lrlr_growth=float(rng.uniform(1, 3)),
    tie_break=["up", "down"][rng.integers(2)],
    scale_search=[None, _transform.SCALE_SEARCH][rng.integers(2)],
  )
  if decision == "stretch" and rng.integers(2):
    settings["total_steps"] = int(rng.integers(10, 80))
  opt = optax.chain(direction, ohc.scale_by_hillclimb(lr0, **settings))
  return opt, settings


# A third of the seeds in the quick run, all of them with the slow tests.
@pytest.mark.parametrize(
  "seed",
  [
    pytest.param(seed, marks=() if seed < 8 else pytest.mark.slow)
    for seed in range(24)
  ],
)
def test_invariants_on_random_problems(seed):
  rng = np.random.default_rng(seed)
  params, loss = random_problem(rng)
  decision = _transform.DECISIONS[seed % 2]
  opt, settings = random_optimizer(rng, decision)
  with_value = bool(rng.integers(2))
  min_lr, max_lr = settings["min_learning_rate"], settings["max_learning_rate"]
  # Some steps get a direction with a non-finite entry, as after an overflow.
  poisoned = rng.random(60) < 0.1

  @jax.jit
  def step(params, state, poison):
    value, grads = jax.value_and_grad(loss)(params)
    grads = jax.tree.map(lambda g: jnp.where(poison, jnp.nan, g), grads)
    extra = {"value": value} if with_value else {}
    updates, state = opt.update(grads, state, params, value_fn=loss, **extra)
    return updates, state

  state = opt.init(params)
  for poison in poisoned:
    hillclimb = state[-1]
    updates, state = step(params, state, poison)
    new = state[-1]
    lr = float(new.learning_rate)
    assert np.isfinite(lr)
    assert 0 < lr <= (max_lr or np.inf) * (1 + 1e-6)
    rejected = int(new.num_rejected) > int(hillclimb.num_rejected)
    # Only the guard takes the rate below min_learning_rate (so that a state
    # where every step is rejected cannot last); below it, it never falls
    # otherwise.
    previous = float(hillclimb.learning_rate)
    assert lr >= min_lr * (1 - 1e-6) or rejected or lr >= previous
    if rejected:
      for leaf in jax.tree.leaves(updates):
        np.testing.assert_array_equal(leaf, np.zeros_like(leaf))
    probed = int(hillclimb.count) % settings["every_k"] == 0
    finite_probes = np.isfinite(float(new.loss_up)) or np.isfinite(
      float(new.loss_down)
    )
    params = optax.apply_updates(params, updates)
    if decision == "two_probes":
      scored = probed and finite_probes
    else:
      scored = not with_value and settings["guard"]
    if scored and not rejected:
      assert all(
        bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params)
      )
