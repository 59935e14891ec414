"""Lets a benchmark run as ``python benchmarks/<name>.py`` as well as with -m.

Run as a file, a script has no package for its relative imports, and
``benchmarks/`` rather than the repository root is on ``sys.path`` (so that
``import optax_hillclimb`` could find another installed copy). A script that
starts with ``if not __package__: import _as_module`` (found by its bare name
then) gets the repository root first on the path and becomes a module of the
``benchmarks`` package, as ``python -m benchmarks.<name>`` would make it.
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
