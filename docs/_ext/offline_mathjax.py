"""Serve MathJax from the built site, so math renders with no network.

Sphinx's math points the pages at MathJax on a CDN, which a machine with no
network (a CI runner, a laptop on a plane, a cluster behind a firewall) never
reaches: the reader then sees raw TeX. The ``sphinx-mathjax-offline`` package
(in the ``docs`` extra) ships MathJax 3; this copies the part that the pages
load (the TeX-to-CommonHTML component, its fonts and the extensions it loads
on demand) into ``_static/mathjax`` and points the pages there.
"""

import importlib.util
import os
import pathlib
import shutil

# The entry point, and what it loads lazily (TeX extensions such as
# ``\\boldsymbol``, fonts, the context menu and its accessibility tools).
_COMPONENT = "tex-chtml.js"
_LAZY_DIRS = ("input/tex/extensions", "output/chtml", "ui", "a11y", "sre")


def _mathjax_source():
  spec = importlib.util.find_spec("sphinx-mathjax-offline")
  if spec is None or spec.origin is None:
    raise RuntimeError(
      "The docs need MathJax files to render math offline: "
      'pip install -e ".[docs]" (it installs sphinx-mathjax-offline).'
    )
  return pathlib.Path(spec.origin).parent / "static" / "mathjax"


def _copy_mathjax(app, exception):
  if exception is not None or app.builder.format != "html":
    return
  source = _mathjax_source()
  target = pathlib.Path(app.outdir) / "_static" / "mathjax"
  target.mkdir(parents=True, exist_ok=True)
  shutil.copy2(source / _COMPONENT, target / _COMPONENT)
  for sub in _LAZY_DIRS:
    shutil.copytree(source / sub, target / sub, dirs_exist_ok=True)


def _point_at_local_copy(app, config):
  _mathjax_source()  # Fail at the start of a build, not after it.
  config.mathjax_path = os.path.join("mathjax", _COMPONENT)


def setup(app):
  app.setup_extension("sphinx.ext.mathjax")
  app.connect("config-inited", _point_at_local_copy)
  app.connect("build-finished", _copy_mathjax)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
