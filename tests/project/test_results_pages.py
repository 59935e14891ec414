"""Every committed results page is what its committed JSON redraws.

``python -m benchmarks.<name> --page-only`` rewrites ``docs/results/<name>.md``
from ``<name>.json`` alone; a page edited by hand, or a JSON whose numbers no
longer say what its page says, fails here. The pages are rendered in a child
process, since ``lr_at_minimum`` turns on float64 for the process it runs in.
"""

import importlib
import json
import pathlib
import re

import pytest

from benchmarks import _cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
# Every experiment with a committed page (a new one is found here); the
# kernel counts are written by the accelerator run only.
PAGES = sorted(
  path.stem
  for path in (ROOT / "benchmarks").glob("*.py")
  if "EXPERIMENT = _cli.Experiment(" in path.read_text()
  and path.stem != "kernel_count"
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
  out = str(tmp_path_factory.mktemp("pages"))
  pages = {}
  for name in PAGES:
    module = importlib.import_module(f"benchmarks.{name}")
    summary = json.loads((RESULTS / f"{name}.json").read_text())
    pages[name] = _cli.render(module.EXPERIMENT, summary, out)
  return pages


def test_the_pages_are_found():
  assert {"climb", "robustness", "safe_start", "step_cost", "lm"} <= set(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_page_is_redrawn_from_its_json(rendered, name):
  assert rendered[name] == (RESULTS / f"{name}.md").read_text()


@pytest.mark.parametrize("name", PAGES)
def test_page_speaks_of_the_project_only(name):
  page = (RESULTS / f"{name}.md").read_text()
  assert f"`python -m benchmarks.{name}" in page
  assert "/tmp" not in page
  wording = r"[Ii]ssue \d|[Tt]his machine|python benchmarks/"
  assert not re.search(wording, page)
  assert page.rstrip().endswith("</details>"), "provenance comes last"
