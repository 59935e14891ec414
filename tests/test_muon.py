"""hillclimb_muon, and other directions chained before scale_by_hillclimb."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import test_utils
from optax._src import utils
import pytest

import optax_hillclimb as ohc

# Matrices go to Muon, the vector and the 3-d array to Adam.
PARAMS = {
  "w": jnp.arange(12.0).reshape(3, 4) / 10,
  "v": jnp.arange(8.0).reshape(4, 2) / 7,
  "b": jnp.ones(4),
  "c": jnp.ones((2, 2, 2)),
}


def _loss(params):
  return sum(jnp.sum(jnp.sin(x - 0.5) ** 2) for x in jax.tree.leaves(params))


def _run(opt, steps, params=PARAMS, loss=_loss):
  """``steps`` jitted updates; the updates and learning rates after each."""
  update = jax.jit(functools.partial(opt.update, value_fn=loss))
  state = opt.init(params)
  updates_seen, rates = [], []
  for _ in range(steps):
    updates, state = update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
    updates_seen.append(updates)
    rates.append(float(ohc.get_learning_rate(state)))
  return updates_seen, rates, state


def _by_hand(learning_rate, **settings):
  """The recipe written by hand: optax's Muon, its sign undone, the climb."""
  return optax.chain(
    optax.contrib.muon(1.0),
    optax.scale(-1.0),
    ohc.scale_by_hillclimb(learning_rate, **settings),
  )


def _newton_schulz_of_one(steps=5):
  """Where Muon's quintic sends a singular value of one after ``steps``."""
  a, b, c = 3.4445, -4.7750, 2.0315
  s = 1.0
  for _ in range(steps):
    s = a * s + b * s**3 + c * s**5
  return s


def test_first_update_by_hand():
  # A linear loss: the gradient is G = [[3, 0, 4, 0]] (a 1x4 matrix, rank
  # one, Frobenius norm 5) and g = [2, -3] (a bias). Muon's direction is
  # G / 5 with its singular value sent through five Newton-Schulz steps,
  # times the width scaling sqrt(4 / 1) = 2; Adam's first Nesterov step is
  # sign(g) (1 + 2 b1) / (1 + b1) = 2.8 / 1.9.
  grads = {"w": jnp.array([[3.0, 0.0, 4.0, 0.0]]), "b": jnp.array([2.0, -3.0])}
  params = jax.tree.map(jnp.zeros_like, grads)
  loss = lambda p: sum(jnp.sum(p[k] * grads[k]) for k in grads)
  lr0 = 0.01
  opt = ohc.hillclimb_muon(lr0, scale_search=None)
  (first, second), rates, _ = _run(opt, 2, params, loss)
  sigma = _newton_schulz_of_one()
  np.testing.assert_allclose(
    first["w"], -lr0 * sigma * 2 * np.array([[0.6, 0.0, 0.8, 0.0]]), rtol=1e-5
  )
  np.testing.assert_allclose(
    first["b"], -lr0 * 2.8 / 1.9 * np.array([1.0, -1.0]), rtol=1e-5
  )
  # The first decision (D = 0) holds the rate; along a linear loss a longer
  # stretch is better, so the second rises by lrlr = 0.1, and the direction
  # (the same gradient again) is unchanged for Muon.
  assert rates == pytest.approx([lr0, lr0 * 1.1])
  np.testing.assert_allclose(second["w"], 1.1 * first["w"], rtol=1e-5)


def test_updates_are_minus_the_climbed_rate_times_optax_muon():
  # optax.contrib.muon(1.0) returns -u; the alias returns -eta u, with eta
  # the rate the step's decision left (the state's learning rate after it).
  opt = ohc.hillclimb_muon(0.01, scale_search=None)
  ours, rates, _ = _run(opt, 6)
  muon = optax.contrib.muon(1.0)
  state, params = muon.init(PARAMS), PARAMS
  muon_update = jax.jit(muon.update)
  for updates, lr in zip(ours, rates, strict=True):
    direction, state = muon_update(jax.grad(_loss)(params), state, params)
    test_utils.assert_trees_all_close(
      updates, optax.tree.scale(lr, direction), rtol=1e-5, atol=1e-6
    )
    params = optax.apply_updates(params, updates)
  assert len(set(rates)) > 1  # the rate moved


def test_the_alias_is_the_hand_made_chain():
  # The recipe written by hand, a sign flip included, gives the same run
  # (scale search and stretch decisions included) as the alias.
  def by_hand(center=1 / 8, judge_steps=1):
    return _by_hand(
      3e-5, total_steps=40, every_k=4, center=center, judge_steps=judge_steps
    )

  alias = ohc.hillclimb_muon(3e-5, total_steps=40, every_k=4)
  ours, our_rates, _ = _run(alias, 40)
  theirs, their_rates, _ = _run(by_hand(), 40)
  assert our_rates == pytest.approx(their_rates, rel=1e-5)
  test_utils.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-6)
  assert our_rates[0] == pytest.approx(10**-1.25)  # the scale search
  # The default centre, a quarter back, climbs another way here; so do
  # decisions judged on the last eight steps, passed on to the climb.
  _, default_rates, _ = _run(by_hand(center=None), 40)
  assert default_rates != pytest.approx(our_rates, rel=1e-2)
  judged = ohc.hillclimb_muon(3e-5, total_steps=40, every_k=4, judge_steps=8)
  _, judged_rates, _ = _run(judged, 40)
  _, their_judged_rates, _ = _run(by_hand(judge_steps=8), 40)
  assert judged_rates == pytest.approx(their_judged_rates, rel=1e-5)
  assert judged_rates != pytest.approx(our_rates, rel=1e-2)


def test_inject_hyperparams_gives_the_same_updates():
  settings = dict(learning_rate=0.01, beta=0.9, lrlr=0.2, every_k=2)
  plain, plain_rates, plain_state = _run(ohc.hillclimb_muon(**settings), 4)
  injected_opt = optax.inject_hyperparams(
    ohc.hillclimb_muon, static_args=("ns_steps", "nesterov")
  )(**settings)
  injected, rates, state = _run(injected_opt, 4)
  # Injected hyperparameters are float32 arrays rather than Python floats,
  # which rounds the momenta's bias corrections slightly differently, and
  # the Newton-Schulz iterations amplify that to about 1e-3.
  test_utils.assert_trees_all_close(injected, plain, rtol=1e-2, atol=1e-4)
  test_utils.assert_trees_all_close(
    state.inner_state, plain_state, rtol=1e-2, atol=1e-4
  )
  assert rates == pytest.approx(plain_rates, rel=1e-5)


@pytest.mark.parametrize(
  "dtype",
  [
    pytest.param(jnp.bfloat16, marks=pytest.mark.slow),
    jnp.float32,
    pytest.param(jnp.float64, marks=pytest.mark.slow),
  ],
)
def test_state_is_dtype_shape_and_weak_type_stable(dtype):
  with utils.x64_precision(dtype == jnp.float64):
    opt = ohc.hillclimb_muon(0.01)
    params = jax.tree.map(lambda x: x.astype(dtype), PARAMS)

    @jax.jit
    def step(params, state):
      grads = jax.grad(_loss)(params)
      # lax.cond checks that both branches return identical types.
      cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
      updates, new_state = jax.lax.cond(
        cond,
        lambda: opt.update(grads, state, params, value_fn=_loss),
        lambda: (params, state),
      )
      return optax.apply_updates(params, updates), new_state

    state = opt.init(params)
    for _ in range(3):
      params, state = step(params, state)
      assert all(x.dtype == dtype for x in jax.tree.leaves(params))
    learning_rate = optax.tree.get(state, "learning_rate")
    assert learning_rate.dtype == (
      jnp.float64 if dtype == jnp.float64 else jnp.float32
    )
    assert not learning_rate.weak_type


def test_the_two_probe_rule_runs_with_its_own_centreless_probes():
  # hillclimb_muon centres the stretch's probes; with two_probes there are
  # none to centre, and the alias is the hand-made chain without a centre.
  settings = dict(decision="two_probes", every_k=1, scale_search=None)
  ours, our_rates, _ = _run(ohc.hillclimb_muon(0.01, **settings), 3)
  theirs, their_rates, _ = _run(_by_hand(0.01, **settings), 3)
  assert our_rates == pytest.approx(their_rates, rel=1e-5)
  assert our_rates[0] in (pytest.approx(0.011), pytest.approx(0.009))  # ±lrlr
  test_utils.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_bad_muon_settings_are_refused():
  with pytest.raises(ValueError, match="beta"):
    ohc.hillclimb_muon(beta=1.0)
  with pytest.raises(ValueError, match="ns_steps"):
    ohc.hillclimb_muon(ns_steps=0)
  with pytest.raises(TypeError, match="nesterov"):
    ohc.hillclimb_muon(nesterov="yes")


def _digits():
  """sklearn's 8x8 digits, scaled to [0, 1]: 1500 to train, the rest held."""
  datasets = pytest.importorskip("sklearn.datasets")
  x, y = datasets.load_digits(return_X_y=True)
  order = np.random.default_rng(0).permutation(len(y))
  x, y = jnp.asarray(x[order] / 16.0, jnp.float32), jnp.asarray(y[order])
  return (x[:1500], y[:1500]), (x[1500:], y[1500:])


def _mlp():
  k1, k2 = jax.random.split(jax.random.key(0))
  return {
    "w1": jax.random.normal(k1, (64, 64)) / 8.0,
    "b1": jnp.zeros(64),
    "w2": jax.random.normal(k2, (64, 10)) / 8.0,
    "b2": jnp.zeros(10),
  }


def _logits(p, x):
  return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def _xent(p, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(
    _logits(p, x), y
  ).mean()


def _train_digits(opt, steps, batch=100):
  (x, y), held_out = _digits()

  @jax.jit
  def step(params, state, x, y):
    value, grads = jax.value_and_grad(_xent)(params, x, y)
    updates, state = opt.update(
      grads, state, params, value_fn=_xent, value=value, x=x, y=y
    )
    return optax.apply_updates(params, updates), state

  params = _mlp()
  state = opt.init(params)
  for i in range(steps):
    rows = slice(batch * (i % 15), batch * (i % 15 + 1))
    params, state = step(params, state, x[rows], y[rows])
  x, y = held_out
  accuracy = jnp.mean(jnp.argmax(_logits(params, x), -1) == y)
  return float(accuracy), state


@pytest.mark.slow  # 300 steps of an MLP
def test_hillclimb_muon_trains_a_digits_mlp():
  # 300 steps (20 epochs) from 1e-3: the climb finds a rate far above Adam's.
  opt = ohc.hillclimb_muon(1e-3, total_steps=300)
  accuracy, state = _train_digits(opt, 300)
  assert accuracy > 0.93, accuracy
  # The climbed rate (get_learning_rate reports zero past total_steps).
  assert float(state[1].learning_rate) > 1e-3


@pytest.mark.parametrize(
  ("direction", "center"),
  [
    pytest.param(optax.scale_by_lion, 1 / 8, id="lion"),
    pytest.param(
      optax.contrib.scale_by_ademamix,
      None,
      id="ademamix",
      marks=pytest.mark.slow,
    ),
  ],
)
def test_any_scale_by_direction_trains_under_the_climb(direction, center):
  # The recipe of docs/directions.md: a direction without rate nor sign,
  # then scale_by_hillclimb (Lion's probes centred an eighth back).
  climb = ohc.scale_by_hillclimb(1e-3, total_steps=300, center=center)
  opt = optax.chain(direction(), climb)
  accuracy, _ = _train_digits(opt, 300)
  assert accuracy > 0.93, accuracy
