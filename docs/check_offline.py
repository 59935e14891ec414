r"""Loads built doc pages in headless Chromium with no network, as a reader.

    python docs/check_offline.py docs/_build/html

fails (exit status 1, with the reasons) if a page would fetch anything from
the network, shows raw TeX instead of rendered math, or shows a backslash or
a backtick inside rendered math (``\text{tie\_ceiling}`` renders as
"tie\_ceiling", and a code span inside math keeps its backticks), and
writes what the browser showed to ``docs/_build/screenshots/<page>.png``
(next to the HTML folder) to look at. The browser runs in a network
namespace of its own (``unshare --net``, where the system allows it) and is
also told to resolve no host name, so a page that needs the network fails
here as it would on a machine without one. Needs Debian's ``chromium``
(``apt-get install chromium``).
"""

import argparse
import html.parser
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

# The pages with math.
PAGES = ("rule", "api", "climb")
# Chromium's own background traffic (updates, sync, spelling dictionaries)
# would show in the network log beside the page's requests.
_QUIET_BROWSER = (
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-default-apps",
  "--disable-sync",
  "--disable-extensions",
  "--disable-features=SpellCheck,Translate,OptimizationHints,MediaRouter",
  "--host-resolver-rules=MAP * ~NOTFOUND",
)
# Time, in the browser's virtual clock, for MathJax to typeset a page.
_RENDER_MS = 20000
# Raw TeX a reader would see if the math were not rendered.
_RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+")
# Elements whose text is not prose: code shows backslashes on purpose, and
# MathJax keeps a hidden MathML copy of each formula for screen readers.
_NOT_PROSE = {"script", "style", "pre", "code", "mjx-assistive-mml", "head"}
# CommonHTML glyphs of a backslash and a backtick: in rendered math they are
# leftovers of TeX that did not mean what it says (``\text{a\_b}``, a code
# span inside math), not symbols.
_STRAY_GLYPHS = {"mjx-c5C": "\\", "mjx-c60": "`"}
# Attributes through which a page loads something (a link to another site,
# <a href>, is not fetched, so it is not listed).
_ASSET_ATTRS = {"src", "srcset", "data", "poster"}


def find_browser():
  for name in ("chromium", "chromium-browser", "google-chrome"):
    if path := shutil.which(name):
      return path
  return None


def _isolated(command):
  """Runs ``command`` in a network namespace of its own where permitted."""
  unshare = shutil.which("unshare")
  if unshare:
    probe = subprocess.run(
      [unshare, "--net", "true"], capture_output=True, check=False
    )
    if probe.returncode == 0:
      return [unshare, "--net", *command]
  return list(command)


def run_browser(browser, url, *args, net_log):
  command = _isolated(
    [
      browser, *_QUIET_BROWSER, f"--virtual-time-budget={_RENDER_MS}",
      f"--log-net-log={net_log}", *args, url,
    ]
  )  # fmt: skip
  result = subprocess.run(
    command, capture_output=True, text=True, timeout=120, check=False
  )
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
  return result.stdout


def _read_net_log(net_log):
  text = pathlib.Path(net_log).read_text()
  try:
    return json.loads(text)
  except json.JSONDecodeError:  # Cut short: the log may lack its closing.
    return json.loads(text.rstrip().rstrip(",") + "]}")


def network_requests(net_log):
  """The network URLs that the page asked for, from the browser's log.

  Chromium's own requests (update checks, its clock) are there too, even with
  the flags that should silence them; they have no origin as initiator.
  """
  log = _read_net_log(net_log)
  url_request = log["constants"]["logSourceType"]["URL_REQUEST"]
  urls, browsers_own = {}, set()
  for event in log["events"]:
    source, params = event["source"], event.get("params", {})
    if source["type"] != url_request:
      continue
    if "url" in params:
      urls[source["id"]] = params["url"]
    if params.get("initiator") == "not an origin":
      browsers_own.add(source["id"])
  return sorted(
    url
    for source, url in urls.items()
    if source not in browsers_own and re.match(r"(https?|wss?|ftp)://", url)
  )


class _PageText(html.parser.HTMLParser):
  """The prose of a rendered page, its asset URLs and its math elements."""

  def __init__(self):
    super().__init__()
    self.prose, self.assets = [], []
    self.num_math = self.num_math_errors = 0
    # The text of each formula, from MathJax's MathML copy of it, and the
    # stray characters its rendered glyphs show.
    self.math_texts, self.stray_glyphs = [], []
    self._skipping = []
    self._in_math = self._in_mathml = 0

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag in _NOT_PROSE:
      self._skipping.append(tag)
    self.num_math += tag == "mjx-container"
    self.num_math_errors += tag == "mjx-merror"
    if tag == "mjx-container":
      self._in_math += 1
    if tag == "mjx-assistive-mml":
      self._in_mathml += 1
      self.math_texts.append("")
    elif self._in_math and not self._in_mathml:
      for glyph in (attrs.get("class") or "").split():
        if glyph in _STRAY_GLYPHS:
          self.stray_glyphs.append(_STRAY_GLYPHS[glyph])
    self.assets += [attrs[a] for a in _ASSET_ATTRS & attrs.keys()]
    if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
      self.assets.append(attrs.get("href") or "")

  def handle_endtag(self, tag):
    if self._skipping and self._skipping[-1] == tag:
      self._skipping.pop()
    if tag == "mjx-container" and self._in_math:
      self._in_math -= 1
    if tag == "mjx-assistive-mml" and self._in_mathml:
      self._in_mathml -= 1

  def handle_data(self, data):
    if not self._skipping:
      self.prose.append(data)
    if self._in_mathml:
      self.math_texts[-1] += data


def check_page(browser, page, shots, work):
  """Returns the problems a reader would meet on ``page``, an HTML file."""
  url = page.resolve().as_uri()
  name = page.stem
  dom = run_browser(browser, url, "--dump-dom", net_log=work / f"{name}.json")
  shot = shots / f"{name}.png"
  run_browser(
    browser, url, "--window-size=1280,1600", f"--screenshot={shot}",
    net_log=work / f"{name}_shot.json",
  )  # fmt: skip
  parsed = _PageText()
  parsed.feed(dom)
  problems = [
    f"{name}: fetches {u} from the network"
    for log in (f"{name}.json", f"{name}_shot.json")
    for u in network_requests(work / log)
  ]
  problems += [
    f"{name}: loads the asset {u} from the network"
    for u in parsed.assets
    if re.match(r"(https?:)?//", u)
  ]
  prose = " ".join(" ".join(parsed.prose).split())
  problems += [
    f"{name}: raw TeX in the rendered text: "
    f"...{prose[max(m.start() - 40, 0) : m.end() + 40]}..."
    for m in _RAW_TEX.finditer(prose)
  ][:5]
  problems += [
    f"{name}: a backslash or backtick shows in rendered math: {text}"
    for text in parsed.math_texts
    if "\\" in text or "`" in text
  ][:5]
  if parsed.stray_glyphs and not any(
    "\\" in text or "`" in text for text in parsed.math_texts
  ):
    problems.append(
      f"{name}: rendered math shows {''.join(sorted(set(parsed.stray_glyphs)))}"
    )
  if parsed.num_math_errors:
    problems.append(f"{name}: {parsed.num_math_errors} formulas failed")
  if parsed.num_math == 0 and 'class="math' in page.read_text():
    problems.append(f"{name}: has math, but MathJax typeset none of it")
  return list(dict.fromkeys(problems)), parsed.num_math


def check(html_dir, shots_dir, pages=PAGES):
  """Checks ``pages`` of a built site; returns (problems, formulas seen)."""
  browser = find_browser()
  if browser is None:
    raise RuntimeError("No Chromium found: apt-get install chromium")
  shots_dir = pathlib.Path(shots_dir)
  shots_dir.mkdir(parents=True, exist_ok=True)
  problems, num_math = [], {}
  with tempfile.TemporaryDirectory() as work:
    for name in pages:
      page_problems, num_math[name] = check_page(
        browser, pathlib.Path(html_dir) / f"{name}.html", shots_dir,
        pathlib.Path(work),
      )  # fmt: skip
      problems += page_problems
  return problems, num_math


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("html_dir", type=pathlib.Path)
  parser.add_argument(
    "--screenshots", type=pathlib.Path, default=None,
    help="where the PNGs go (default: screenshots/ beside html_dir)",
  )  # fmt: skip
  args = parser.parse_args()
  shots = args.screenshots or args.html_dir.parent / "screenshots"
  problems, num_math = check(args.html_dir, shots)
  for name, count in num_math.items():
    print(f"{name}: {count} formulas rendered; screenshot {shots}/{name}.png")
  for problem in problems:
    print(problem, file=sys.stderr)
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
