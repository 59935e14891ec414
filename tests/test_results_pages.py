"""Every committed results page is what its committed JSON redraws.

``python benchmarks/<name>.py --page-only`` rewrites ``docs/results/<name>.md``
from ``<name>.json`` alone; a page edited by hand, or a JSON whose numbers no
longer say what its page says, fails here. The pages are rendered in a child
process, since ``lr_at_minimum`` turns on float64 for the process it runs in.
"""

import json
import pathlib
import re
import sys

import _user_shell
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
# Every experiment with a page (a new one is found here).
PAGES = sorted(
  path.stem
  for path in (ROOT / "benchmarks").glob("*.py")
  if "EXPERIMENT = _cli.Experiment(" in path.read_text()
)

RENDER = """
import importlib, json, sys
out = sys.argv[1]
from benchmarks import _cli
pages = {}
for name in sys.argv[2:]:
  module = importlib.import_module(f"benchmarks.{name}")
  with open(f"docs/results/{name}.json") as f:
    summary = json.load(f)
  pages[name] = _cli.render(module.EXPERIMENT, summary, out)
print(json.dumps(pages))
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
  out = tmp_path_factory.mktemp("pages")
  result = _user_shell.run(
    [sys.executable, "-c", RENDER, str(out), *PAGES], ROOT, timeout=300
  )
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout)


def test_the_pages_are_found():
  assert {"climb", "robustness", "safe_start"} <= set(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_page_is_redrawn_from_its_json(rendered, name):
  assert rendered[name] == (RESULTS / f"{name}.md").read_text()


@pytest.mark.parametrize("name", PAGES)
def test_page_speaks_of_the_project_only(name):
  page = (RESULTS / f"{name}.md").read_text()
  assert f"`python benchmarks/{name}.py" in page
  assert "/tmp" not in page
  assert not re.search(r"[Ii]ssue \d|python -m ", page)
  assert page.rstrip().endswith("</details>"), "provenance comes last"
