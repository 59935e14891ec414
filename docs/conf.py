"""Sphinx configuration of the optax-hillclimb documentation.

Everything here works offline, to build and to read: no intersphinx, no
notebook execution, and MathJax served from the built site
(``_ext/offline_mathjax.py``); ``docs/check_offline.py`` proves it in a
browser with no network. The docstring examples are doctests, run by pytest
(``--doctest-modules``) and by ``sphinx-build -b doctest docs <dir>``.
"""

import os
import re
import sys

# Document the checkout, not whatever version happens to be installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Local extensions (offline MathJax).
sys.path.insert(
  0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext")
)

import optax_hillclimb

project = "optax-hillclimb"
author = "optax-hillclimb authors"
copyright = "2026, optax-hillclimb authors"
release = optax_hillclimb.__version__
version = release

extensions = [
  "myst_parser",
  "sphinx.ext.autodoc",
  "sphinx.ext.doctest",
  "offline_mathjax",
  "sphinx.ext.napoleon",
  "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# MyST: $...$ and $$...$$ math, and definition lists (term, then ": ...").
myst_enable_extensions = ["amsmath", "deflist", "dollarmath"]
myst_heading_anchors = 3

# Google-style docstrings, as optax writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Attributes as fields of the class: NamedTuple fields also exist as class
# attributes, and documenting both would warn about duplicate descriptions.
napoleon_use_ivar = True
# The field types are in the descriptions (int32, float32, ...).
napoleon_attr_annotations = False

autodoc_member_order = "bysource"
# Without the annotations: every `jax.typing.ArrayLike` expands to an
# eight-member Union that buries the defaults. The docstrings say the types.
autodoc_typehints = "none"
add_module_names = False
# Defaults as written in the source: ``scale_search=SCALE_SEARCH`` rather than
# the thirteen floats it holds (the docstrings say what it is).
autodoc_preserve_defaults = True


def _drop_private_module_prefix(app, what, name, obj, options, sig, ret):
  """``_transform.SCALE_SEARCH`` reads as ``SCALE_SEARCH`` in signatures."""
  if sig is not None:
    sig = re.sub(r"\b_[a-z_]+\.(?=[A-Z])", "", sig)
  return sig, ret


def setup(app):
  app.connect("autodoc-process-signature", _drop_private_module_prefix)


# The docstring examples import what they need themselves.
doctest_global_setup = ""

# The theme of optax's and Flax's docs: navigation on the left, the page's
# sections on the right, search, dark mode.
html_theme = "sphinx_book_theme"
html_title = f"optax-hillclimb {release}"
html_theme_options = {
  "show_toc_level": 2,
  "home_page_in_toc": True,
}
html_static_path = ["_static"]
# Wider text column, code and tables that fit it.
html_css_files = ["custom.css"]
