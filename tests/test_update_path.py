"""One update reads top to bottom: how far it travels through the library.

A decision step of ``hillclimb_adam`` at its defaults, run eagerly, with every
call into the library's own functions recorded (``sys.setprofile``): the
distinct functions, the modules they live in, and how often two consecutive
calls are in different modules. optax's ``lbfgs`` with its zoom line search,
counted the same way over optax's modules: 23 functions, 4 modules, 5 moves.
"""

import itertools
import sys

import jax
import jax.numpy as jnp
import optax

import optax_hillclimb as ohc


def loss(params, x):
  return jnp.mean((x @ params["w"]) ** 2) + jnp.sum(params["b"] ** 2)


def _calls_of_one_decision_step(value):
  params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
  x = jnp.arange(12.0).reshape(4, 3) / 10
  tx = ohc.hillclimb_adam(1e-2)
  state = tx.init(params)
  extra = lambda p: {"value": loss(p, x)} if value else {}
  # The first update is the scale search; the second decides.
  for _ in range(2):
    grads = jax.grad(loss)(params, x)
    updates, state = tx.update(
      grads, state, params, value_fn=loss, x=x, **extra(params)
    )
    params = optax.apply_updates(params, updates)
  calls = []

  def record(frame, event, arg):
    del arg
    module = frame.f_globals.get("__name__", "")
    if event == "call" and module.startswith("optax_hillclimb"):
      calls.append((module, frame.f_code.co_name))

  grads, kwargs = jax.grad(loss)(params, x), extra(params)
  sys.setprofile(record)
  try:
    tx.update(grads, state, params, value_fn=loss, x=x, **kwargs)
  finally:
    sys.setprofile(None)
  return calls


def test_one_update_stays_in_few_modules_and_functions():
  for value in (True, False):
    calls = _calls_of_one_decision_step(value)
    modules = {module for module, _ in calls}
    moves = sum(a[0] != b[0] for a, b in itertools.pairwise(calls))
    assert len(set(calls)) <= 35, sorted(set(calls))
    assert len(modules) <= 5, modules
    assert moves <= 12, [m for m, _ in calls]
    # The pipeline itself and the loss's binding and scoring.
    assert modules == {
      "optax_hillclimb._transform",
      "optax_hillclimb._value_fn",
    }
