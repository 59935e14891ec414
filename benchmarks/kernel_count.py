r"""Counts the kernels that one probe step launches, in each probe mode.

For each model of the step-cost benchmark (``benchmarks.step_cost``), this
compiles, on the default device:

* ``forward``: one loss evaluation, the unit of the counts;
* ``probe_vmap``, ``probe_sequential``: the update of ``scale_by_hillclimb``
  alone (gradients given) in each probe mode: the probe step and nothing
  else;
* ``step_sgd``, ``step_vmap``, ``step_sequential``: a whole training step
  (``value_and_grad``, update, ``apply_updates``) of SGD and of ``hillclimb``
  in each probe mode.

The hill-climbing programs use ``scale_search=None``: the search runs at the
first update only, and under its ``lax.cond`` the program would hold both the
search and the probe step, though a step runs only one of them.

From each optimized HLO module (``compiled.as_text()``) it counts, with
:func:`count_launches`, the instructions that run as kernels: fusions,
custom-calls (cuBLAS gemms and cuDNN convolutions are custom-calls on GPU) and
any other instruction that is not bookkeeping (parameters, constants, tuples,
bitcasts), in the ENTRY computation and in the computations it runs through
control flow (loop bodies and conditions, times the loop's trip count;
conditional branches; calls, such as the command buffers of XLA:GPU). It
also counts the matrix products among them, inside fusions too. On a GPU a
kernel is a launch; XLA:CPU runs the same units one after another as thunks.

Writes ``kernel_count.json`` and ``kernel_count.md`` and, with ``--hlo``,
every optimized HLO module, so that a run on a machine one no longer has can
be counted again::

  python -m benchmarks.kernel_count --out kernels --hlo kernels/hlo
  python -m benchmarks.kernel_count --out kernels --quick  # small models
"""

import collections
from collections.abc import Callable, Mapping
import dataclasses
import os
import re
import sys
from typing import Any

import jax
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _models
from . import _page
from . import _timing
from . import _train

PROBE_MODES = ("vmap", "sequential")

# Instructions that launch nothing: they name, pack or reinterpret buffers.
# The second halves of asynchronous pairs ("...-done") only wait.
BOOKKEEPING = frozenset(
  {
    "add-dependency",
    "after-all",
    "bitcast",
    "constant",
    "domain",
    "get-tuple-element",
    "opt-barrier",
    "parameter",
    "partition-id",
    "replica-id",
    "tuple",
  }
)

# Library calls that are matrix products (cuBLAS, cuBLASLt, cuDNN, oneDNN).
_MATMUL_TARGET = re.compile(r"gemm|matmul|conv|dot", re.IGNORECASE)

_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%?([\w.\-]+)\s+=\s+(.*)$")
_COMMENT = re.compile(r"/\*.*?\*/")
_CALLED = re.compile(
  r"\b(calls|body|condition|to_apply|true_computation|false_computation)"
  r"=%?([\w.\-]+)"
)
_BRANCHES = re.compile(r"\bbranch_computations=\{([^}]*)\}")
_TARGET = re.compile(r'custom_call_target="([^"]*)"')
_TRIP_COUNT = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')
_FUSION_KIND = re.compile(r"\bkind=(k\w+)")
# What a kCustom fusion is, in its backend config: "__triton_gemm" on GPU,
# "__ynn_fusion" on CPU, ...
_CUSTOM_FUSION_KIND = re.compile(r'"kind"\s*:\s*"([^"]+)"')


@dataclasses.dataclass(frozen=True)
class Instruction:
  """One HLO instruction: its opcode and what it refers to."""

  name: str
  opcode: str
  called: dict[str, str]
  branches: tuple[str, ...]
  target: str | None
  fusion_kind: str | None
  trip_count: int | None


def _skip_shape(text: str) -> int:
  """The index just past the result shape that ``text`` starts with."""
  if not text.startswith("("):
    return text.find(" ")
  # A tuple: its elements are separated by spaces, so match the parentheses.
  depth = 0
  for i, char in enumerate(text):
    depth += {"(": 1, ")": -1}.get(char, 0)
    if depth == 0:
      return i + 1
  raise ValueError(f"Unbalanced tuple shape in HLO: {text[:200]!r}")


def _fusion_kind(rest: str) -> str | None:
  """``"kLoop"``, ``"kCustom __triton_gemm"``, ...; ``None`` if no fusion."""
  kind = _FUSION_KIND.search(rest)
  if kind is None or kind.group(1) != "kCustom":
    return kind and kind.group(1)
  custom = _CUSTOM_FUSION_KIND.search(rest)
  return f"kCustom {custom.group(1)}" if custom else "kCustom"


def _instruction(name: str, rest: str) -> Instruction:
  rest = _COMMENT.sub("", rest)
  after_shape = rest[_skip_shape(rest) :].lstrip()
  opcode = after_shape[: after_shape.index("(")]
  branches = _BRANCHES.search(rest)
  target = _TARGET.search(rest)
  trip_count = _TRIP_COUNT.search(rest)
  return Instruction(
    name=name,
    opcode=opcode,
    called=dict(_CALLED.findall(rest)),
    branches=tuple(b.strip().lstrip("%") for b in branches.group(1).split(","))
    if branches
    else (),
    target=target.group(1) if target else None,
    fusion_kind=_fusion_kind(rest),
    trip_count=int(trip_count.group(1)) if trip_count else None,
  )


def parse_hlo(text: str) -> tuple[str, dict[str, list[Instruction]]]:
  """Parses an HLO module's text into computations.

  Args:
    text: ``compiled.as_text()``.

  Returns:
    The ENTRY computation's name, and every computation's instructions.
  """
  computations: dict[str, list[Instruction]] = {}
  entry = None
  current = None
  for line in text.splitlines():
    if current is None:
      header = _COMPUTATION.match(line)
      if header and line.rstrip().endswith("{"):
        current = computations.setdefault(header.group(2), [])
        if header.group(1):
          entry = header.group(2)
      continue
    if line.startswith("}"):
      current = None
      continue
    instruction = _INSTRUCTION.match(line)
    if instruction:
      current.append(_instruction(*instruction.groups()))
  if entry is None:
    raise ValueError("No ENTRY computation in the HLO text.")
  return entry, computations


@dataclasses.dataclass
class LaunchCounts:
  """What :func:`count_launches` found.

  Attributes:
    launches: instructions run as kernels, each counted as many times as it
      runs (a loop body's as many times as the loop's trip count).
    matmuls: the matrix products among them: ``dot`` and ``convolution``
      instructions, inside fusions too, and library calls to a gemm or a
      convolution.
    by_kind: launches by opcode; custom-calls by target
      (``"custom-call __cublas$gemm"``), fusions by kind
      (``"fusion kLoop"``, ``"fusion kCustom __triton_gemm"``).
    loops: the trip count of each loop run (``None``: XLA did not know it,
      and the body was counted once).
    conditionals: conditionals run; every one of their branches is counted,
      so the counts are then an upper bound.
  """

  launches: int = 0
  matmuls: int = 0
  by_kind: collections.Counter = dataclasses.field(
    default_factory=collections.Counter
  )
  loops: list[int | None] = dataclasses.field(default_factory=list)
  conditionals: int = 0

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["by_kind"] = dict(sorted(self.by_kind.items()))
    return out


def _matmuls(
  computations: Mapping[str, list[Instruction]], instruction: Instruction
) -> int:
  """Matrix products that ``instruction`` computes, in a fusion too."""
  if instruction.opcode in ("dot", "convolution"):
    return 1
  if instruction.opcode == "custom-call":
    return int(bool(_MATMUL_TARGET.search(instruction.target or "")))
  if instruction.opcode == "fusion":
    return sum(
      _matmuls(computations, inner)
      for inner in computations[instruction.called["calls"]]
    )
  return 0


def count_launches(hlo_text: str) -> LaunchCounts:
  """Counts the kernels that one run of an optimized HLO module launches.

  Args:
    hlo_text: ``jax.jit(f).lower(...).compile().as_text()``.

  Returns:
    The counts, see :class:`LaunchCounts`.
  """
  entry, computations = parse_hlo(hlo_text)
  counts = LaunchCounts()

  def walk(name: str, times: int) -> None:
    for instruction in computations[name]:
      opcode = instruction.opcode
      if opcode == "while":
        trips = instruction.trip_count
        counts.loops.append(trips)
        trips = 1 if trips is None else trips
        walk(instruction.called["body"], times * trips)
        walk(instruction.called["condition"], times * (trips + 1))
      elif opcode == "conditional":
        counts.conditionals += times
        branches = instruction.branches or (
          instruction.called["true_computation"],
          instruction.called["false_computation"],
        )
        for branch in branches:
          walk(branch, times)
      elif opcode in ("call", "async-start"):
        walk(instruction.called.get("to_apply") or instruction.called["calls"],
             times)  # fmt: skip
      elif opcode in BOOKKEEPING or opcode.endswith(("-done", "-update")):
        continue
      else:
        kind = opcode
        if opcode == "custom-call":
          kind = f"custom-call {instruction.target}"
        elif opcode == "fusion":
          kind = f"fusion {instruction.fusion_kind}"
        counts.launches += times
        counts.by_kind[kind] += times
        counts.matmuls += times * _matmuls(computations, instruction)

  walk(entry, 1)
  return counts


def programs(model) -> dict[str, tuple[Callable, tuple]]:
  """The programs counted for one model: name -> (function, arguments)."""
  lr = _models.SGD_LR
  out = {"forward": (model.loss, (model.params, model.batch))}
  for mode in PROBE_MODES:
    opt = ohc.scale_by_hillclimb(
      lr, probe=mode, scale_search=None, **_train.EVERY_STEP
    )

    def update(grads, state, params, batch, opt=opt):
      return opt.update(grads, state, params, value_fn=model.loss, batch=batch)

    args = (model.params, opt.init(model.params), model.params, model.batch)
    out[f"probe_{mode}"] = (update, args)
  steps = {"step_sgd": (optax.sgd(lr), _timing.plain_step)}
  for mode in PROBE_MODES:
    opt = ohc.hillclimb(lr, probe=mode, scale_search=None, **_train.EVERY_STEP)
    steps[f"step_{mode}"] = (opt, _timing.probing_step)
  for name, (opt, make_step) in steps.items():
    args = (model.params, opt.init(model.params), model.batch)
    out[name] = (make_step(model, opt), args)
  return out


def count_model(model, hlo_dir: str | None = None) -> dict[str, Any]:
  """Compiles and counts every program of :func:`programs` for ``model``.

  Args:
    model: a :class:`benchmarks._models.Model`.
    hlo_dir: if given, where to write each optimized HLO module, as
      ``<model>_<program>.hlo.txt``.

  Returns:
    The model's entry of ``kernel_count.json``.
  """
  counts = {}
  for name, (fn, args) in programs(model).items():
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    if hlo_dir is not None:
      path = os.path.join(hlo_dir, f"{model.name}_{name}.hlo.txt")
      with open(path, "w") as f:
        f.write(hlo)
    counts[name] = count_launches(hlo).as_dict()
  forward = counts["forward"]["launches"]
  return {
    "description": model.description,
    "programs": counts,
    "probe_launches_in_forwards": {
      mode: counts[f"probe_{mode}"]["launches"] / forward
      for mode in PROBE_MODES
    },
  }


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
  """A Markdown table: launches and matrix products per program and model."""
  names = list(results)
  lines = [
    "| kernels (matmuls) | " + " | ".join(names) + " |",
    "|---|" + "---:|" * len(names),
  ]
  for program in results[names[0]]["programs"]:
    cells = []
    for name in names:
      counts = results[name]["programs"][program]
      cells.append(f"{counts['launches']} ({counts['matmuls']})")
    lines.append(f"| {program} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def run(args) -> dict[str, Any]:
  if args.hlo:
    os.makedirs(args.hlo, exist_ok=True)
  results = {}
  for name in args.models:
    model = _models.build_model(name, args.quick)
    print(f"{name}: {model.description}", file=sys.stderr, flush=True)
    results[name] = count_model(model, args.hlo)
  return {**_page.run_facts(), "quick": args.quick, "models": results}


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  device = summary["device"]
  return (
    _page.header(
      "Kernels of a probe step: the numbers",
      "kernel_count",
      f"Device: {device['platform']} ({device['device_kind']}). Kernels and,"
      " in parentheses, matrix products per program.",
    )
    + format_table(summary["models"])
    + "\n"
  )


def _arguments(parser) -> None:
  parser.add_argument(
    "--models",
    type=_models.model_list,
    default=list(_models.MODEL_NAMES),
    help="comma-separated subset of " + ",".join(_models.MODEL_NAMES),
  )
  parser.add_argument("--hlo", help="folder for the optimized HLO modules")


EXPERIMENT = _cli.Experiment(
  "kernel_count", __doc__, run, page, arguments=_arguments
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
