"""Timing training steps side by side on a noisy machine.

Nothing is timed alone: every variant runs in each round, interleaved
(A, B, C, A, B, C, ...) and starting from a different variant each round, so
that a slow spell of the machine hits all of them alike. Ratios are taken
within a round and summarised over rounds by their median and quartiles.
``step_cost`` and ``climb`` time their variants with :func:`compile_programs`
and :func:`time_rounds`.
"""

from collections.abc import Callable, Mapping
import dataclasses
import functools
import time
from typing import Any

import jax
import numpy as np
import optax

from benchmarks import _models

# Steps per variant per round: a multiple of 10, so that every round of
# ``every_k=10`` holds exactly one probe step.
STEPS_PER_ROUND = 10

# A step maps (params, opt_state, batch) to (params, opt_state, aux).
Step = Callable[[Any, Any, Any], tuple[Any, Any, Any]]


def plain_step(model, opt) -> Step:
  """A training step whose update receives the gradient only."""

  def step(params, state, batch):
    loss, grads = jax.value_and_grad(model.loss)(params, batch)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  return step


def probing_step(model, opt) -> Step:
  """A step whose update also receives the loss, its function and the batch.

  And the gradient as ``grad``, which optax's line search needs; the hill
  climbers pass it on to none of their losses, which take no ``grad``.
  """

  def step(params, state, batch):
    loss, grads = jax.value_and_grad(model.loss)(params, batch)
    updates, state = opt.update(
      grads,
      state,
      params,
      value_fn=model.loss,
      value=loss,
      grad=grads,
      batch=batch,
    )
    return optax.apply_updates(params, updates), state, loss

  return step


@dataclasses.dataclass(frozen=True)
class Variant:
  """One way of training: an optimizer and the step that drives it."""

  name: str
  optimizer: optax.GradientTransformation
  make_step: Callable[[_models.Model, optax.GradientTransformation], Step]


def interleaved_rounds(
  runners: Mapping[str, Callable[[int], float]],
  rounds: int,
  steps: int,
  chunk: int,
) -> dict[str, np.ndarray]:
  """Seconds taken by each chunk of steps, per variant: [rounds, chunks].

  Args:
    runners: ``runner(n)`` runs ``n`` steps of a variant and returns the
      seconds they took.
    rounds: number of rounds.
    steps: steps of every variant per round, a multiple of ``chunk``.
    chunk: consecutive steps of one variant before the next takes its turn.

  Returns:
    The seconds of every chunk of every round, by variant.
  """
  if steps % chunk:
    raise ValueError(f"steps={steps} is not a multiple of chunk={chunk}.")
  names = list(runners)
  seconds = {name: np.zeros((rounds, steps // chunk)) for name in names}
  for r in range(rounds):
    shift = r % len(names)
    order = names[shift:] + names[:shift]
    for c in range(steps // chunk):
      for name in order:
        seconds[name][r, c] = runners[name](chunk)
  return seconds


def round_ratios(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
  """Median and quartiles of the per-round ratios of ``a``'s time to ``b``'s."""
  per_round = a.sum(axis=1) / b.sum(axis=1)
  q1, median, q3 = np.percentile(per_round, [25, 50, 75])
  return {"median": float(median), "q1": float(q1), "q3": float(q3)}


@dataclasses.dataclass
class Program:
  """A compiled step, the variants it serves and their training carry."""

  names: list[str]
  compiled: Any
  carry: tuple[Any, Any]
  memory: dict[str, int]
  flops: float
  evaluations: list[int] = dataclasses.field(default_factory=list)


def _memory(compiled) -> dict[str, int]:
  analysis = compiled.memory_analysis()
  return {
    "temp_bytes": int(analysis.temp_size_in_bytes),
    "argument_bytes": int(analysis.argument_size_in_bytes),
    "output_bytes": int(analysis.output_size_in_bytes),
  }


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  # Older jax returns one dict per computation in a list.
  if isinstance(analysis, list):
    analysis = analysis[0]
  return float(analysis["flops"])


def compile_programs(
  model: _models.Model, model_variants: list[Variant]
) -> list[Program]:
  """Compiles each variant's step once; identical programs are shared.

  ``hillclimb_k1`` (``probe="auto"``) lowers to the same program as one of the
  explicit probe modes, and this is how the benchmark reads which one.
  """
  by_text: dict[str, Program] = {}
  for variant in model_variants:
    state = variant.optimizer.init(model.params)
    step = variant.make_step(model, variant.optimizer)
    lowered = jax.jit(step).lower(model.params, state, model.batch)
    text = lowered.as_text()
    if text in by_text:
      by_text[text].names.append(variant.name)
      continue
    compiled = lowered.compile()
    by_text[text] = Program(
      [variant.name],
      compiled,
      (model.params, state),
      _memory(compiled),
      _flops(compiled),
    )
  return list(by_text.values())


def _run(program: Program, batch: Any, steps: int) -> float:
  """Runs ``steps`` training steps, returns the seconds they took."""
  params, state = program.carry
  start = time.perf_counter()
  for _ in range(steps):
    params, state, aux = program.compiled(params, state, batch)
  jax.block_until_ready((params, state, aux))
  seconds = time.perf_counter() - start
  program.carry = (params, state)
  if "linesearch" in program.names:
    # Its cost depends on how many times it evaluated the loss (the last of
    # these steps; read after the clock stopped).
    program.evaluations.append(
      int(optax.tree.get(state, "num_linesearch_steps"))
    )
  return seconds


def _chunk_length(seconds_per_step: float, steps: int) -> int:
  """Consecutive steps per timing: a divisor of ``steps`` lasting >= 5 ms.

  Short steps are timed in chunks, so that dispatching and waiting for each
  step does not count; long steps one by one, so that all variants share the
  same moments of a noisy machine.
  """
  for chunk in range(1, steps + 1):
    if steps % chunk == 0 and chunk * seconds_per_step >= 5e-3:
      return chunk
  return steps


def time_rounds(
  programs: list[Program], batch: Any, rounds: int, steps: int
) -> dict[str, np.ndarray]:
  """Seconds taken by each chunk of steps, per variant: [rounds, chunks].

  The programs run interleaved chunk by chunk (:func:`interleaved_rounds`).
  Every program starts each round at the same step of its ``every_k=10``
  cycle, so a chunk's position in the round says whether it holds the probe
  step.
  """
  # Warm-up: first calls allocate and page in. Programs[0] is SGD.
  warm_up = [_run(program, batch, steps) for program in programs]
  chunk = _chunk_length(warm_up[0] / steps, steps)
  for program in programs:
    program.evaluations.clear()
  runners = {
    i: functools.partial(_run, program, batch)
    for i, program in enumerate(programs)
  }
  seconds = interleaved_rounds(runners, rounds, steps, chunk)
  return {
    name: seconds[i]
    for i, program in enumerate(programs)
    for name in program.names
  }


def typical_step(chunk_seconds: np.ndarray) -> float:
  """Seconds per step: the median of each chunk position, summed.

  The median of each position discards the rounds in which the machine stalled,
  and keeps the probe step of ``every_k=10`` (always in the first chunk).
  """
  steps_per_chunk = STEPS_PER_ROUND // chunk_seconds.shape[1]
  position_medians = np.median(chunk_seconds, axis=0)
  return float(position_medians.sum()) / (
    steps_per_chunk * len(position_medians)
  )


def ratio(seconds, a: str, b: str) -> dict[str, float]:
  """Ratio of the typical steps of ``a`` and ``b``, and its spread.

  Returns:
    ``estimate``: ratio of :func:`_typical_step`; ``median``, ``q1``, ``q3``:
    median and quartiles of the per-round ratios of total time, which show
    how noisy the machine was.
  """
  return {
    "estimate": typical_step(seconds[a]) / typical_step(seconds[b]),
    **round_ratios(seconds[a], seconds[b]),
  }
