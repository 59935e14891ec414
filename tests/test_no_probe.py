"""decision="no_probe": the sign of the next gradient along the last step.

On f(w) = w^2 / 2 (gradient w), a step from w along u = w with learning rate
lr lands at w (1 - lr), where the gradient is w (1 - lr): its dot product
with u is w^2 (1 - lr), positive (too short) exactly when lr < 1, the line
minimum.
"""

import functools

import jax
import jax.numpy as jnp
import optax
from optax._src import test_utils
import pytest

import optax_hillclimb as ohc

rule = functools.partial(
  ohc.scale_by_hillclimb, scale_search=None, decision="no_probe"
)


def half_square(w):
  """f(w) = w^2 / 2, whose gradient is w."""
  return 0.5 * jnp.sum(w**2)


def run(opt, w, steps, **kwargs):
  """Steps of SGD on half_square; the learning rate and w after each."""
  state = opt.init(w)
  rates, points = [], []
  for _ in range(steps):
    grad = jax.grad(half_square)(w)
    updates, state = opt.update(grad, state, w, grad=grad, **kwargs)
    w = optax.apply_updates(w, updates)
    rates.append(float(state.learning_rate))
    points.append(float(w[0]))
  return rates, points, state


def test_the_first_step_holds_then_a_short_step_raises():
  # lr = 0.25, s = 0.5: step 1 has no previous step and holds (w: 2 -> 1.5);
  # step 2: g.u = 1.5 * 2 > 0, rise to 0.375 (w: 1.5 -> 0.9375).
  rates, points, state = run(
    rule(0.25, lrlr=0.5, lrlr_growth=1.0), jnp.array([2.0]), 2
  )
  assert rates == pytest.approx([0.25, 0.375])
  assert points == pytest.approx([1.5, 0.9375])
  test_utils.assert_trees_all_close(state.previous_direction, jnp.array([1.5]))
  assert int(state.streak) == 1


def test_a_step_past_the_minimum_lowers():
  # lr = 1.5: w: 2 -> -1; then g.u = -1 * 2 < 0: fall to 0.75,
  # w: -1 -> -0.25.
  rates, points, _ = run(rule(1.5, lrlr=0.5), jnp.array([2.0]), 2)
  assert rates == pytest.approx([1.5, 0.75])
  assert points == pytest.approx([-1.0, -0.25])


def test_it_needs_no_value_fn_without_the_scale_search():
  # Nothing is evaluated: no value_fn, no params.
  opt = rule(0.25, lrlr=0.5)
  grad = jnp.array([2.0])
  state = opt.init(grad)
  updates, state = opt.update(grad, state, grad=grad)
  test_utils.assert_trees_all_close(updates, jnp.array([-0.5]))


def test_the_scale_search_runs_first_and_needs_value_fn():
  opt = ohc.scale_by_hillclimb(1e-3, decision="no_probe")
  w = jnp.array([2.0])
  with pytest.raises(TypeError, match=r"scale search.*scale_search=None"):
    opt.update(w, opt.init(w), w, grad=w)
  _, state = opt.update(w, opt.init(w), w, grad=w, value_fn=half_square)
  # The line minimum, 1, would move w by all of its norm; the first step is
  # bounded by 0.2 of it, so the search takes 0.1 (w: 2 -> 1.8).
  assert float(state.learning_rate) == pytest.approx(0.1)


def test_missing_grad_is_a_clear_error():
  opt = rule(0.1)
  w = jnp.array([2.0])
  with pytest.raises(TypeError, match=r"no_probe.*needs grad="):
    opt.update(w, opt.init(w), w, value_fn=half_square)


def test_the_guard_rejects_a_blown_up_loss_and_the_next_step_holds():
  # lr = 3: w: 2 -> -4 (loss 2 -> 8). Step 2 sees value 8 > 2 + 1.0 * 2:
  # rejected, zero update, lr halved to 1.5. Step 3 has no step to judge
  # (the last was rejected) and holds: w: -4 -> 2.
  opt = rule(3.0, lrlr=0.5)
  w, state, rates, points = jnp.array([2.0]), None, [], []
  state = opt.init(w)
  for _ in range(3):
    value, grad = jax.value_and_grad(half_square)(w)
    updates, state = opt.update(grad, state, w, grad=grad, value=value)
    w = optax.apply_updates(w, updates)
    rates.append(float(state.learning_rate))
    points.append(float(w[0]))
  assert rates == pytest.approx([3.0, 1.5, 1.5])
  assert points == pytest.approx([-4.0, -4.0, 2.0])
  assert int(state.num_rejected) == 1


def test_a_non_finite_gradient_is_rejected():
  opt = rule(0.1)
  w = jnp.array([2.0])
  state = opt.init(w)
  _, state = opt.update(w, state, w, grad=w)
  bad = jnp.array([jnp.nan])
  updates, state = opt.update(bad, state, w, grad=bad)
  test_utils.assert_trees_all_equal(updates, jnp.zeros(1))
  assert int(state.num_rejected) == 1
  test_utils.assert_trees_all_equal(state.previous_direction, jnp.zeros(1))


@pytest.mark.parametrize(
  ("tie_break", "expected"), [("up", [0.15, 0.2, 0.2]), ("down", [0.05, 0.025])]
)
def test_a_zero_dot_product_follows_tie_break(tie_break, expected):
  # grad (1, 1) against the previous direction (1, -1): g.u = 0.
  opt = rule(0.2, lrlr=0.5, lrlr_growth=1.0, tie_break=tie_break)
  state = opt.init(jnp.zeros(2))._replace(
    learning_rate=jnp.asarray(0.1), previous_direction=jnp.array([1.0, -1.0])
  )
  grad = jnp.array([1.0, 1.0])
  rates = []
  for _ in expected:
    state = state._replace(previous_direction=jnp.array([1.0, -1.0]))
    _, state = opt.update(grad, state, grad=grad)
    rates.append(float(state.learning_rate))
  assert rates == pytest.approx(expected)


def test_every_k_decides_only_on_its_steps():
  # lr 0.25, s 0.5, every_k 2: count 0 holds (no previous step), count 1
  # skips, count 2 rises (w keeps its sign): 0.25, 0.25, 0.375.
  rates, _, _ = run(rule(0.25, lrlr=0.5, every_k=2), jnp.array([2.0]), 3)
  assert rates == pytest.approx([0.25, 0.25, 0.375])


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_state_types_are_stable_and_jit_does_not_recompile(dtype):
  target = jnp.array([1.0, -2.0, 0.5], dtype)

  def loss(w):
    return jnp.sum((w - target).astype(jnp.float32) ** 2)

  opt = ohc.hillclimb_adam(1e-3, decision="no_probe")

  @jax.jit
  def step(w, state):
    value, grad = jax.value_and_grad(loss)(w)
    updates, state = opt.update(
      grad, state, w, value_fn=loss, value=value, grad=grad
    )
    return optax.apply_updates(w, updates), state

  w = jnp.zeros(3, dtype)
  state = opt.init(w)
  types = jax.tree.map(jax.typeof, state)
  assert state[1].previous_direction.dtype == dtype
  w, state = step(w, state)
  with test_utils.log_compilations() as compilation_logs:
    for _ in range(100):
      w, state = step(w, state)
  assert not compilation_logs
  assert jax.tree.map(jax.typeof, state) == types
  assert w.dtype == dtype
  assert float(loss(w)) < 1e-2 * float(loss(jnp.zeros(3, dtype)))


def test_init_on_abstract_and_leafless_inputs():
  opt = ohc.hillclimb(0.1, decision="no_probe")
  abstract = opt.init(jax.ShapeDtypeStruct((2, 4), jnp.bfloat16))
  concrete = opt.init(jnp.zeros((2, 4), jnp.bfloat16))
  assert jax.tree.map(jax.typeof, abstract) == jax.tree.map(
    jax.typeof, concrete
  )
  empty = opt.init({})
  updates, _ = opt.update(
    {}, empty, {}, value_fn=lambda p: jnp.zeros(()), grad={}
  )
  assert updates == {}


@pytest.mark.parametrize("decision", ["one_probe", "no_probe"])
def test_inject_hyperparams_gives_the_same_updates(decision):
  hparams = {"learning_rate": 0.1, "lrlr": 0.2, "every_k": 2}
  opt = ohc.hillclimb_adam(**hparams, decision=decision)
  injected = optax.inject_hyperparams(ohc.hillclimb_adam)(
    **hparams, decision=decision
  )
  params = jnp.array([-1.0, 2.0])
  value_fn = lambda p: jnp.sum((p - 0.3) ** 2)

  def trajectory(opt):
    state, w, out = opt.init(params), params, []
    for _ in range(3):
      value, grad = jax.value_and_grad(value_fn)(w)
      updates, state = opt.update(
        grad, state, w, value_fn=value_fn, value=value, grad=grad
      )
      w = optax.apply_updates(w, updates)
      out.append(updates)
    return out

  test_utils.assert_trees_all_close(
    trajectory(injected), trajectory(opt), rtol=1e-4
  )
