"""The vmap and sequential probe modes take the same decisions."""

import jax
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc
from optax_hillclimb import _value_fn


def cnn_loss(params, images, labels):
  x = jax.lax.conv_general_dilated(
      images, params["conv"], (1, 1), "SAME", dimension_numbers=("NHWC",
      "HWIO", "NHWC")
  )  # fmt: skip
  x = jax.nn.relu(x).mean(axis=(1, 2))
  logits = x @ params["dense"]
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@pytest.mark.skipif(
  jax.default_backend() != "cpu", reason="auto resolves to vmap elsewhere"
)
def test_auto_is_sequential_on_cpu():
  assert _value_fn.resolve_probe_mode("auto") == "sequential"
  assert _value_fn.resolve_probe_mode("vmap") == "vmap"


@pytest.mark.skipif(
  jax.default_backend() == "cpu", reason="auto resolves to sequential on CPU"
)
def test_auto_is_vmap_on_an_accelerator():
  assert _value_fn.resolve_probe_mode("auto") == "vmap"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_modes_agree_on_a_small_convnet(seed):
  keys = jax.random.split(jax.random.key(seed), 4)
  params = {
    "conv": 0.3 * jax.random.normal(keys[0], (3, 3, 1, 4)),
    "dense": 0.3 * jax.random.normal(keys[1], (4, 10)),
  }
  images = jax.random.normal(keys[2], (8, 6, 6, 1))
  labels = jax.random.randint(keys[3], (8,), 0, 10)

  def train(mode):
    opt = ohc.hillclimb(0.3, lrlr=0.1, probe=mode)

    def step(carry, _):
      params, state = carry
      grads = jax.grad(cnn_loss)(params, images, labels)
      updates, state = opt.update(
        grads, state, params, value_fn=cnn_loss, images=images, labels=labels
      )
      return (optax.apply_updates(params, updates), state), state

    _, states = jax.lax.scan(step, (params, opt.init(params)), length=20)
    return states[1]

  vmapped, sequential = train("vmap"), train("sequential")
  test_utils.assert_trees_all_equal(vmapped.streak, sequential.streak)
  test_utils.assert_trees_all_close(
    vmapped.learning_rate, sequential.learning_rate, rtol=1e-6
  )
  test_utils.assert_trees_all_close(
    (vmapped.loss_up, vmapped.loss_down),
    (sequential.loss_up, sequential.loss_down),
    rtol=1e-5,
  )
