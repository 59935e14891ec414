"""The documentation builds with warnings as errors, its code runs, and it
reads as it should in a browser with no network.

Sphinx runs in a subprocess, as CI runs it: offline (no intersphinx), with no
notebook execution.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"

pytest.importorskip("sphinx", reason='the docs need pip install -e ".[test]"')
pytest.importorskip("myst_parser", reason='pip install -e ".[test]"')


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


@pytest.fixture(scope="module")
def html(tmp_path_factory):
  out = tmp_path_factory.mktemp("docs") / "html"
  result = sphinx_build("html", out)
  assert result.returncode == 0, result.stderr + result.stdout
  return out


def test_index_lists_the_pages_of_its_toctree():
  index = (DOCS / "index.md").read_text()
  toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S).group(1)
  entries = [
    line
    for line in toctree.splitlines()
    if line.strip() and not line.startswith(":")
  ]
  listed = re.findall(r"^- \{doc\}`([^`]+)`", index, re.M)
  assert listed == entries


@pytest.mark.slow  # Sphinx; CI builds the docs in a stage of its own too.
def test_html_builds_without_warnings(html):
  pages = ("index", "quickstart", "tutorial", "rule", "api", "flax")
  for page in (*pages, "multi_device"):
    assert (html / f"{page}.html").is_file(), page
  # The tutorial's figure is there, and the removed page is not.
  assert (html / "_static" / "tutorial.png").stat().st_size > 20_000
  assert not (html / "decisions.html").exists()
  api = (html / "api.html").read_text()
  # autodoc found the public API, with its docstrings.
  for name in ("scale_by_hillclimb", "hillclimb_adam", "HillclimbState"):
    assert f'id="optax_hillclimb.{name}"' in api, name
  assert "guard_rtol" in api
  # The pages include the tested examples, not an empty region.
  flax = (html / "flax.html").read_text()
  assert "nnx.merge" in flax
  assert "state.tx.update" in flax


@pytest.mark.slow
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


@pytest.mark.slow
def test_signatures_name_the_default_scale_search(html):
  api = (html / "api.html").read_text()
  # The default as written in the source, not the thirteen floats it holds,
  # nor the private module it lives in.
  assert "SCALE_SEARCH" in api
  assert "1e-06, 1e-05" not in api
  assert "_transform.SCALE_SEARCH" not in api


@pytest.fixture(scope="module", name="check_offline")
def check_offline_module():
  spec = importlib.util.spec_from_file_location(
    "check_offline", DOCS / "check_offline.py"
  )
  check_offline = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(check_offline)
  if check_offline.find_browser() is None:
    if os.environ.get("CI"):
      pytest.fail("CI needs Chromium for this check: apt-get install chromium")
    pytest.skip("needs Chromium (apt-get install chromium)")
  return check_offline


@pytest.mark.slow  # headless Chromium
def test_check_catches_a_backslash_or_backtick_in_rendered_math(
  check_offline, tmp_path
):
  # A page as Sphinx writes math, with the pages' own offline MathJax: the
  # escaped underscore of \text{...} and a code span inside math both
  # render literally, which the check must catch; plain math must pass.
  spec = importlib.util.find_spec("sphinx-mathjax-offline")
  assert spec is not None, 'pip install -e ".[docs]"'
  mathjax = pathlib.Path(spec.origin).parent / "static/mathjax/tex-chtml.js"

  def page(name, *formulas):
    spans = "".join(
      f'<p><span class="math notranslate nohighlight">\\({f}\\)</span></p>'
      for f in formulas
    )
    path = tmp_path / f"{name}.html"
    path.write_text(
      f'<html><head><script defer src="{mathjax.as_uri()}"></script>'
      f"</head><body>{spans}</body></html>"
    )
    return path

  clean = page(
    "clean", r"\min(\eta, c_{\mathrm{tie}})", r"\mathrm{tie\_ceiling}"
  )
  problems, num_math = check_offline.check_page(
    check_offline.find_browser(), clean, tmp_path, tmp_path
  )
  assert not problems, problems
  assert num_math == 2
  for formula, shown in (
    (r"\min(\eta, \text{tie\_ceiling})", "tie\\_ceiling"),
    (r"c \in C \ (\text{`scale_search`})", "`scale_search`"),
  ):
    problems, _ = check_offline.check_page(
      check_offline.find_browser(), page("stray", formula), tmp_path, tmp_path
    )
    assert len(problems) == 1, problems
    assert "a backslash or backtick shows in rendered math" in problems[0]
    assert shown in problems[0], problems


@pytest.mark.slow
def test_math_renders_with_no_network(html, check_offline):
  problems, num_math = check_offline.check(html, html.parent / "screenshots")
  assert not problems, "\n".join(problems)
  # MathJax typeset the pages' formulas (both pages have many).
  assert num_math["rule"] > 50, num_math
  assert num_math["api"] > 10, num_math
  for page in check_offline.PAGES:
    assert (html.parent / "screenshots" / f"{page}.png").stat().st_size > 0
