"""The documentation builds with warnings as errors, and its code runs.

Sphinx runs in a subprocess, as CI runs it: offline (no intersphinx), with no
notebook execution.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")


def sphinx_build(builder, out_dir):
  env = dict(os.environ)
  # One CPU device is enough for the docstring examples; the multi-device
  # examples run in tests/test_docs_examples.py.
  env.pop("XLA_FLAGS", None)
  return subprocess.run(
    [
      sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
      "-b", builder, str(DOCS), str(out_dir),
    ],
    capture_output=True, text=True, env=env, check=False, timeout=600,
  )  # fmt: skip


def test_html_builds_without_warnings(tmp_path):
  result = sphinx_build("html", tmp_path / "html")
  assert result.returncode == 0, result.stderr + result.stdout
  html = tmp_path / "html"
  for page in ("index", "quickstart", "rule", "api", "flax", "multi_device"):
    assert (html / f"{page}.html").is_file(), page
  api = (html / "api.html").read_text()
  # autodoc found the public API, with its docstrings.
  for name in ("scale_by_hillclimb", "hillclimb_adam", "HillclimbState"):
    assert f'id="optax_hillclimb.{name}"' in api, name
  assert "guard_rtol" in api
  # The pages include the tested examples, not an empty region.
  flax = (html / "flax.html").read_text()
  assert "nnx.merge" in flax
  assert "state.tx.update" in flax


def test_doctests_in_pages_and_docstrings_pass(tmp_path):
  result = sphinx_build("doctest", tmp_path / "doctest")
  output = result.stderr + result.stdout
  assert result.returncode == 0, output
  summary = (tmp_path / "doctest" / "output.txt").read_text()
  assert re.search(r"^\s*0 failures in tests$", summary, re.M), summary
  # Every page with code ran some: the docstring examples (api), the hidden
  # checks of the snippets (index, quickstart).
  for page in ("api", "index", "quickstart"):
    assert f"Document: {page}\n" in summary, page
  num_tests = int(re.search(r"^\s*(\d+) tests$", summary, re.M).group(1))
  assert num_tests >= 20, summary
