"""Our versions of optax's common optimizer checks, and composition with optax.

See optax/contrib/_common_test.py and optax/_src/sharding_test.py.
"""

import functools

import _rules
import jax
import jax.numpy as jnp
import optax
from optax._src import test_utils
from optax._src import utils
import pytest

import optax_hillclimb as ohc

FACTORIES = {
  "scale_by_hillclimb": functools.partial(ohc.scale_by_hillclimb, 0.1),
  "hillclimb": functools.partial(ohc.hillclimb, 0.1),
  "hillclimb_adam": functools.partial(ohc.hillclimb_adam, 0.1),
  "hillclimb_every_3": functools.partial(ohc.hillclimb, 0.1, every_k=3),
}


def parabola(params):
  return jnp.sum((params - jnp.array([1.0, -1.0, 1.0], params.dtype)) ** 2)


@pytest.fixture(params=sorted(FACTORIES))
def factory(request):
  return FACTORIES[request.param]


def test_extra_args_accepted_without_recompiling(factory):
  opt = factory()

  @jax.jit
  def step(params, state):
    value, grads = jax.value_and_grad(parabola)(params)
    updates, state = opt.update(
      grads,
      state,
      params,
      value_fn=parabola,
      value=value,
      unexpected_extra_args_your_optimizer_doesnt_expect=1,
    )
    return optax.apply_updates(params, updates), state

  params = jnp.array([-1.0, 10.0, 1.0])
  params, state = step(params, opt.init(params))
  with test_utils.log_compilations() as compilation_logs:
    params, state = step(params, state)
  assert not compilation_logs, "update recompiles on its second call"
  assert parabola(params) < parabola(jnp.array([-1.0, 10.0, 1.0]))


@pytest.mark.parametrize("search", [True, False])
@pytest.mark.parametrize(
  "name", ["scale_by_hillclimb", "hillclimb", "hillclimb_adam"]
)
def test_inject_hyperparams_gives_the_same_updates(name, search):
  factory = getattr(ohc, name)
  hparams = {"learning_rate": 0.1, "lrlr": 0.2, "every_k": 2}
  if not search:
    hparams["scale_search"] = None
  opt = factory(**hparams)
  injected = optax.inject_hyperparams(factory)(**hparams)
  params = [-jnp.ones((2, 3)), jnp.ones((2, 5, 2))]
  value_fn = lambda p: sum(jnp.sum((x - 0.3) ** 2) for x in p)

  def run(opt):
    update = jax.jit(functools.partial(opt.update, value_fn=value_fn))
    state = jax.jit(opt.init)(params)
    outputs = []
    for _ in range(3):
      grads = jax.grad(value_fn)(params)
      updates, state = update(grads, state, params)
      outputs.append(updates)
    return outputs, state

  updates, state = run(opt)
  injected_updates, injected_state = run(injected)
  # Injected hyperparameters are float32 arrays rather than Python floats,
  # which rounds Adam's bias corrections slightly differently.
  test_utils.assert_trees_all_close(injected_updates, updates, rtol=1e-4)
  test_utils.assert_trees_all_close(
    injected_state.inner_state, state, rtol=1e-4
  )
  if not search:  # Two probe steps (count 0 and 2) that both rise.
    assert float(ohc.get_learning_rate(injected_state)) == pytest.approx(
      0.1 * 1.2 * 1.2
    )


def test_injected_lrlr_can_be_changed_between_steps():
  opt = optax.inject_hyperparams(ohc.scale_by_hillclimb)(
    1.0, lrlr=0.1, scale_search=None, decision="two_probes"
  )
  params = jnp.zeros(1)
  state = opt.init(params)
  state.hyperparams["lrlr"] = jnp.asarray(0.5)
  _, state = opt.update(jnp.ones(1), state, params, value_fn=jnp.sum)
  assert float(ohc.get_learning_rate(state)) == pytest.approx(1.5)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_updates_keep_the_gradient_dtype(factory, dtype):
  opt = factory()
  params = jnp.array([1.0, 2.0, 3.0], dtype=dtype)
  value, grads = jax.value_and_grad(parabola)(params)
  update = jax.jit(functools.partial(opt.update, value_fn=parabola))
  updates, _ = update(grads, jax.jit(opt.init)(params), params, value=value)
  assert updates.dtype == params.dtype


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_multi_steps_accumulates_before_updating(dtype):
  opt = optax.MultiSteps(
    ohc.hillclimb(0.1, scale_search=None, **_rules.EVERY_STEP),
    every_k_schedule=4,
  )
  params = jnp.array([2.0, 2.0, 3.0], dtype=dtype)
  grads = jax.grad(parabola)(params)
  update = jax.jit(functools.partial(opt.update, value_fn=parabola))
  state = opt.init(params)
  for _ in range(3):
    updates, state = update(grads, state, params)
    test_utils.assert_trees_all_equal(updates, jnp.zeros_like(grads))
    assert float(ohc.get_learning_rate(state)) == pytest.approx(0.1)
  updates, state = update(grads, state, params)
  assert updates.dtype == params.dtype
  assert jnp.all(updates != 0)
  assert float(ohc.get_learning_rate(state)) != pytest.approx(0.1)


@pytest.mark.parametrize(
  "dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]
)
def test_state_is_dtype_shape_and_weak_type_stable(factory, dtype):
  with utils.x64_precision(dtype == jnp.float64):
    opt = factory()
    params = jnp.array([-1.0, 10.0, 1.0], dtype=dtype)

    @jax.jit
    def step(params, state):
      value, grads = jax.value_and_grad(parabola)(params)
      # Confuse the dtype of value on purpose.
      value = value.astype(jnp.bfloat16 if dtype == jnp.float16 else "float16")
      # lax.cond checks that both branches return identical types.
      cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
      updates, new_state = jax.lax.cond(
        cond,
        lambda: opt.update(
          grads, state, params, value_fn=parabola, value=value
        ),
        lambda: (params, state),
      )
      return optax.apply_updates(params, updates), new_state

    state = opt.init(params)
    for _ in range(3):
      params, state = step(params, state)
      assert params.dtype == dtype
    learning_rate = optax.tree.get(state, "learning_rate")
    assert learning_rate.dtype == (
      jnp.float64 if dtype == jnp.float64 else jnp.float32
    )
    assert not learning_rate.weak_type


def test_init_on_abstract_and_leafless_inputs(factory):
  opt = factory()
  abstract = opt.init(jax.ShapeDtypeStruct((2, 4, 8), jnp.bfloat16))
  concrete = opt.init(jnp.zeros((2, 4, 8), jnp.bfloat16))
  assert jax.tree.map(jax.typeof, abstract) == jax.tree.map(
    jax.typeof, concrete
  )
  empty = opt.init({})
  updates, _ = opt.update({}, empty, {}, value_fn=lambda p: jnp.zeros(()))
  assert updates == {}


def test_tree_get_finds_the_learning_rate(factory):
  state = optax.chain(optax.clip_by_global_norm(1.0), factory()).init(
    jnp.zeros(3)
  )
  learning_rate = optax.tree.get(state, "learning_rate")
  assert float(learning_rate) == pytest.approx(0.1)
  assert float(ohc.get_learning_rate(state)) == float(learning_rate)


def test_get_learning_rate_unwraps_flax_nnx_optimizer_state():
  nnx = pytest.importorskip("flax.nnx")

  model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, ohc.hillclimb(0.1), wrt=nnx.Param)
  learning_rate = ohc.get_learning_rate(optimizer.opt_state)
  assert isinstance(learning_rate, jax.Array)
  assert float(learning_rate) == pytest.approx(0.1)


def test_tree_map_params_touches_only_parameter_shaped_state():
  opt = ohc.hillclimb(0.1)
  params = {"w": jnp.ones((2, 3))}
  state = opt.init(params)
  doubled = optax.tree.map_params(opt, lambda v: v + 1, state)
  test_utils.assert_trees_all_equal(doubled[0].ema, {"w": jnp.ones((2, 3))})
  assert ohc.get_learning_rate(doubled) == ohc.get_learning_rate(state)


def test_chains_with_adam_and_a_line_search_sharing_value_fn():
  def loss(params, x, y):
    return jnp.mean((x @ params - y) ** 2)

  key_x, key_w = jax.random.split(jax.random.key(0))
  x = jax.random.normal(key_x, (32, 4))
  y = x @ jax.random.normal(key_w, (4,))
  opt = optax.chain(
    optax.scale_by_adam(),
    ohc.scale_by_hillclimb(1.0),
    optax.scale_by_backtracking_linesearch(max_backtracking_steps=15),
  )
  params = jnp.zeros(4)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    value, grad = jax.value_and_grad(loss)(params, x, y)
    updates, state = opt.update(
      grad, state, params, value=value, grad=grad, value_fn=loss, x=x, y=y
    )
    return optax.apply_updates(params, updates), state

  for _ in range(100):
    params, state = step(params, state)
  assert loss(params, x, y) < 1e-3 * loss(jnp.zeros(4), x, y)


def test_value_and_grad_from_state_still_finds_its_fields():
  def loss(params):
    return jnp.sum(params**2)

  # From lr0 as given: this is about the state's fields, not the start.
  opt = optax.chain(
    ohc.hillclimb(0.25, smoothing=0.0, scale_search=None),
    optax.scale_by_backtracking_linesearch(
      max_backtracking_steps=15, store_grad=True
    ),
  )
  params = jnp.array([1.0, 2.0])
  state = opt.init(params)
  value_and_grad = optax.value_and_grad_from_state(loss)
  for _ in range(5):
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(
      grad, state, params, value=value, grad=grad, value_fn=loss
    )
    params = optax.apply_updates(params, updates)
  assert loss(params) < 0.05


def test_apply_if_finite_skips_non_finite_gradients():
  opt = optax.apply_if_finite(ohc.hillclimb(0.1), max_consecutive_errors=3)
  params = jnp.array([1.0, 2.0, 3.0])
  state = opt.init(params)
  bad = jnp.array([jnp.nan, 1.0, 1.0])
  updates, bad_state = opt.update(bad, state, params, value_fn=parabola)
  test_utils.assert_trees_all_equal(updates, jnp.zeros(3))
  assert int(bad_state.notfinite_count) == 1
  test_utils.assert_trees_all_equal(bad_state.inner_state, state.inner_state)
  grads = jax.grad(parabola)(params)
  updates, good_state = opt.update(grads, bad_state, params, value_fn=parabola)
  assert jnp.all(jnp.isfinite(updates))
  assert jnp.any(updates != 0)
  assert int(good_state.notfinite_count) == 0
