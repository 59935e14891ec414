"""nnx_value_fn without Flax installed says how to install it.

Flax is simulated missing, so these run whether it is installed or not.
"""

import builtins
import sys

import pytest

from optax_hillclimb.flax_utils import nnx_value_fn


def test_without_flax_the_error_says_how_to_install(monkeypatch):
  # None in sys.modules makes `from flax import nnx` fail as it does where
  # Flax is not installed.
  monkeypatch.setitem(sys.modules, "flax", None)
  monkeypatch.setitem(sys.modules, "flax.nnx", None)
  with pytest.raises(ModuleNotFoundError) as missing:
    nnx_value_fn(object(), lambda model: 0.0)
  message = str(missing.value)
  assert "nnx_value_fn needs Flax" in message
  assert "pip install flax" in message
  assert 'pip install "optax-hillclimb[examples]"' in message
  assert missing.value.name == "flax"


def test_a_package_flax_needs_keeps_its_own_message(monkeypatch):
  # Flax is there but one of its own dependencies is not: that is the
  # module to name, not Flax.
  real_import = builtins.__import__

  def flax_without_its_dependency(name, *args, **kwargs):
    if name == "flax" or name.startswith("flax."):
      raise ModuleNotFoundError("No module named 'treescope'", name="treescope")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", flax_without_its_dependency)
  with pytest.raises(ModuleNotFoundError, match="treescope") as missing:
    nnx_value_fn(object(), lambda model: 0.0)
  assert "pip install flax" not in str(missing.value)
