"""``probe="vmap"`` scores both candidates in one batched program.

The claim behind ``"auto"`` meaning vmap on accelerators: each layer's matrix
product runs once, over a batch of the two candidates' weights, rather than
once per candidate. These tests read it off the programs themselves, for a
small MLP of three Dense layers, and run the same counting on the
alternatives (``probe="sequential"``, and a probe written as two calls of the
loss) to show that it tells them apart. Wall time and the launches a GPU
really makes can only be measured on one: see ``benchmarks/accelerator.sh``.

The updates are compiled with ``scale_search=None``: the search runs at the
first update only, and the program of an update with the search holds it and
the probe step side by side, under ``lax.cond`` (see the last test).
"""

from collections.abc import Mapping, Sequence
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import kernel_count
import optax_hillclimb as ohc

# Three Dense layers. The counting tells weights apart by their shapes, and a
# candidate axis by its size, 2: so all shapes differ and no size is 2.
SIZES = (12, 16, 8, 4)
BATCH = 5
WEIGHTS = {
  f"dense{i}": (fan_in, fan_out)
  for i, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES))
}


_DOT_GENERAL = re.compile(
  r"stablehlo\.dot_general\s.*:\s*\((tensor<[^>]*>),\s*(tensor<[^>]*>)\)"
)


def _tensor_shape(tensor_type: str) -> tuple[int, ...]:
  """``tensor<2x784x20xf32>`` -> ``(2, 784, 20)``."""
  dims = tensor_type[len("tensor<") : -1].split("x")[:-1]
  return tuple(int(d) for d in dims)


def dots_per_weight(
  stablehlo_text: str, weights: Mapping[str, Sequence[int]]
) -> dict[str, dict[str, int]]:
  """Counts the matrix products that take each weight, alone or batched.

  A product counts for a weight when one of its operands has the weight's
  shape (``"unbatched"``: one candidate's weight) or that shape with a leading
  axis of 2 (``"batched"``: both candidates' weights in one product). Shapes
  identify the weights, so give weights of distinct shapes, and none with an
  axis of 2. A product inside a loop body counts once, however often the
  loop runs.

  Args:
    stablehlo_text: ``jax.jit(f).lower(...).as_text()``, what JAX hands XLA
      before any backend rewrites it.
    weights: name -> shape of each weight matrix.

  Returns:
    name -> ``{"batched": n, "unbatched": n}``.
  """
  shapes = [tuple(shape) for shape in weights.values()]
  if len(set(shapes)) != len(shapes):
    raise ValueError(f"Weights of equal shapes cannot be told apart: {shapes}")
  out = {name: {"batched": 0, "unbatched": 0} for name in weights}
  for line in stablehlo_text.splitlines():
    match = _DOT_GENERAL.search(line)
    if not match:
      continue
    operands = {_tensor_shape(t) for t in match.groups()}
    for name, shape in weights.items():
      shape = tuple(shape)
      out[name]["unbatched"] += shape in operands
      out[name]["batched"] += (2, *shape) in operands
  return out


def each_layer(batched: int, unbatched: int) -> dict[str, dict[str, int]]:
  """What ``dots_per_weight`` returns when every layer has the same counts."""
  return {w: {"batched": batched, "unbatched": unbatched} for w in WEIGHTS}


def loss(params, x, y):
  h = x
  for i, layer in enumerate(params):
    h = h @ layer["w"] + layer["b"]
    if i < len(params) - 1:
      h = jnp.tanh(h)
  return jnp.mean((h - y) ** 2)


def _mlp_and_batch():
  rng = np.random.default_rng(0)
  params = [
    {
      "w": jnp.asarray(rng.normal(size=shape) / np.sqrt(shape[0]), jnp.float32),
      "b": jnp.zeros(shape[1], jnp.float32),
    }
    for shape in WEIGHTS.values()
  ]
  x = jnp.asarray(rng.normal(size=(BATCH, SIZES[0])), jnp.float32)
  y = jnp.asarray(rng.normal(size=(BATCH, SIZES[-1])), jnp.float32)
  return params, x, y


def _lowered_update(probe, **kwargs):
  """The hill-climbing update alone (gradients given), lowered.

  Two probes at every step, so that the first update (``scale_search=None``)
  is a probe step.
  """
  params, x, y = _mlp_and_batch()
  every_step = dict(decision="two_probes", every_k=1, lrlr=0.01)
  opt = ohc.scale_by_hillclimb(0.1, probe=probe, **(every_step | kwargs))

  def update(grads, state, params, x, y):
    return opt.update(grads, state, params, value_fn=loss, x=x, y=y)

  return jax.jit(update).lower(params, opt.init(params), params, x, y)


def _lowered_two_calls():
  """The probe written by hand as two evaluations of the loss."""
  params, x, y = _mlp_and_batch()

  def probe(params, direction, x, y):
    return jnp.stack(
      [
        loss(jax.tree.map(lambda p, u, c=c: p - c * u, params, direction), x, y)
        for c in (1.01, 0.99)
      ]
    )

  return jax.jit(probe).lower(params, params, x, y)


@pytest.fixture(scope="module")
def lowered():
  return {
    "vmap": _lowered_update("vmap", scale_search=None),
    "sequential": _lowered_update("sequential", scale_search=None),
    "two_calls": _lowered_two_calls(),
  }


# The StableHLO is what JAX hands XLA, the same on every backend: it shows
# directly whether a product takes both candidates' weights ([2, m, n]) or
# one's ([m, n]). The optimized HLO does not keep that form: XLA:CPU, for one,
# rewrites x @ W[2, m, n], whose x is shared, into x @ W'[m, 2n], and how it
# does so changes with the backend and XLA's version.
def test_vmap_probe_multiplies_each_layer_once_for_both_candidates(lowered):
  dots = dots_per_weight(lowered["vmap"].as_text(), WEIGHTS)
  assert dots == each_layer(batched=1, unbatched=0)


def test_counting_sees_one_dot_per_candidate_in_the_alternatives(lowered):
  # The control: if vmap mode evaluated the candidates one after the other,
  # or as two calls, the test above would see these counts and fail.
  sequential = dots_per_weight(lowered["sequential"].as_text(), WEIGHTS)
  # One product per layer, unbatched, in the body of a loop run twice.
  assert sequential == each_layer(batched=0, unbatched=1)
  two_calls = dots_per_weight(lowered["two_calls"].as_text(), WEIGHTS)
  assert two_calls == each_layer(batched=0, unbatched=2)


# The optimized HLO is what runs: whatever form XLA gives the products, it
# must run one per layer in vmap mode. count_launches counts a loop body's
# products as many times as the loop runs.
def test_compiled_vmap_probe_runs_one_matrix_product_per_layer(lowered):
  counts = kernel_count.count_launches(lowered["vmap"].compile().as_text())
  assert counts.matmuls == len(WEIGHTS)
  assert counts.loops == []
  assert counts.conditionals == 0


def test_compiled_alternatives_run_a_product_per_layer_and_candidate(lowered):
  sequential = kernel_count.count_launches(
    lowered["sequential"].compile().as_text()
  )
  assert sequential.loops == [2]
  assert sequential.matmuls == 2 * len(WEIGHTS)
  two_calls = kernel_count.count_launches(
    lowered["two_calls"].compile().as_text()
  )
  # XLA could merge the two first-layer products, which share their input;
  # the others take different inputs.
  assert two_calls.matmuls > len(WEIGHTS)


def test_with_the_scale_search_the_probe_step_is_still_batched():
  # The program then holds the search's loop over pairs of candidates and the
  # probe step: one product per layer over a pair in each. (The 49th
  # candidate, left over from the pairs, goes through a batch of one, [1, m,
  # n], which neither count includes.)
  text = _lowered_update("vmap").as_text()
  dots = dots_per_weight(text, WEIGHTS)
  assert dots == each_layer(batched=2, unbatched=0)
