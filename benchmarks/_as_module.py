"""Lets a benchmark run as ``python benchmarks/<name>.py`` as well as with -m.

Run as a file, a script has no package, so its relative imports fail, and
Python puts ``benchmarks/`` on ``sys.path`` instead of the repository root,
so that ``import optax_hillclimb`` would find whatever copy is installed
rather than this checkout's. Each script therefore starts, before it imports
anything of this repository, with::

  if not __package__:  # Run as a file: python benchmarks/<name>.py.
    import _as_module  # noqa: F401

which only a script run as a file executes (``benchmarks/`` is then on the
path, so this module is found by its bare name). Importing it puts the
repository root first on ``sys.path`` and makes the script a module of the
``benchmarks`` package, as ``python -m benchmarks.<name>`` would have.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The script's own directory, which Python put first, gives way to the root:
# the scripts' neighbours are imported as modules of ``benchmarks``, never by
# bare name.
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == HERE:
  sys.path[0] = ROOT
else:
  sys.path.insert(0, ROOT)

_main = sys.modules["__main__"]
if not getattr(_main, "__package__", None):
  # The script's globals are this module's namespace: relative imports read
  # ``__package__`` from them.
  _main.__package__ = "benchmarks"
