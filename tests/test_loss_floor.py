"""Where the loss cannot tell candidates apart, the learning rate stays put.

Ties (equal probe losses) used to raise the learning rate without end: on
separable data trained past zero loss, it reached 1e14 and the weights with
it. These tests pin the bounded behaviour: ties never climb above the highest
learning rate that unequal losses have chosen.
"""

import math

import _rules
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hillclimb as ohc

NUM_TRAIN, BATCH, STEPS = 200, 20, 3000


def separable_data(seed=0, dim=10, classes=3):
  """200 training points that three centroids separate with a margin; test
  points from the same mixture, without the margin (some are misclassified)."""
  rng = np.random.default_rng(seed)
  centers = 1.5 * rng.normal(size=(classes, dim))
  labels = rng.integers(0, classes, 20_000)
  points = centers[labels] + rng.normal(size=(20_000, dim))
  distances = np.sort(((points[:, None] - centers) ** 2).sum(-1), axis=1)
  nearest = np.argmin(((points[:, None] - centers) ** 2).sum(-1), axis=1)
  margin = (nearest == labels) & (distances[:, 1] - distances[:, 0] > 4.0)
  train = points[margin][:NUM_TRAIN], labels[margin][:NUM_TRAIN]
  test = points[-2000:], labels[-2000:]
  as_jax = lambda x, y: (jnp.asarray(x, jnp.float32), jnp.asarray(y))
  return as_jax(*train), as_jax(*test)


def cross_entropy(params, x, y):
  logits = x @ params["w"] + params["b"]
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train_linear_classifier(opt, x, y):
  """3000 steps of batch 20 over the 200 points, in order."""
  params = {"w": jnp.zeros((x.shape[1], 3)), "b": jnp.zeros(3)}
  epochs = STEPS * BATCH // NUM_TRAIN
  batches_x = jnp.tile(x.reshape(-1, BATCH, x.shape[1]), (epochs, 1, 1))
  batches_y = jnp.tile(y.reshape(-1, BATCH), (epochs, 1))

  def step(carry, batch):
    params, state = carry
    bx, by = batch
    value, grads = jax.value_and_grad(cross_entropy)(params, bx, by)
    updates, state = opt.update(
      grads, state, params, value_fn=cross_entropy, value=value, x=bx, y=by
    )
    return (optax.apply_updates(params, updates), state), value

  init = (params, opt.init(params))
  (params, state), losses = jax.jit(lambda c, b: jax.lax.scan(step, c, b))(
    init, (batches_x, batches_y)
  )
  return params, state, losses


def weight_norm(params):
  return float(optax.tree.norm(params))


@pytest.mark.slow
@pytest.mark.parametrize("make", [ohc.hillclimb, ohc.hillclimb_adam])
@pytest.mark.parametrize("rule", ["defaults", "every_step"])
def test_training_past_zero_loss_keeps_lr_and_weights_bounded(make, rule):
  (x, y), (x_test, y_test) = separable_data()
  settings = _rules.EVERY_STEP if rule == "every_step" else {}
  opt = make(1e-3, **settings)
  params, state, losses = train_linear_classifier(opt, x, y)
  if rule == "every_step":
    # The data are separable: deciding on the batch that made the step, most
    # batch losses reach exactly 0.0 in float32, where every probe ties.
    assert np.mean(np.asarray(losses) == 0.0) > 0.5
  sgd_params, _, _ = train_linear_classifier(optax.sgd(0.1), x, y)
  sgd_test_loss = float(cross_entropy(sgd_params, x_test, y_test))
  test_loss = float(cross_entropy(params, x_test, y_test))
  # Before the ceiling: lr ~4e14, weights ~1e14, test loss ~1e26. On
  # separable data longer steps keep winning: centred an eighth of the
  # window back (no total_steps), the defaults' rate reaches about 1e4.
  assert float(ohc.get_learning_rate(state)) < 1e5
  assert weight_norm(params) < 25 * weight_norm(sgd_params)
  assert np.isfinite(test_loss)
  assert test_loss < 10 * sgd_test_loss
  assert test_loss < 0.5 * np.log(3)  # Well under chance (1.1).


@pytest.mark.parametrize(
  "direction",
  [optax.ema(0.9, debias=True), optax.scale_by_adam()],
  ids=["hillclimb", "hillclimb_adam"],
)
@pytest.mark.parametrize("tie_break", ["up", "down"])
def test_a_loss_that_ignores_the_parameters_keeps_everything_finite(
  direction, tie_break
):
  # Every probe ties, so nothing is ever decided: the learning rate stays at
  # lr0 ("up": the ceiling is lr0) or falls at each of the 14 decisions
  # ("down": at steps 1, 2, 4, ..., 64, then in windows that grow with the
  # run, at 128, 256, 384, 512, 768, 1024 and 1536; by 10%, 10%, 15%, ...,
  # growing by half up to 50%), and random nonzero directions move the
  # parameters by lr * u, a finite random walk.
  # The aliases' chains, with each tie break.
  opt = optax.chain(
    direction, ohc.scale_by_hillclimb(1e-2, tie_break=tie_break)
  )
  params = jnp.ones(5)
  value_fn = lambda p: jnp.asarray(2.3)

  def step(carry, key):
    params, state = carry
    grads = jax.random.normal(key, (5,))
    updates, state = opt.update(grads, state, params, value_fn=value_fn)
    return (optax.apply_updates(params, updates), state), None

  keys = jax.random.split(jax.random.key(0), 2000)
  (params, state), _ = jax.jit(lambda c, k: jax.lax.scan(step, c, k))(
    (params, opt.init(params)), keys
  )
  lr = float(ohc.get_learning_rate(state))
  falls = [1 - min(0.1 * 1.5 ** max(n - 1, 0), 0.5) for n in range(14)]
  expected = 1e-2 if tie_break == "up" else 1e-2 * math.prod(falls)
  assert lr == pytest.approx(expected)
  assert bool(jnp.all(jnp.isfinite(params)))
  assert float(jnp.max(jnp.abs(params))) < 10.0
