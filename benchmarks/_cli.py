"""What every experiment's command line does, once.

An experiment is a :class:`Experiment`: a name, what it runs and how its page
reads. :func:`main` gives it the common options and the common flow: run (or,
with ``--page-only``, read the committed JSON), merge with the previous
results if asked, write ``<name>.json`` and ``<name>.md``.
"""

import argparse
from collections.abc import Callable, Mapping, Sequence
import dataclasses
import json
import os
import time
from typing import Any

from benchmarks import _page

Summary = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One results page and the runs behind it.

  Attributes:
    name: the page's file name, ``<name>.md`` and ``<name>.json``.
    doc: the script's docstring; its first line describes it in ``--help``.
    run: ``run(args) -> summary``, the JSON-ready results of a run.
    page: ``page(summary, out) -> markdown``; draws its figures into ``out``
      and reads nothing but ``summary``, so that a page can be redrawn from
      its JSON.
    seeds: the number of seeds of a full and of a quick run; ``None`` for an
      experiment without seeds.
    methods: the names ``--methods`` accepts; empty for an experiment that
      always runs all.
    groups: names of groups of ``methods`` that ``--methods`` also accepts.
    merge: ``merge(previous, new) -> summary``, where ``--merge`` keeps the
      previous run's results that this run did not make; ``None``: no
      ``--merge``.
    arguments: adds the experiment's own options to the parser.
  """

  name: str
  doc: str
  run: Callable[[argparse.Namespace], Summary]
  page: Callable[[Summary, str], str]
  seeds: tuple[int, int] | None = None
  methods: Sequence[str] = ()
  groups: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
  merge: Callable[[Summary, Summary], Summary] | None = None
  arguments: Callable[[argparse.ArgumentParser], None] | None = None


def parser(experiment: Experiment) -> argparse.ArgumentParser:
  """The common options, and the experiment's own."""
  p = argparse.ArgumentParser(
    prog=f"python -m benchmarks.{experiment.name}",
    description=experiment.doc.split("\n")[0],
  )
  p.add_argument(
    "--quick", action="store_true", help="a small run that checks the plumbing"
  )
  p.add_argument("--out", default="docs/results", help="folder for the page")
  p.add_argument(
    "--page-only",
    action="store_true",
    help=f"only redraw {experiment.name}.md (and figures) from its JSON",
  )
  if experiment.seeds is not None:
    full, quick = experiment.seeds
    p.add_argument(
      "--seeds", type=int, help=f"seeds (default {full}; {quick} with --quick)"
    )
  if experiment.methods:
    p.add_argument(
      "--methods",
      action="append",
      help="run only this method (a name, or a group: "
      + ", ".join(experiment.groups)
      + "); repeat for more",
    )
  if experiment.merge is not None:
    p.add_argument(
      "--merge",
      action="store_true",
      help=f"keep the results not run again from {experiment.name}.json",
    )
  if experiment.arguments is not None:
    experiment.arguments(p)
  return p


def select(
  requested: Sequence[str] | None,
  names: Sequence[str],
  groups: Mapping[str, Sequence[str]],
) -> list[str] | None:
  """The names given to ``--methods``, groups expanded, in ``names`` order."""
  if not requested:
    return None
  wanted = set()
  for item in requested:
    if item in groups:
      wanted.update(groups[item])
    elif item in names:
      wanted.add(item)
    else:
      raise SystemExit(
        f"--methods: unknown method {item!r}; expected a method name or one"
        f" of {sorted(groups)} (names: {list(names)})"
      )
  return [n for n in names if n in wanted]


def load(out: str, name: str) -> Summary:
  path = os.path.join(out, f"{name}.json")
  if not os.path.exists(path):
    raise SystemExit(f"No {path} to read: run the experiment first.")
  with open(path) as f:
    return json.load(f)


def save(out: str, name: str, summary: Summary) -> None:
  """Writes ``<name>.json``, whole, then renamed: never seen half written."""
  path = os.path.join(out, f"{name}.json")
  with open(path + ".tmp", "w") as f:
    json.dump(summary, f, indent=1)
  os.replace(path + ".tmp", path)


def render(experiment: Experiment, summary: Summary, out: str) -> str:
  """The page of ``summary``, with its provenance at the end."""
  markdown = experiment.page(summary, out)
  return markdown + _page.provenance_block(summary.get("_provenance", []))


def main(experiment: Experiment, argv: Sequence[str] | None = None) -> Summary:
  """Parses the command line, runs the experiment and writes its page."""
  args = parser(experiment).parse_args(argv)
  if experiment.seeds is not None and args.seeds is None:
    args.seeds = experiment.seeds[args.quick]
  if experiment.methods:
    args.methods = select(args.methods, experiment.methods, experiment.groups)
  os.makedirs(args.out, exist_ok=True)
  if args.page_only:
    summary = load(args.out, experiment.name)
  else:
    merging = getattr(args, "merge", False)
    previous = load(args.out, experiment.name) if merging else None
    start = time.time()
    summary = experiment.run(args)
    summary["_provenance"] = [_page.provenance(time.time() - start)]
    if previous is not None:
      runs = previous.get("_provenance", []) + summary["_provenance"]
      summary = experiment.merge(previous, summary)
      summary["_provenance"] = runs
    save(args.out, experiment.name, summary)
  markdown = render(experiment, summary, args.out)
  with open(os.path.join(args.out, f"{experiment.name}.md"), "w") as f:
    f.write(markdown)
  print(markdown)
  return summary
