"""optax's own acceptance suite, run against the aliases and climb.

optax ships the suite every contributed optimizer must pass
(``optax/contrib/_common_test.py``): extra arguments without recompiling,
convergence on a parabola, Rosenbrock and two more targets in 30,000 steps,
``inject_hyperparams``, dtypes, gradient accumulation and stable state. It
calls every optimizer alike, without ``value``, and passes the objective
(as ``obj_fn``) only to optimizers that need one; ours are given it as
``value_fn``. The suite's text is run as shipped, with only the list of
optimizers under test and that one condition replaced.
"""

import functools
import pathlib
import sys
import types

import optax
import optax.contrib
import pytest

import optax_hillclimb

_SUITE = pathlib.Path(optax.contrib.__file__).parent / "_common_test.py"

# The optimizers under test, in the suite's format.
_OURS = """
_MAIN_OPTIMIZERS_UNDER_TEST = tuple(
    {'opt_name': name, 'opt_kwargs': {'learning_rate': 1e-2},
     'wrapper_name': None, 'wrapper_kwargs': None}
    for name in ('hillclimb', 'hillclimb_adam', 'hillclimb_muon', 'climb')
)
_ALL_OPTIMIZERS_UNDER_TEST = _MAIN_OPTIMIZERS_UNDER_TEST
_OBJ_FN_OPTIMIZERS = (
    'sophia', 'hillclimb', 'hillclimb_adam', 'hillclimb_muon', 'climb'
)

"""


def _with_obj_fn(factory):
  """The optimizer, whose update takes the suite's ``obj_fn`` as value_fn."""

  @functools.wraps(factory)  # inject_hyperparams reads its signature.
  def make(*args, **kwargs):
    opt = factory(*args, **kwargs)

    def update(updates, state, params=None, *, obj_fn=None, **extra_args):
      return opt.update(updates, state, params, value_fn=obj_fn, **extra_args)

    return optax.GradientTransformationExtraArgs(opt.init, update)

  return make


def _climbed_sgd(learning_rate):
  """climb on SGD with momentum, its learning rate climbed, as users write it.

  The suite passes no ``value``: the guard compares with the running average
  of the chosen losses, as the aliases' does.
  """
  inner = optax.inject_hyperparams(optax.sgd)(
    learning_rate=learning_rate, momentum=0.9
  )
  return optax_hillclimb.climb(inner, "learning_rate")


def _load_suite() -> types.ModuleType:
  text = _SUITE.read_text()
  replacements = {
    "opt_name == 'sophia'": "opt_name in _OBJ_FN_OPTIMIZERS",
    "opt_name in ['sophia']": "opt_name in _OBJ_FN_OPTIMIZERS",
  }
  for old, new in replacements.items():
    # If optax rewrites its suite, fail loudly rather than test nothing.
    assert text.count(old) >= 1, f"optax's suite no longer has {old!r}"
    text = text.replace(old, new)
  marker = "class ContribTest("
  assert text.count(marker) == 1, "optax's suite no longer has ContribTest"
  text = text.replace(marker, _OURS + marker)
  module = types.ModuleType("optax_common_suite")
  module.__file__ = str(_SUITE)
  sys.modules[module.__name__] = module
  exec(compile(text, str(_SUITE), "exec"), module.__dict__)
  factories = {
    "hillclimb": _with_obj_fn(optax_hillclimb.hillclimb),
    "hillclimb_adam": _with_obj_fn(optax_hillclimb.hillclimb_adam),
    "hillclimb_muon": _with_obj_fn(optax_hillclimb.hillclimb_muon),
    "climb": _with_obj_fn(_climbed_sgd),
  }
  module._get_opt_factory = factories.__getitem__
  return module


ContribTest = _load_suite().ContribTest
# Long (30,000 steps on each target): the README's test command leaves it out
# (-m 'not slow'); CI runs it.
ContribTest = pytest.mark.slow(ContribTest)
