"""A small byte-level decoder transformer (GPT-style, pre-norm), in Flax linen.

Two blocks of causal self-attention and a 4x MLP, width 96, 4 heads, learned
positions: about 250 thousand parameters, small enough to train a grid of
them on two CPU cores.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

VOCAB = 256  # bytes
LN2 = 0.6931471805599453


@dataclasses.dataclass(frozen=True)
class Config:
  """Shape of the model.

  Attributes:
    num_layers: number of transformer blocks.
    width: model (embedding) width.
    num_heads: attention heads; must divide ``width``.
    length: context length in bytes.
  """

  num_layers: int = 2
  width: int = 96
  num_heads: int = 4
  length: int = 64


class CausalSelfAttention(nn.Module):
  """Multi-head self-attention where each position sees only earlier ones."""

  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    batch, length, width = x.shape
    head = width // self.num_heads
    qkv = nn.Dense(3 * width, use_bias=False, name="qkv")(x)
    q, k, v = jnp.split(
      qkv.reshape(batch, length, 3 * self.num_heads, head), 3, axis=2
    )
    mask = nn.make_causal_mask(jnp.ones((batch, length), jnp.bool_))
    y = nn.dot_product_attention(q, k, v, mask=mask)
    return nn.Dense(width, name="out")(y.reshape(batch, length, width))


class Block(nn.Module):
  """Pre-norm residual block: attention, then a 4x GELU MLP."""

  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = x.shape[-1]
    x = x + CausalSelfAttention(self.num_heads)(nn.LayerNorm()(x))
    h = nn.Dense(4 * width)(nn.LayerNorm()(x))
    return x + nn.Dense(width)(nn.gelu(h))


class Transformer(nn.Module):
  """Next-byte logits [batch, length, 256] for bytes [batch, length]."""

  config: Config

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    c = self.config
    if c.width % c.num_heads:
      raise ValueError(f"num_heads={c.num_heads} must divide width={c.width}.")
    x = nn.Embed(VOCAB, c.width)(tokens)
    positions = self.param(
      "positions", nn.initializers.normal(0.02), (c.length, c.width)
    )
    x = x + positions[: tokens.shape[1]]
    for _ in range(c.num_layers):
      x = Block(c.num_heads)(x)
    return nn.Dense(VOCAB)(nn.LayerNorm()(x))


DEFAULT = Config()


def init(key: jax.Array, config: Config = DEFAULT):
  """Returns the parameters of a freshly initialised model."""
  tokens = jnp.zeros((1, config.length), jnp.int32)
  return Transformer(config).init(key, tokens)["params"]


def loss(params, windows: jax.Array, config: Config = DEFAULT) -> jax.Array:
  """Mean next-byte cross-entropy in nats over windows [batch, length + 1]."""
  windows = windows.astype(jnp.int32)
  logits = Transformer(config).apply({"params": params}, windows[:, :-1])
  return optax.softmax_cross_entropy_with_integer_labels(
    logits, windows[:, 1:]
  ).mean()


def bits_per_byte(nats: jax.Array) -> jax.Array:
  """Converts a cross-entropy in nats per byte to bits per byte."""
  return nats / LN2
