"""climb: exact steps on hand-computable quadratics, composition, bad input.

Most checks use ``f(w) = w**2 / 2`` on one parameter, whose gradient is ``w``,
with ``optax.sgd``, whose update is ``-lr * (m * trace + g)``: every candidate
loss can be written down.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hillclimb as ohc


def half_square(w):
  return 0.5 * jnp.sum(w**2)


def sgd(learning_rate, momentum=0.0, **kwargs):
  return optax.inject_hyperparams(optax.sgd)(
    learning_rate=learning_rate, momentum=momentum, **kwargs
  )


def run(opt, params, steps, loss=half_square, with_value=False):
  """Runs ``steps`` jitted updates; returns (params, state, updates) each."""

  @jax.jit
  def step(params, state):
    value, grads = jax.value_and_grad(loss)(params)
    kwargs = {"value": value} if with_value else {}
    updates, state = opt.update(grads, state, params, value_fn=loss, **kwargs)
    return optax.apply_updates(params, updates), state, updates

  state = opt.init(params)
  history = []
  for _ in range(steps):
    params, state, updates = step(params, state)
    history.append((params, state, updates))
  return history


def hp(state, name):
  return float(ohc.get_hyperparams(state)[name])


# Exact steps -----------------------------------------------------------------


def test_learning_rate_candidates_by_hand():
  # w = 1, lr = 0.5, s = 0.1: lr 0.55 gives w = 0.45 (f = 0.10125), lr 0.45
  # gives w = 0.55 (f = 0.15125): up wins, and the step is the winner's.
  opt = ohc.climb(
    sgd(0.5), "learning_rate", lrlr=0.1, scale_search=None, guard=False
  )
  ((params, state, updates),) = run(opt, jnp.array([1.0]), 1)
  assert hp(state, "learning_rate") == pytest.approx(0.55)
  np.testing.assert_allclose(updates, [-0.55], rtol=1e-6)
  np.testing.assert_allclose(params, [0.45], rtol=1e-6)
  assert float(state.loss_up) == pytest.approx(0.10125)
  assert float(state.loss_down) == pytest.approx(0.15125)
  assert int(state.streak["learning_rate"]) == 1
  assert float(state.tie_ceiling["learning_rate"]) == pytest.approx(0.55)


@pytest.mark.parametrize(
  ("learning_rate", "winner", "new_w"),
  [
    # w1 = 0.75, trace 1: m = 0.6 gives w = 0.75 - 0.25 * 1.35 = 0.4125,
    # m = 0.4 gives w = 0.75 - 0.25 * 1.15 = 0.4625: more momentum wins.
    (0.25, 0.6, 0.4125),
    # w1 = 0, trace 1: m = 0.6 overshoots to -0.6, m = 0.4 to -0.4: less wins.
    (1.0, 0.4, -0.4),
  ],
)
def test_momentum_candidates_by_hand(learning_rate, winner, new_w):
  # Step 1: the trace is zero, both momenta give the same update, a tie holds
  # a decay-scale hyperparameter. Step 2: 1 - m = 0.5 * (1 -+ 0.2). (Without
  # the guard: from w1 = 0, whose loss is 0, it would reject any step.)
  opt = ohc.climb(
    sgd(learning_rate, 0.5),
    "momentum",
    lrlr=0.2,
    scale_search=None,
    guard=False,
  )
  (w1, state1, _), (w2, state2, _) = run(opt, jnp.array([1.0]), 2)
  assert hp(state1, "momentum") == 0.5
  assert int(state1.streak["momentum"]) == 0
  np.testing.assert_allclose(w1, [1.0 - learning_rate], rtol=1e-6)
  assert hp(state2, "momentum") == pytest.approx(winner)
  np.testing.assert_allclose(w2, [new_w], rtol=1e-5, atol=1e-7)
  # The inner state kept is the winner's: trace = m * 1 + g1.
  trace = state2.inner_state.inner_state[0].trace
  np.testing.assert_allclose(trace, [winner + 1.0 - learning_rate], rtol=1e-6)
  # The inner optimizer's own hyperparams hold the climbed value too.
  assert float(state2.inner_state.hyperparams["momentum"]) == pytest.approx(
    winner
  )


def test_cycle_takes_hyperparameters_in_turn():
  opt = ohc.climb(sgd(0.25, 0.5), lrlr=0.2, scale_search=None)
  history = run(opt, jnp.array([1.0]), 4)
  probed = [int(state.probed) for _, state, _ in history]
  assert probed == [0, 1, 0, 1]
  # Step 1 moves only the learning rate (0.25 * 1.2 wins on w = 1).
  assert hp(history[0][1], "learning_rate") == pytest.approx(0.3)
  assert hp(history[0][1], "momentum") == 0.5


def test_all_layout_moves_the_best_of_all_candidates():
  # w = 1, trace 0: lr 0.3 -> w = 0.7 (f = 0.245), lr 0.2 -> w = 0.8; both
  # momenta give lr 0.25 -> w = 0.75 (f = 0.28125). The learning rate's up
  # candidate is the best of four.
  opt = ohc.climb(sgd(0.25, 0.5), lrlr=0.2, layout="all", scale_search=None)
  ((params, state, _),) = run(opt, jnp.array([1.0]), 1)
  assert int(state.probed) == 0
  assert hp(state, "learning_rate") == pytest.approx(0.3)
  assert hp(state, "momentum") == 0.5
  np.testing.assert_allclose(params, [0.7], rtol=1e-6)
  assert float(state.loss_up) == pytest.approx(0.245)


def test_momentum_moves_multiplicatively_in_one_minus_value():
  # The first step ties (zero trace). Then rises in a row with lrlr_growth =
  # 2: the n-th uses s = 0.05 * 2 ** (n - 2) from the second rise on, so 1 - m
  # is multiplied by 0.95, 0.95, 0.9, 0.8, 0.6.
  def loss(w):  # Favours any momentum over less: a constant gradient.
    return -jnp.sum(w)

  opt = ohc.climb(
    sgd(0.1, 0.5),
    "momentum",
    lrlr=0.05,
    lrlr_growth=2.0,
    scale_search=None,
  )
  history = run(opt, jnp.zeros(1), 6, loss=loss)
  one_minus = 0.5 * np.cumprod([0.95, 0.95, 0.9, 0.8, 0.6])
  got = [1 - hp(state, "momentum") for _, state, _ in history[1:]]
  np.testing.assert_allclose(got, one_minus, rtol=1e-5)


def test_bounds_clip_the_values():
  def loss(w):
    return -jnp.sum(w)

  opt = ohc.climb(
    sgd(0.1, 0.5),
    lrlr=0.5,
    bounds={"momentum": (0.1, 0.9), "learning_rate": (0.01, 0.2)},
    scale_search=None,
    guard=False,
  )
  history = run(opt, jnp.zeros(1), 12, loss=loss)
  assert hp(history[-1][1], "momentum") == pytest.approx(0.9)
  assert hp(history[-1][1], "learning_rate") == pytest.approx(0.2)


def test_scale_search_sets_the_learning_rate_at_the_first_update():
  # f = w^2 / 2 from w = 1, lr0 = 1e-3: multiples 1e-6 .. 1e6. The first
  # step may be at most 0.2 |w| = 0.2 long, and |g| = 1: lr 1 (loss 0) is set
  # aside. Among the rest, lr 0.1 (loss 0.405) is the only one with half of
  # the best decrease from about 0.5, as scale_by_hillclimb picks.
  opt = ohc.climb(sgd(1e-3, 0.5))
  ((params, state, _),) = run(opt, jnp.array([1.0]), 1)
  assert hp(state, "learning_rate") == pytest.approx(0.1)
  assert hp(state, "momentum") == 0.5
  np.testing.assert_allclose(params, [0.9], rtol=1e-6)
  single = ohc.scale_by_hillclimb(1e-3, decision="two_probes")
  ((_, single_state, _),) = run(single, jnp.array([1.0]), 1)
  assert float(single_state.learning_rate) == pytest.approx(0.1)


@pytest.mark.parametrize("with_value", [True, False])
def test_climbing_the_learning_rate_of_sgd_matches_scale_by_hillclimb(
  with_value,
):
  # sgd's update at lr is -lr * g, which is what scale_by_hillclimb scores
  # and returns for the direction g: the same rule, the same guard (against
  # value, or without it the running average of the chosen losses), the same
  # scale search with its first-step bound, the same numbers.
  x = jax.random.normal(jax.random.key(0), (32, 4))
  y = x @ jnp.array([1.0, -2.0, 0.5, 3.0])

  def loss(w):
    return jnp.mean((x @ w - y) ** 2)

  settings = dict(lrlr=0.05, every_k=2)
  runs = [
    run(
      opt,
      jnp.ones(4),
      40,
      loss=loss,
      with_value=with_value,
    )
    for opt in (
      ohc.climb(
        optax.inject_hyperparams(optax.sgd)(learning_rate=1e-3),
        "learning_rate",
        **settings,
      ),
      ohc.scale_by_hillclimb(1e-3, decision="two_probes", **settings),
    )
  ]
  lr_a, lr_b = (
    [float(ohc.get_learning_rate(s)) for _, s, _ in history] for history in runs
  )
  np.testing.assert_allclose(lr_a, lr_b, rtol=1e-5)
  assert len(set(lr_a)) > 5
  np.testing.assert_allclose(runs[0][-1][0], runs[1][-1][0], rtol=1e-4)
  rejected = [int(history[-1][1].num_rejected) for history in runs]
  assert rejected[0] == rejected[1]


# Composition -----------------------------------------------------------------


def test_every_k_probes_only_every_k_steps():
  opt = ohc.climb(sgd(0.25, 0.5), lrlr=0.2, every_k=3, scale_search=None)
  history = run(opt, jnp.array([1.0]), 7)
  values = [(hp(s, "learning_rate"), hp(s, "momentum")) for _, s, _ in history]
  for i in (1, 2, 4, 5):  # no probe at counts 1, 2, 4, 5
    assert values[i] == values[i - 1]
  # Probes at counts 0, 3, 6 take the hyperparameters in turn.
  assert [int(history[i][1].probed) for i in (0, 3, 6)] == [0, 1, 0]


def test_guard_rejects_backs_off_and_leaves_the_inner_state():
  # lr = 10 on w^2 / 2 from w = 1: both candidates land near w = -9, loss 40
  # against value 0.5: rejected. The update is zero, the learning rate halves,
  # the trace is still zero and the inner step count did not advance.
  opt = ohc.climb(sgd(10.0, 0.5), scale_search=None)
  ((params, state, updates),) = run(opt, jnp.array([1.0]), 1, with_value=True)
  np.testing.assert_array_equal(updates, [0.0])
  np.testing.assert_array_equal(params, [1.0])
  assert hp(state, "learning_rate") == pytest.approx(5.0)
  assert int(state.num_rejected) == 1
  assert int(state.streak["learning_rate"]) == -1
  np.testing.assert_array_equal(state.inner_state.inner_state[0].trace, [0.0])
  assert int(state.inner_state.count) == 0


def test_guard_backs_off_an_inner_learning_rate_that_is_not_climbed():
  opt = ohc.climb(sgd(10.0, 0.5), "momentum", scale_search=None)
  ((_, state, updates),) = run(opt, jnp.array([1.0]), 1, with_value=True)
  np.testing.assert_array_equal(updates, [0.0])
  assert float(ohc.get_learning_rate(state)) == pytest.approx(5.0)
  assert hp(state, "momentum") == 0.5


def test_ties_raise_a_log_scale_value_only_up_to_its_ceiling():
  # A loss that ignores the parameters, along a nonzero direction, ties every
  # candidate: the learning rate stays at lr0 (its ceiling), momentum holds.
  def flat(w):
    return 0.0 * jnp.sum(w) + 1.0

  opt = ohc.climb(sgd(0.1, 0.5), scale_search=None)
  update = jax.jit(functools.partial(opt.update, value_fn=flat))
  params = jnp.ones(2)
  state = opt.init(params)
  for _ in range(6):
    _, state = update(jnp.ones(2), state, params)
    assert hp(state, "learning_rate") == pytest.approx(0.1)
    assert hp(state, "momentum") == 0.5
  # A zero direction ties at every learning rate: it falls, as in
  # scale_by_hillclimb.
  _, state = update(jnp.zeros(2), opt.init(params), params)
  assert hp(state, "learning_rate") == pytest.approx(0.099)


def types(state):
  return jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), state)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_jit_does_not_recompile_and_state_types_are_stable(dtype):
  opt = ohc.climb(sgd(0.1, 0.5), every_k=2)
  params = jnp.ones(3, dtype)

  @jax.jit
  def step(params, state):
    grads = jax.grad(half_square)(params)
    updates, state = opt.update(grads, state, params, value_fn=half_square)
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  first = types(state)
  for _ in range(5):
    params, state = step(params, state)
    assert types(state) == first
  assert step._cache_size() == 1
  assert params.dtype == dtype
  # The climbed values are float32 whatever the parameters' dtype.
  assert state.hyperparams["learning_rate"].dtype == jnp.float32
  assert state.inner_state.hyperparams["learning_rate"].dtype == dtype


def test_probe_modes_agree():
  x = jax.random.normal(jax.random.key(1), (16, 3))
  y = jnp.sin(x @ jnp.array([1.0, -1.0, 0.5]))

  def loss(w):
    return jnp.mean((jnp.tanh(x @ w) - y) ** 2)

  out = {}
  for mode in ("vmap", "sequential"):
    opt = ohc.climb(sgd(0.3, 0.5), probe=mode, layout="all")
    history = run(opt, jnp.zeros(3), 10, loss=loss)
    out[mode] = [
      (hp(s, "learning_rate"), hp(s, "momentum")) for _, s, _ in history
    ]
  np.testing.assert_allclose(out["vmap"], out["sequential"], rtol=1e-5)


def test_adam_b1_and_b2_climb_on_the_decay_scale():
  opt = ohc.climb(
    optax.inject_hyperparams(optax.adam)(learning_rate=0.05),
    ("learning_rate", "b1", "b2"),
    lrlr=0.1,
  )
  x = jax.random.normal(jax.random.key(2), (32, 4))
  y = x @ jnp.array([1.0, -2.0, 0.5, 3.0])

  def loss(w):
    return jnp.mean((x @ w - y) ** 2)

  history = run(opt, jnp.zeros(4), 60, loss=loss)
  state = history[-1][1]
  assert set(ohc.get_hyperparams(state)) == {"learning_rate", "b1", "b2"}
  assert hp(state, "b1") != pytest.approx(0.9)
  assert 0 <= hp(state, "b2") <= np.float32(0.999)
  assert loss(history[-1][0]) < 0.01 * loss(jnp.zeros(4))


def test_axis_name_keeps_replicas_alike():
  n = 2
  if jax.local_device_count() < n:
    pytest.skip("needs two devices")
  x = jax.random.normal(jax.random.key(3), (n, 8, 3))
  y = jax.random.normal(jax.random.key(4), (n, 8))

  def loss(w, x, y):
    return jnp.mean((jnp.tanh(x @ w) - y) ** 2)

  def train(axis_name):
    opt = ohc.climb(sgd(0.3, 0.5), axis_name=axis_name, lrlr=0.1)

    def step(w, state, x, y):
      grads = jax.grad(loss)(w, x, y)
      if axis_name:
        grads = jax.lax.pmean(grads, axis_name)
      updates, state = opt.update(grads, state, w, value_fn=loss, x=x, y=y)
      return optax.apply_updates(w, updates), state

    step = jax.pmap(step, axis_name="devices")
    w = jnp.zeros((n, 3))
    state = jax.pmap(opt.init)(w)
    for _ in range(8):
      w, state = step(w, state, x, y)
    return ohc.get_hyperparams(state)

  # Each replica sees other data: without the mean over the axis they would
  # decide apart.
  for values in train("devices").values():
    assert len(set(np.asarray(values).tolist())) == 1


def test_get_learning_rate_and_get_hyperparams_find_the_state():
  opt = optax.chain(
    optax.clip_by_global_norm(1.0), ohc.climb(sgd(0.1, 0.5), "momentum")
  )
  state = opt.init(jnp.zeros(2))
  assert float(ohc.get_learning_rate(state)) == pytest.approx(0.1)
  assert ohc.get_hyperparams(state) == {"momentum": pytest.approx(0.5)}
  with pytest.raises(ValueError, match=r"exactly one ClimbState.*found 0"):
    ohc.get_hyperparams(ohc.hillclimb().init(jnp.zeros(2)))
  with pytest.raises(ValueError, match=r"exactly one HillclimbState.*found 2"):
    ohc.get_learning_rate((state, ohc.hillclimb().init(jnp.zeros(2))))


# Bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
  ("inner", "names", "error", "match"),
  [
    (sgd(0.1), ("learning_rate", "nesterov_lr"), ValueError,
     r"'nesterov_lr' is not a hyperparameter.*\['learning_rate', 'momentum'\]"),
    (optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), "momentum",
     ValueError, r"'momentum' is not a hyperparameter.*momentum=0.0"),
    (optax.sgd(0.1), "learning_rate", TypeError,
     r"built with optax.inject_hyperparams.*no `hyperparams`"),
    (optax.inject_hyperparams(optax.sgd)(learning_rate=jnp.ones(2) * 0.1),
     "learning_rate", ValueError, r"'learning_rate' must be a scalar.*\(2,\)"),
    (optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.constant_schedule(0.1)),
     "learning_rate", ValueError, r"'learning_rate' is a schedule"),
    (sgd(0.1, 1.0), "momentum", ValueError,
     r"'momentum' starts at 1.0, outside its bounds \[0.0, 0.999\]"),
    (sgd(-0.1), "learning_rate", ValueError,
     r"'learning_rate' starts at -0.1"),
    (optax.inject_hyperparams(optax.trace)(decay=0.9), "decay", ValueError,
     r"guard backs off .*'learning_rate'.*guard=False"),
  ],
)  # fmt: skip
def test_bad_inner_optimizers_fail_at_init(inner, names, error, match):
  opt = ohc.climb(inner, names)
  with pytest.raises(error, match=match):
    opt.init(jnp.zeros(2))


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    (dict(hyperparams=()), "at least one"),
    (dict(hyperparams=("momentum", "momentum")), "repeated"),
    (dict(hyperparams=3), "name or a sequence of names"),
    (dict(layout="both"), r"layout must be one of \('cycle', 'all'\)"),
    (dict(scales={"momentum": "linear"}), r"scales\['momentum'\]"),
    (dict(scales={"b1": "log"}), r"scales names \['b1'\]"),
    (dict(bounds={"momentum": (0.0, 1.0)}), r"bounds\['momentum'\].*< 1"),
    (dict(bounds={"learning_rate": (0.0, 1.0)}), r"0 < lower"),
    (dict(lrlr=1.5), r"lrlr must be in the interval \(0, 1\)"),
    (dict(every_k=0), "every_k must be a positive integer"),
    (dict(tie_break="left"), "tie_break must be one of"),
    (dict(probe="pmap"), "probe must be one of"),
  ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
  with pytest.raises((ValueError, TypeError), match=match):
    ohc.climb(sgd(0.1, 0.5), **kwargs)


def test_update_needs_value_fn_and_params():
  opt = ohc.climb(sgd(0.1, 0.5))
  state = opt.init(jnp.zeros(2))
  with pytest.raises(TypeError, match="needs the loss function"):
    opt.update(jnp.ones(2), state, jnp.zeros(2))
  with pytest.raises(ValueError, match="needs params"):
    opt.update(jnp.ones(2), state, value_fn=half_square)


def test_an_integer_hyperparameter_is_refused():
  inner = optax.inject_hyperparams(optax.sgd)(learning_rate=1, momentum=0.5)
  with pytest.raises(TypeError, match=r"'learning_rate' must be a floating"):
    ohc.climb(inner, "learning_rate").init(jnp.zeros(2))
