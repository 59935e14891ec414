"""The modules of the Flax MNIST example, for the benchmarks and the tests.

``examples/mnist`` is a directory of scripts, not a package: ``main.py`` runs
with its own directory on ``sys.path`` and imports its neighbours by bare name
(``import datasets``, ``from models import CNN``). :func:`module` loads one of
them from its file under that same name, so that a process which also imports
the example (as the tests do) holds one module object, and one ``Dataset`` or
``CNN`` class, not two copies that fail each other's ``isinstance`` checks.
"""

import importlib.util
import pathlib
import sys
import types

EXAMPLE_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples" / "mnist"


def module(name: str) -> types.ModuleType:
  """Imports ``examples/mnist/<name>.py`` as the example does, by bare name.

  Args:
    name: the file's name without ``.py``: ``"datasets"`` or ``"models"``
      (modules that import only installed packages, not their neighbours).

  Returns:
    The module, registered in ``sys.modules`` as ``name``; loaded once per
    process, however the example's modules are imported.

  Raises:
    ImportError: if another module of that name is already imported.
  """
  path = EXAMPLE_DIR / f"{name}.py"
  loaded = sys.modules.get(name)
  if loaded is not None:
    loaded_file = getattr(loaded, "__file__", None)
    if loaded_file is None or pathlib.Path(loaded_file).resolve() != path:
      raise ImportError(
        f"Cannot import {path} as {name!r}: sys.modules already holds "
        f"{name!r} from {loaded_file}."
      )
    return loaded
  spec = importlib.util.spec_from_file_location(name, path)
  loaded = importlib.util.module_from_spec(spec)
  # Registered before running it, as the import system does, so that a
  # dataclass or pickle looking the module up by name finds it.
  sys.modules[name] = loaded
  try:
    spec.loader.exec_module(loaded)
  except BaseException:
    del sys.modules[name]
    raise
  return loaded
