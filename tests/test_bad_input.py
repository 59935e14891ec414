"""Bad input gets a clear error that names the problem."""

import _rules
import jax.numpy as jnp
import optax
import pytest

import optax_hillclimb as ohc

_EVERY_FACTORY = [
  ({"learning_rate": 0.0}, "learning_rate must be positive"),
  ({"learning_rate": -1e-3}, "learning_rate must be positive"),
  ({"learning_rate": jnp.array(-1.0)}, "learning_rate must be positive"),
  ({"learning_rate": float("inf")}, "learning_rate must be positive"),
  ({"lrlr": 0.0}, r"lrlr must be in the interval \(0, 1\)"),
  ({"lrlr": 1.0}, r"lrlr must be in the interval \(0, 1\)"),
  ({"lrlr": jnp.array(2.0)}, r"lrlr must be in the interval \(0, 1\)"),
  ({"every_k": 0}, "every_k must be a positive integer"),
  ({"every_k": 2.5}, "every_k must be a positive integer"),
  ({"every_k": True}, "every_k must be a positive integer"),
  ({"max_learning_rate": -1.0}, "max_learning_rate must be positive"),
  (
    {"learning_rate": 1e-10},
    "min_learning_rate must be at most learning_rate=1e-10",
  ),
  (
    {"learning_rate": 2.0, "max_learning_rate": 1.0},
    "learning_rate must be at most max_learning_rate=1.0",
  ),
  ({"probe": "parallel"}, "probe must be one of"),
  ({"decision": "held_out"}, "decision must be one of"),
  ({"total_steps": 0}, "total_steps must be a positive integer"),
  ({"total_steps": 2.5}, "total_steps must be a positive integer"),
]
_SCALE_BY_HILLCLIMB_ONLY = [
  ({"min_learning_rate": 0.0}, "min_learning_rate must be positive"),
  (
    {"min_learning_rate": 1e-2, "max_learning_rate": 1e-3},
    "min_learning_rate must be at most max_learning_rate=0.001",
  ),
  ({"guard_rtol": -0.1}, "guard_rtol must be non-negative"),
  ({"lrlr_growth": 0.5}, "lrlr_growth must be at least 1"),
  ({"tie_break": "sideways"}, "tie_break must be one of"),
]


@pytest.mark.parametrize(("kwargs", "message"), _EVERY_FACTORY)
@pytest.mark.parametrize(
  "factory", [ohc.scale_by_hillclimb, ohc.hillclimb, ohc.hillclimb_adam]
)
def test_invalid_hyperparameters_are_named(factory, kwargs, message):
  with pytest.raises(ValueError, match=message):
    factory(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), _SCALE_BY_HILLCLIMB_ONLY)
def test_invalid_rule_settings_are_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    ohc.scale_by_hillclimb(**kwargs)


@pytest.mark.parametrize(
  "factory", [ohc.scale_by_hillclimb, ohc.hillclimb, ohc.hillclimb_adam]
)
def test_a_schedule_as_learning_rate_says_what_to_pass(factory):
  # Every optax user tries this; the climb sets the rate, so the error says
  # to pass the starting value and, for the decay, total_steps.
  schedule = optax.cosine_decay_schedule(1e-3, 1000)
  with pytest.raises(TypeError, match=r"learning_rate is the starting .*"):
    factory(schedule)
  with pytest.raises(TypeError, match=r"total_steps=N"):
    factory(learning_rate=schedule)


def test_total_steps_without_the_stretch_decision_is_named():
  with pytest.raises(ValueError, match="total_steps shapes the stretch"):
    ohc.hillclimb_adam(total_steps=100, decision="two_probes")


@pytest.mark.parametrize("smoothing", [-0.1, 1.0])
def test_invalid_smoothing_is_named(smoothing):
  with pytest.raises(ValueError, match=r"smoothing must be in .*\[0, 1\)"):
    ohc.hillclimb(smoothing=smoothing)


def test_traced_hyperparameters_are_not_checked_in_python():
  # Arrays (as optax.inject_hyperparams passes them) are accepted as they are.
  opt = ohc.scale_by_hillclimb(jnp.asarray(1e-3), lrlr=jnp.asarray(0.05))
  assert opt.init(jnp.zeros(2)).learning_rate.dtype == jnp.float32


def test_missing_value_fn_is_explained():
  opt = ohc.hillclimb()
  params = jnp.zeros(2)
  with pytest.raises(TypeError, match=r"needs the loss function.*value_fn="):
    opt.update(params, opt.init(params), params)


def test_missing_params_is_explained():
  opt = ohc.hillclimb()
  params = jnp.zeros(2)
  with pytest.raises(ValueError, match="needs params"):
    opt.update(params, opt.init(params), value_fn=jnp.sum)


def test_non_callable_value_fn_is_named():
  opt = ohc.hillclimb()
  params = jnp.zeros(2)
  with pytest.raises(TypeError, match="value_fn must be callable"):
    opt.update(params, opt.init(params), params, value_fn=3.0)


def test_non_scalar_loss_is_named():
  opt = ohc.hillclimb()
  params = jnp.zeros(2)
  with pytest.raises(ValueError, match=r"scalar loss.*shape \(2,\)"):
    opt.update(params, opt.init(params), params, value_fn=lambda p: p**2)


def test_single_element_loss_is_accepted():
  opt = ohc.scale_by_hillclimb(
    0.1, **_rules.EVERY_STEP | dict(lrlr=0.5, scale_search=None)
  )
  params = jnp.array([2.0])
  _, state = opt.update(
    params, opt.init(params), params, value_fn=lambda p: 0.5 * p**2
  )
  assert float(state.learning_rate) == pytest.approx(0.15)


def test_get_learning_rate_needs_exactly_one_hillclimb_state():
  with pytest.raises(ValueError, match=r"exactly one HillclimbState.*found 0"):
    ohc.get_learning_rate(())
  state = ohc.hillclimb().init(jnp.zeros(1))
  with pytest.raises(ValueError, match="found 2"):
    ohc.get_learning_rate((state, state))


@pytest.mark.parametrize(
  ("value", "error", "message"),
  [
    (
      jnp.ones(32),
      ValueError,
      r"^value must be .*of shape \(\), got .*\(32,\)",
    ),
    (jnp.ones(1) * 2, None, None),  # one number: accepted, as a scalar
    ((jnp.asarray(1.0), jnp.ones(3)), TypeError, r"^value must be .*tuple"),
    ("1.0", TypeError, r"^value must be .*got str"),
  ],
)
def test_a_value_that_is_not_the_scalar_loss_is_named(value, error, message):
  opt = ohc.hillclimb_adam(1e-3)
  params = jnp.zeros(3)
  state = opt.init(params)
  update = lambda: opt.update(
    params, state, params, value_fn=jnp.sum, value=value
  )
  if error is None:
    update()
    return
  with pytest.raises(error, match=message):
    update()
