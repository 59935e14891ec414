"""Sphinx configuration of the optax-hillclimb documentation.

Everything here works offline: no intersphinx, no notebook execution. The
docstring examples are doctests, run by pytest (``--doctest-modules``) and by
``sphinx-build -b doctest docs <dir>``.
"""

import os
import sys

# Document the checkout, not whatever version happens to be installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
  "sphinx.ext.mathjax",
  "sphinx.ext.napoleon",
  "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

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

# The docstring examples import what they need themselves.
doctest_global_setup = ""

html_theme = "alabaster"
html_title = f"optax-hillclimb {release}"
html_theme_options = {
  "description": "An optax transformation that hill-climbs its learning rate.",
  "fixed_sidebar": True,
}
