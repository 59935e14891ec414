"""The tutorial's code: an MLP on sklearn's 8x8 digits, three optimizers.

    python docs/tutorial.py docs/_static/tutorial.png

trains the same MLP from the same initialization on the same batches with
``optax_hillclimb.hillclimb_adam`` (from a starting rate ten times too low)
and with ``optax.adam`` at three fixed rates, prints each one's final training
loss, test accuracy and learning rate, and plots the training loss and the
learning rate against the step. ``tests/project/test_tutorial.py`` runs it;
``docs/tutorial.md`` includes it.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import optax_hillclimb

# [START data]
NUM_STEPS, BATCH_SIZE = 400, 64


def load_data(seed=0):
  """The 1797 digits, pixels scaled to [0, 1], split 1437 train / 360 test."""
  digits = load_digits()
  x = (digits.data / 16.0).astype(np.float32)
  y = digits.target.astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(y))
  x, y = x[order], y[order]
  return (x[:1437], y[:1437]), (x[1437:], y[1437:])


def batches(x, y, seed=0):
  """NUM_STEPS batches of BATCH_SIZE, reshuffled every epoch."""
  rng = np.random.default_rng(seed)
  step = 0
  while True:
    order = rng.permutation(len(y))
    for start in range(0, len(y) - BATCH_SIZE + 1, BATCH_SIZE):
      if step == NUM_STEPS:
        return
      idx = order[start : start + BATCH_SIZE]
      yield x[idx], y[idx]
      step += 1


# [END data]


# [START model]
def init_mlp(key, sizes=(64, 64, 10)):
  keys = jax.random.split(key, len(sizes) - 1)
  return [
    {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
    for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
  ]


def mlp(params, x):
  for layer in params[:-1]:
    x = jax.nn.relu(x @ layer["w"] + layer["b"])
  return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
  logits = mlp(params, x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# [END model]


# [START train]
def train(opt, data, fixed_rate=None, seed=0):
  """Trains one MLP; returns its parameters, losses and learning rates.

  The rates are two arrays: the climbed one, and the one applied (shorter in
  the last fifth of a run told its length).
  """

  @jax.jit
  def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    # The current batch (x, y) reaches value_fn by name. optax.adam ignores
    # these extra arguments, so one step serves both.
    updates, opt_state = opt.update(
      grads, opt_state, params, value_fn=loss_fn, value=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), opt_state, loss

  (x_train, y_train), _ = data
  params = init_mlp(jax.random.key(seed))
  opt_state = opt.init(params)
  losses, rates, applied = [], [], []
  for x, y in batches(x_train, y_train, seed):
    params, opt_state, loss = train_step(params, opt_state, x, y)
    losses.append(float(loss))
    if fixed_rate is None:  # the hill-climbed rate, from the state
      rates.append(float(optax.tree.get(opt_state, "learning_rate")))
      applied.append(float(optax_hillclimb.get_learning_rate(opt_state)))
    else:
      rates.append(fixed_rate)
      applied.append(fixed_rate)
  return params, np.array(losses), np.array(rates), np.array(applied)


def optimizers():
  """Name: (optimizer, its fixed learning rate or None if it climbs)."""
  lr0 = 1e-4  # a poor guess: ten times below Adam's usual 1e-3
  return {
    "hillclimb_adam, lr0 1e-4": (
      optax_hillclimb.hillclimb_adam(lr0, total_steps=NUM_STEPS),
      None,
    ),
    "adam, 1e-4": (optax.adam(lr0), lr0),
    "adam, 1e-3": (optax.adam(1e-3), 1e-3),
    "adam, 3e-2": (optax.adam(3e-2), 3e-2),
  }


# [END train]


def accuracy(params, x, y):
  return float(jnp.mean(jnp.argmax(mlp(params, x), -1) == y))


# [START plot]
def plot(runs, path):
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
  steps = np.arange(1, NUM_STEPS + 1)
  window = 20  # a moving average, so that the batches' noise does not hide
  for name, (_, losses, rates, applied) in runs.items():
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    (line,) = ax_loss.plot(steps[window - 1 :], smooth, label=name)
    ax_lr.plot(steps, rates, color=line.get_color(), label=name)
    if name.startswith("hillclimb"):
      # Told total_steps, it shortens the steps of the last fifth linearly
      # to zero; the climbed rate in the state is not shortened.
      ax_lr.plot(
        steps,
        applied,
        ls="--",
        color=line.get_color(),
        label="hillclimb_adam, as applied",
      )
  ax_loss.set(
    xlabel="step",
    ylabel=f"training loss (mean of {window} batches)",
    yscale="log",
    title="training loss",
  )
  ax_lr.set(
    xlabel="step", ylabel="learning rate", yscale="log", title="learning rate"
  )
  ax_lr.axvspan(0.8 * NUM_STEPS, NUM_STEPS, color="gray", alpha=0.15)
  ax_lr.set_ylim(1e-6, 1e-1)
  for ax in (ax_loss, ax_lr):
    ax.grid(True, which="both", alpha=0.3)
  ax_loss.legend(loc="lower left", fontsize=8)
  ax_lr.legend(loc="lower left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


# [END plot]


def main(path):
  data = load_data()
  runs = {
    name: train(opt, data, fixed_rate)
    for name, (opt, fixed_rate) in optimizers().items()
  }
  x_test, y_test = data[1]
  for name, (params, losses, rates, _) in runs.items():
    print(
      f"{name:26s} final training loss {losses[-20:].mean():.4f}  "
      f"test accuracy {100 * accuracy(params, x_test, y_test):.1f}%  "
      f"learning rate {rates[-1]:.2g}"
    )
  plot(runs, path)
  return runs


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "tutorial.png")
