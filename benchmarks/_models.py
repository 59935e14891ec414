"""The benchmarks' models.

For training (:class:`benchmarks._train.Task`): the reference MLP
(784-20-10, initialised as PyTorch's ``nn.Linear``) and Flax's MNIST CNN.

For timing a step (:class:`Model`): the MLP, the CNN and a small transformer
LM, each with parameters, a batch of synthetic data of the benchmark's size,
and ``loss(params, batch) -> scalar``. Step time does not depend on what the
pixels or tokens are, so nothing is loaded from disk.
"""

import argparse
from collections.abc import Callable
import dataclasses
from typing import Any

from flax import linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import _example
from benchmarks import _train

NUM_INPUTS = 28 * 28
NUM_HIDDEN = 20
NUM_CLASSES = 10


def mlp_init(key: jax.Array) -> dict[str, jax.Array]:
  """Returns MLP parameters, initialised as PyTorch's ``nn.Linear`` does.

  Weights and biases are uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``: the
  blog post most likely used PyTorch defaults, and the scale of the first layer
  decides how raw 0-255 inputs behave.

  Args:
    key: a PRNG key.

  Returns:
    A dict with ``w1`` [784, 20], ``b1`` [20], ``w2`` [20, 10], ``b2`` [10].
  """
  k1, k2, k3, k4 = jax.random.split(key, 4)

  def uniform(k, shape, fan_in):
    bound = 1.0 / jnp.sqrt(fan_in)
    return jax.random.uniform(k, shape, jnp.float32, -bound, bound)

  return {
    "w1": uniform(k1, (NUM_INPUTS, NUM_HIDDEN), NUM_INPUTS),
    "b1": uniform(k2, (NUM_HIDDEN,), NUM_INPUTS),
    "w2": uniform(k3, (NUM_HIDDEN, NUM_CLASSES), NUM_HIDDEN),
    "b2": uniform(k4, (NUM_CLASSES,), NUM_HIDDEN),
  }


def mlp_logits(params: dict[str, jax.Array], images: jax.Array) -> jax.Array:
  """Returns the logits for ``images`` of shape [batch, 784]."""
  hidden = jax.nn.relu(images @ params["w1"] + params["b1"])
  return hidden @ params["w2"] + params["b2"]


def mlp_loss(
  params: dict[str, jax.Array], images: jax.Array, labels: jax.Array
) -> jax.Array:
  """Mean softmax cross-entropy over the batch."""
  return optax.softmax_cross_entropy_with_integer_labels(
    mlp_logits(params, images), labels
  ).mean()


def mlp_metrics(params, data: _train.Data) -> dict[str, jax.Array]:
  """Test accuracy and mean loss; non-finite parameters score as chance.

  A diverged network has NaN logits, whose argmax is class 0 and whose loss is
  NaN; the accuracy then counts class 0, as the post's 11.2% rows do.
  """
  out = mlp_logits(params, data.x_test)
  labels = data.y_test
  return {
    "accuracy": jnp.mean(jnp.argmax(out, axis=-1) == labels),
    "loss": optax.softmax_cross_entropy_with_integer_labels(out, labels).mean(),
  }


MLP = _train.Task("MLP 784-20-10", mlp_init, mlp_loss, mlp_metrics)


class CNN(nn.Module):
  """Flax's ``examples/mnist`` CNN: two conv + pool blocks, two dense layers."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(features=32, kernel_size=(3, 3))(x)
    x = nn.avg_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
    x = nn.Conv(features=64, kernel_size=(3, 3))(x)
    x = nn.avg_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(features=256)(x))
    return nn.Dense(features=10)(x)


def _cnn_init(key):
  return CNN().init(key, jnp.zeros((1, 28, 28, 1)))["params"]


def _cnn_loss(params, images, labels):
  logits = CNN().apply({"params": params}, images)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@jax.jit
def _cnn_correct(params, images, labels):
  logits = CNN().apply({"params": params}, images)
  return jnp.sum(jnp.argmax(logits, -1) == labels)


def _cnn_metrics(params, data: _train.Data) -> dict[str, float]:
  """Test accuracy, counted in chunks of 1000 images (not jittable)."""
  x, y = data.x_test, data.y_test
  hits = sum(
    int(_cnn_correct(params, x[i : i + 1000], y[i : i + 1000]))
    for i in range(0, len(y), 1000)
  )
  return {"accuracy": hits / len(y)}


# Train it with loop="python": on XLA:CPU its step ran 45x slower per step
# inside lax.scan (3 s against 0.07 s on a 2-core x86_64 CPU, jax 0.10.2).
CNN_TASK = _train.Task("Flax MNIST CNN", _cnn_init, _cnn_loss, _cnn_metrics)


def digits_init(key):
  keys = jax.random.split(key, 2)
  he = lambda k, shape: jax.random.normal(k, shape) * np.sqrt(2 / shape[0])
  return [
    {"w": he(keys[0], (64, 64)), "b": jnp.zeros(64)},
    {"w": he(keys[1], (64, 10)), "b": jnp.zeros(10)},
  ]


def digits_hidden(params, x):
  return jax.nn.relu(x @ params[0]["w"] + params[0]["b"])


def digits_logits(params, x):
  return digits_hidden(params, x) @ params[1]["w"] + params[1]["b"]


def digits_loss(params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(
    digits_logits(params, x), y
  ).mean()


def digits_dead_share(params, x):
  """The share of hidden units that output 0 on every input of ``x``."""
  return jnp.mean(jnp.all(digits_hidden(params, x) == 0, axis=0))


def digits_metrics(params, data: _train.Data) -> dict[str, jax.Array]:
  """Test loss and accuracy, and the hidden units dead on the training set."""
  return {
    "test_loss": digits_loss(params, data.x_test, data.y_test),
    "accuracy": jnp.mean(
      jnp.argmax(digits_logits(params, data.x_test), -1) == data.y_test
    ),
    "dead": digits_dead_share(params, data.x_train),
  }


# The digits classifier of safe_start and first_step.
DIGITS_TASK = _train.Task(
  "digits MLP 64-64-10", digits_init, digits_loss, digits_metrics
)


@dataclasses.dataclass(frozen=True)
class Model:
  """A model reduced to what a training step needs.

  Attributes:
    name: short name used in tables and JSON keys.
    description: one line saying what the model and its batch are.
    params: the parameters, a pytree of arrays.
    batch: ``(inputs, targets)`` of the benchmark's batch size.
    loss: ``loss(params, batch) -> scalar``, the mean training loss.
  """

  name: str
  description: str
  params: Any
  batch: tuple[jax.Array, jax.Array]
  loss: Callable[[Any, tuple[jax.Array, jax.Array]], jax.Array]


def _batch(seed: int, image_shape: tuple[int, ...], num_classes: int):
  """Uniform pixels in [0, 1] and random labels, made with NumPy.

  NumPy, because every eager jax.random call compiles a small program, and
  those compilations took seconds of a quick run.
  """
  rng = np.random.default_rng(seed)
  images = rng.uniform(size=image_shape).astype(np.float32)
  labels = rng.integers(0, num_classes, image_shape[0]).astype(np.int32)
  return jnp.asarray(images), jnp.asarray(labels)


def mlp(seed: int, batch_size: int = 1000) -> Model:
  """The reference experiment's MLP, 784-20-10, on a batch of 1000 images."""
  # Pixels in [0, 1]: with raw 0-255 pixels the line search jumps to its
  # largest step, kills every ReLU and then accepts one evaluation per step,
  # which times a dead network.
  images, labels = _batch(seed, (batch_size, NUM_INPUTS), NUM_CLASSES)

  def loss(params, batch):
    return mlp_loss(params, *batch)

  return Model(
    name="mlp",
    description=f"MLP 784-20-10, batch {batch_size}",
    params=jax.jit(mlp_init)(jax.random.key(seed)),
    batch=(images, labels),
    loss=loss,
  )


def cnn(seed: int, batch_size: int = 128) -> Model:
  """Flax's MNIST CNN (conv32-pool-conv64-pool-dense256-dense10), batch 128."""
  # The CNN of examples/mnist/models.py: the very model users train.
  model_class = _example.module("models").CNN
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: model_class(rngs=nnx.Rngs(0))))
  params = jax.jit(lambda: nnx.split(model_class(rngs=nnx.Rngs(seed)))[1])()
  images, labels = _batch(seed, (batch_size, 28, 28, 1), 10)

  def loss(params, batch):
    # The state holds only parameters (no BatchNorm, no dropout), so a pure
    # merge is safe under vmap and lax.map.
    model = nnx.merge(graphdef, params)
    images, labels = batch
    return optax.softmax_cross_entropy_with_integer_labels(
      model(images), labels
    ).mean()

  return Model(
    name="cnn",
    description=f"Flax MNIST CNN (NNX), batch {batch_size}",
    params=params,
    batch=(images, labels),
    loss=loss,
  )


def _dense(key: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
  return jax.random.normal(key, (fan_in, fan_out)) / jnp.sqrt(fan_in)


def _layer_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
  mean = x.mean(-1, keepdims=True)
  var = x.var(-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + 1e-6) * scale


def transformer(
  seed: int,
  batch_size: int = 16,
  seq_len: int = 64,
  vocab: int = 256,
  width: int = 64,
  num_layers: int = 2,
  num_heads: int = 4,
) -> Model:
  """A small decoder-only transformer LM on random tokens.

  Pre-norm blocks of causal multi-head attention and a 4x MLP, learned position
  embeddings, tied input and output embeddings; the loss is next-token
  cross-entropy.
  """

  @jax.jit
  def init(key):
    keys = iter(jax.random.split(key, 2 + 4 * num_layers))
    return {
      "embed": jax.random.normal(next(keys), (vocab, width)) * 0.02,
      "pos": jax.random.normal(next(keys), (seq_len, width)) * 0.02,
      "final_norm": jnp.ones(width),
      "layers": [
        {
          "norm1": jnp.ones(width),
          "qkv": _dense(next(keys), width, 3 * width),
          "out": _dense(next(keys), width, width),
          "norm2": jnp.ones(width),
          "up": _dense(next(keys), width, 4 * width),
          "down": _dense(next(keys), 4 * width, width),
        }
        for _ in range(num_layers)
      ],
    }

  params = init(jax.random.key(seed))
  tokens = np.random.default_rng(seed).integers(
    0, vocab, (batch_size, seq_len + 1), dtype=np.int32
  )
  tokens = jnp.asarray(tokens)
  head_dim = width // num_heads
  causal = jnp.tril(jnp.ones((seq_len, seq_len), bool))

  def attention(layer, x):
    q, k, v = jnp.split(x @ layer["qkv"], 3, axis=-1)
    split = lambda t: t.reshape(*t.shape[:2], num_heads, head_dim)
    q, k, v = split(q), split(k), split(v)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim)
    scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
    mixed = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores), v)
    return mixed.reshape(x.shape) @ layer["out"]

  def loss(params, batch):
    inputs, targets = batch
    x = params["embed"][inputs] + params["pos"]
    for layer in params["layers"]:
      x = x + attention(layer, _layer_norm(x, layer["norm1"]))
      h = _layer_norm(x, layer["norm2"])
      x = x + jax.nn.gelu(h @ layer["up"]) @ layer["down"]
    logits = _layer_norm(x, params["final_norm"]) @ params["embed"].T
    return optax.softmax_cross_entropy_with_integer_labels(
      logits, targets
    ).mean()

  return Model(
    name="transformer",
    description=(
      f"transformer LM, {num_layers} layers, width {width}, {num_heads} heads,"
      f" vocab {vocab}, batch {batch_size}x{seq_len} tokens"
    ),
    params=params,
    batch=(tokens[:, :-1], tokens[:, 1:]),
    loss=loss,
  )


# The models whose steps step_cost and kernel_count time and count.
MODEL_NAMES = ("mlp", "cnn", "transformer")
# Their quick sizes, which compile in seconds.
QUICK_SIZES = {
  "mlp": dict(batch_size=100),
  "cnn": dict(batch_size=8),
  "transformer": dict(
    batch_size=2, seq_len=16, width=32, num_layers=1, num_heads=2
  ),
}
# Learning rates only keep the timed runs finite; they do not change the work
# a step does.
SGD_LR = 1e-2


def build_model(name: str, quick: bool, seed: int = 0) -> Model:
  """One of ``MODEL_NAMES``, at its benchmark size or, if quick, small."""
  return globals()[name](seed, **(QUICK_SIZES[name] if quick else {}))


def model_list(models: str) -> list[str]:
  """``--models``: comma-separated names of ``MODEL_NAMES``."""
  wanted = models.split(",")
  unknown = sorted(set(wanted) - set(MODEL_NAMES))
  if unknown:
    raise argparse.ArgumentTypeError(
      f"unknown models {unknown}, expected some of {MODEL_NAMES}"
    )
  return wanted
