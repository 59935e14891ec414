r"""What probing costs per training step, against SGD and its peers.

For each model (the reference MLP, Flax's MNIST CNN, a small transformer LM),
this times jitted training steps side by side and reports them as ratios to an
SGD step: ``hillclimb`` in each probe mode and every 10 steps, its cheaper
decisions, ``hillclimb_adam``, optax's backtracking line search, and the
floors, an SGD step plus one or two plain loss evaluations written by hand
(``variants`` lists them; ``docs/benchmarks.md`` explains each). The variants
run interleaved in rounds of 10 steps (:func:`time_rounds`); memory comes from
XLA's analysis of each compiled step and of the optimizer's update alone
(:func:`update_copies`).

Run from the repository root::

  python benchmarks/step_cost.py --json docs/results/step_cost.json
  python benchmarks/step_cost.py --quick  # small models, under a minute
"""

import argparse
from collections.abc import Callable
import dataclasses
import functools
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

if not __package__:  # Run as a file: python benchmarks/step_cost.py.
  import _as_module  # noqa: F401

from benchmarks import _models
from benchmarks import _timing
from benchmarks import _train
import optax_hillclimb as ohc

# Steps per variant per round: a multiple of 10, so that every round of
# ``every_k=10`` holds exactly one probe step.
STEPS_PER_ROUND = 10

# Learning rates only keep the runs finite (the MLP takes raw 0-255 pixels);
# they do not change the work a step does.
SGD_LR = {"mlp": 1e-2, "cnn": 1e-2, "transformer": 1e-2}
ADAM_LR = 1e-3

# A step maps (params, opt_state, batch) to (params, opt_state, aux).
Step = Callable[[Any, Any, Any], tuple[Any, Any, Any]]


@dataclasses.dataclass(frozen=True)
class Variant:
  """One way of training: an optimizer and the step that drives it."""

  name: str
  optimizer: optax.GradientTransformation
  make_step: Callable[[_models.Model, optax.GradientTransformation], Step]


def _plain_step(model, opt):
  def step(params, state, batch):
    loss, grads = jax.value_and_grad(model.loss)(params, batch)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  return step


def _floor_step(model, opt, factors=(1.01, 0.99)):
  """An SGD step plus loss evaluations near ``params``, nothing else."""

  def step(params, state, batch):
    loss, grads = jax.value_and_grad(model.loss)(params, batch)
    probes = []
    for c in factors:
      # Scaled by the (traced) loss so that XLA cannot fold the two
      # evaluations into one or into the forward pass of the gradient.
      scale = c * SGD_LR[model.name] * jnp.sign(loss)
      moved = jax.tree.map(lambda p, g, s=scale: p - s * g, params, grads)
      probes.append(model.loss(moved, batch))
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, jnp.stack(probes)

  return step


def _floor1_step(model, opt):
  """An SGD step plus one loss evaluation near ``params``."""
  return _floor_step(model, opt, factors=(1.0,))


def _hillclimb_step(model, opt):
  """A step whose update receives the loss, its function and the batch."""

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


def variants(model_name: str, with_adam: bool) -> list[Variant]:
  """The optimizers compared on one model; ``sgd`` comes first."""
  lr = SGD_LR[model_name]
  # The two-probe rule at every step, which these tables measure.
  hc = functools.partial(ohc.hillclimb, lr, **_train.EVERY_STEP)
  hca = functools.partial(ohc.hillclimb_adam, ADAM_LR, **_train.EVERY_STEP)
  ema = optax.chain(optax.ema(0.9, debias=True), optax.scale(-lr))
  # As optax's own example: SGD with unit step, the search scales it.
  linesearch = optax.chain(
    optax.sgd(1.0),
    optax.scale_by_backtracking_linesearch(max_backtracking_steps=15),
  )
  plain, probing = _plain_step, _hillclimb_step
  table = [
    ("sgd", optax.sgd(lr), plain),
    ("floor", optax.sgd(lr), _floor_step),
    ("floor1", optax.sgd(lr), _floor1_step),
    ("ema", ema, plain),
    ("hillclimb_k1", hc(), probing),
    ("hillclimb_k10", hc(every_k=10), probing),
    ("vmap", hc(probe="vmap"), probing),
    ("sequential", hc(probe="sequential"), probing),
    ("linesearch", linesearch, probing),
  ]
  # The defaults (decision="stretch"): scored once per window, every 128
  # steps; with every_k=10 the decision step falls in every round.
  table += [("stretch", ohc.hillclimb(lr), probing)]
  table += [("stretch_k10", ohc.hillclimb(lr, every_k=10), probing)]
  for d in ("one_probe", "no_probe"):
    table += [(d, hc(decision=d), probing)]
    table += [(f"{d}_raw", hc(smoothing=0.0, decision=d), probing)]
  if with_adam:
    table += [("adam", optax.adam(ADAM_LR), plain)]
    table += [("hillclimb_adam", hca(), probing)]
    table += [("hillclimb_adam_stretch", ohc.hillclimb_adam(ADAM_LR), probing)]
    table += [(f"hillclimb_adam_{d}", hca(decision=d), probing)
              for d in ("one_probe", "no_probe")]  # fmt: skip
  return [Variant(*row) for row in table]


@dataclasses.dataclass
class Program:
  """A compiled step, the variants it serves and their training carry."""

  names: list[str]
  compiled: Any
  carry: tuple[Any, Any]
  memory: dict[str, int]
  evaluations: list[int] = dataclasses.field(default_factory=list)


def _memory(compiled) -> dict[str, int]:
  analysis = compiled.memory_analysis()
  return {
    "temp_bytes": int(analysis.temp_size_in_bytes),
    "argument_bytes": int(analysis.argument_size_in_bytes),
    "output_bytes": int(analysis.output_size_in_bytes),
  }


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
      [variant.name], compiled, (model.params, state), _memory(compiled)
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

  The programs run interleaved chunk by chunk (:mod:`benchmarks._timing`).
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
  seconds = _timing.interleaved_rounds(runners, rounds, steps, chunk)
  return {
    name: seconds[i]
    for i, program in enumerate(programs)
    for name in program.names
  }


def _typical_step(chunk_seconds: np.ndarray) -> float:
  """Seconds per step: the median of each chunk position, summed.

  The median of each position discards the rounds in which the machine stalled,
  and keeps the probe step of ``every_k=10`` (always in the first chunk).
  """
  steps_per_chunk = STEPS_PER_ROUND // chunk_seconds.shape[1]
  position_medians = np.median(chunk_seconds, axis=0)
  return float(position_medians.sum()) / (
    steps_per_chunk * len(position_medians)
  )


def _ratio(seconds, a: str, b: str) -> dict[str, float]:
  """Ratio of the typical steps of ``a`` and ``b``, and its spread.

  Returns:
    ``estimate``: ratio of :func:`_typical_step`; ``median``, ``q1``, ``q3``:
    median and quartiles of the per-round ratios of total time, which show
    how noisy the machine was.
  """
  return {
    "estimate": _typical_step(seconds[a]) / _typical_step(seconds[b]),
    **_timing.round_ratios(seconds[a], seconds[b]),
  }


def _auto_mode(programs: list[Program]) -> str:
  for program in programs:
    if "hillclimb_k1" in program.names:
      for mode in ("vmap", "sequential"):
        if mode in program.names:
          return mode
  return "unknown"


def _faster_mode(vmap_over_sequential: dict[str, float]) -> str:
  """``"vmap"``, ``"sequential"``, or ``"tie"`` if the quartiles straddle 1."""
  if vmap_over_sequential["q1"] <= 1 <= vmap_over_sequential["q3"]:
    return "tie"
  return "sequential" if vmap_over_sequential["estimate"] > 1 else "vmap"


def update_copies(model: _models.Model) -> dict[str, float]:
  """Temporaries of ``hillclimb``'s update beyond a forward pass, in params.

  In a whole step the backward pass sets the peak, which hides the probes;
  this compiles the optimizer's update alone (gradients given) and subtracts
  the temporaries of one loss evaluation. What remains is what probing keeps
  alive: candidate parameters, the smoothed direction and, for vmap, a second
  set of activations.
  """
  param_bytes = _param_bytes(model.params)
  forward = jax.jit(model.loss).lower(model.params, model.batch).compile()
  forward_temp = forward.memory_analysis().temp_size_in_bytes
  out = {}
  for mode in ("sequential", "vmap"):
    opt = ohc.hillclimb(SGD_LR[model.name], probe=mode, **_train.EVERY_STEP)

    def update(grads, state, params, batch, opt=opt):
      return opt.update(grads, state, params, value_fn=model.loss, batch=batch)

    compiled = (
      jax.jit(update)
      .lower(model.params, opt.init(model.params), model.params, model.batch)
      .compile()
    )
    temp = compiled.memory_analysis().temp_size_in_bytes
    out[mode] = (temp - forward_temp) / param_bytes
  return out


# XLA:CPU compiles a whole forward pass into one ``ynn_fusion`` whose scratch
# buffers its memory analysis does not count (6 KB of temporaries for the CNN's
# forward, 16 MB without the fusion). This flag turns that fusion off.
NO_YNN_FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def update_copies_without_ynn_fusion(
  models: str, quick: bool
) -> dict[str, dict[str, float]]:
  """:func:`update_copies` in a child process with YNN fusion turned off.

  XLA reads its flags once per process, hence the child.

  Args:
    models: the ``--models`` argument.
    quick: whether to use the quick models.

  Returns:
    ``{model name: {mode: extra param copies}}``.
  """
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {NO_YNN_FUSION_FLAG}"
  command = [sys.executable, "-m", "benchmarks.step_cost"]
  command += ["--update-copies-only", "--models", models]
  command += ["--quick"] if quick else []
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  child = subprocess.run(
    command, cwd=root, env=env, capture_output=True, text=True, check=False
  )
  if child.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed:\n{child.stderr}")
  return json.loads(child.stdout.splitlines()[-1])


def _param_bytes(params) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))


def measure_model(
  model: _models.Model, rounds: int, quick: bool
) -> dict[str, Any]:
  """Compiles, times and analyses every variant on ``model``.

  Args:
    model: the model.
    rounds: number of timing rounds.
    quick: leave out Adam and the analysis of the update alone, which a quick
      run has no time to compile.

  Returns:
    The model's entry of the JSON report.
  """
  with_adam = not quick
  programs = compile_programs(model, variants(model.name, with_adam))
  seconds = time_rounds(programs, model.batch, rounds, STEPS_PER_ROUND)
  ratios = {
    f"{name}_over_sgd": _ratio(seconds, name, "sgd")
    for name in seconds
    if name != "sgd"
  }
  ratios["vmap_over_sequential"] = _ratio(seconds, "vmap", "sequential")
  ratios["hillclimb_k1_over_floor"] = _ratio(seconds, "hillclimb_k1", "floor")
  ratios["stretch_k10_over_hillclimb_k1"] = _ratio(
    seconds, "stretch_k10", "hillclimb_k1"
  )
  ratios["one_probe_raw_over_floor1"] = _ratio(
    seconds, "one_probe_raw", "floor1"
  )
  for decision in ("one_probe", "no_probe"):
    ratios[f"{decision}_over_ema"] = _ratio(seconds, decision, "ema")
  if with_adam:
    for name in (
      "hillclimb_adam",
      "hillclimb_adam_stretch",
      "hillclimb_adam_one_probe",
      "hillclimb_adam_no_probe",
    ):
      ratios[f"{name}_over_adam"] = _ratio(seconds, name, "adam")
  memory = {name: p.memory for p in programs for name in p.names}
  param_bytes = _param_bytes(model.params)
  extra_temp = {
    mode: (memory[mode]["temp_bytes"] - memory["sgd"]["temp_bytes"])
    / param_bytes
    for mode in ("vmap", "sequential")
  }
  evaluations = [e for p in programs for e in p.evaluations]
  auto_mode = _auto_mode(programs)
  if not quick:
    result_copies = {"update_vs_forward": update_copies(model)}
  else:
    result_copies = {}
  faster_mode = _faster_mode(ratios["vmap_over_sequential"])
  result = {
    "description": model.description,
    "num_params": sum(x.size for x in jax.tree.leaves(model.params)),
    "param_bytes": param_bytes,
    "sgd_ms_per_step": 1e3 * _typical_step(seconds["sgd"]),
    "auto_mode": auto_mode,
    "faster_mode": faster_mode,
    "auto_picks_faster": faster_mode in (auto_mode, "tie"),
    "linesearch_evaluations_per_step": float(np.mean(evaluations)),
    "memory": memory,
    "extra_temp_in_param_copies": {
      "step_vs_sgd_step": extra_temp,
      **result_copies,
    },
    "ratios": ratios,
  }
  # The headline numbers, flat, as the targets and tables name them.
  result.update({key: value["estimate"] for key, value in ratios.items()})
  return result


def targets(result: dict[str, Any]) -> dict[str, bool]:
  """The targets for one model on this machine, pass or fail."""
  out = {
    "k1_cheaper_than_linesearch": (
      result["hillclimb_k1_over_sgd"] < result["linesearch_over_sgd"]
    ),
    "auto_picks_faster": result["auto_picks_faster"],
    # 1% slack for the scalars alongside: loop counter, losses, step sizes.
    "at_most_one_extra_param_copy_sequential": max(
      copies["sequential"]
      for copies in result["extra_temp_in_param_copies"].values()
    )
    <= 1.01,
  }
  if result["name"] == "cnn":
    out["k1_within_5pct_of_floor"] = (
      result["hillclimb_k1_over_sgd"] <= 1.05 * result["floor_over_sgd"]
    )
    out["k10_within_5pct_of_sgd"] = result["hillclimb_k10_over_sgd"] <= 1.05
    # One probe at most 1.17 SGD steps on the CNN (the raw-gradient
    # variant has SGD's direction; the default adds the moving average).
    out["one_probe_raw_at_most_1.17_sgd"] = (
      result["one_probe_raw_over_sgd"] <= 1.17
    )
    out["one_probe_at_most_1.17_sgd"] = result["one_probe_over_sgd"] <= 1.17
  # The defaults cost no more than the two-probe step they replaced, even
  # deciding every 10 steps instead of every 128.
  out["stretch_k10_at_most_two_probe_step"] = (
    result["stretch_k10_over_sgd"] <= result["hillclimb_k1_over_sgd"]
  )
  # No probe at most 1.03 SGD steps on every model.
  out["no_probe_raw_at_most_1.03_sgd"] = result["no_probe_raw_over_sgd"] <= 1.03
  out["no_probe_at_most_1.03_sgd"] = result["no_probe_over_sgd"] <= 1.03
  return out


ROWS = (
  ("floor_over_sgd", "floor (SGD + 2 forwards)"),
  ("floor1_over_sgd", "one-probe floor (SGD + 1 forward)"),
  ("ema_over_sgd", "SGD on the moving average (no decision)"),
  ("hillclimb_k1_over_sgd", "hillclimb, every_k=1"),
  ("hillclimb_k10_over_sgd", "hillclimb, every_k=10"),
  ("vmap_over_sgd", "hillclimb, probe=vmap"),
  ("sequential_over_sgd", "hillclimb, probe=sequential"),
  ("linesearch_over_sgd", "backtracking line search"),
  ("adam_over_sgd", "adam"),
  ("hillclimb_adam_over_sgd", "hillclimb_adam, two probes every step"),
  ("stretch_over_sgd", "hillclimb, defaults (stretch, every_k=128)"),
  ("stretch_k10_over_sgd", "hillclimb, stretch, every_k=10"),
  ("hillclimb_adam_stretch_over_sgd", "hillclimb_adam, defaults"),
  ("one_probe_over_sgd", "hillclimb, one_probe"),
  ("one_probe_raw_over_sgd", "hillclimb, one_probe, smoothing=0"),
  ("no_probe_over_sgd", "hillclimb, no_probe"),
  ("no_probe_raw_over_sgd", "hillclimb, no_probe, smoothing=0"),
  ("hillclimb_adam_one_probe_over_sgd", "hillclimb_adam, one_probe"),
  ("hillclimb_adam_no_probe_over_sgd", "hillclimb_adam, no_probe"),
  ("vmap_over_sequential", "vmap / sequential"),
  ("hillclimb_k1_over_floor", "hillclimb k1 / floor"),
  ("stretch_k10_over_hillclimb_k1", "stretch, every_k=10 / hillclimb k1"),
  ("one_probe_raw_over_floor1", "one_probe, smoothing=0 / one-probe floor"),
  ("one_probe_over_ema", "hillclimb, one_probe / ema"),
  ("no_probe_over_ema", "hillclimb, no_probe / ema"),
  ("hillclimb_adam_over_adam", "hillclimb_adam, two probes / adam"),
  ("hillclimb_adam_stretch_over_adam", "hillclimb_adam, defaults / adam"),
  ("hillclimb_adam_one_probe_over_adam", "hillclimb_adam, one_probe / adam"),
  ("hillclimb_adam_no_probe_over_adam", "hillclimb_adam, no_probe / adam"),
)


def format_table(results: dict[str, dict[str, Any]]) -> str:
  """A Markdown table of the ratios, one column per model."""
  names = list(results)
  lines = [
    "| per step | " + " | ".join(names) + " |",
    "|---|" + "---:|" * len(names),
  ]

  def row(label, cell):
    lines.append(f"| {label} | " + " | ".join(cell(results[n]) for n in names))
    lines[-1] += " |"

  for key, label in ROWS:
    if all(key in results[n] for n in names):
      row(f"time: {label}", lambda r, key=key: f"{r[key]:.3f}")
  row("SGD step, median", lambda r: f"{r['sgd_ms_per_step']:.2f} ms")
  row(
    "line search: loss evaluations",
    lambda r: f"{r['linesearch_evaluations_per_step']:.2f}",
  )
  row("faster probe mode", lambda r: r["faster_mode"])
  row("probe mode auto chose", lambda r: r["auto_mode"])
  row("parameters", lambda r: f"{r['param_bytes'] / 2**20:.2f} MiB")
  for mode in ("sgd", "sequential", "vmap"):
    row(
      f"XLA temp of the step, {mode}",
      lambda r, mode=mode: f"{r['memory'][mode]['temp_bytes'] / 2**20:.2f} MiB",
    )
  for analysis, label in (
    ("update_vs_forward", ""),
    ("update_vs_forward_no_ynn_fusion", ", no YNN fusion"),
  ):
    for mode in ("sequential", "vmap"):
      if all(
        analysis in results[n]["extra_temp_in_param_copies"] for n in names
      ):
        row(
          f"update's temp beyond a forward{label}, {mode} (param copies)",
          lambda r, a=analysis, m=mode: (
            f"{r['extra_temp_in_param_copies'][a][m]:.2f}"
          ),
        )
  return "\n".join(lines)


MODEL_NAMES = ("mlp", "cnn", "transformer")


# The quick run's small sizes, which compile in seconds.
QUICK_SIZES = {
  "mlp": dict(batch_size=100),
  "cnn": dict(batch_size=8),
  "transformer": dict(
    batch_size=2, seq_len=16, width=32, num_layers=1, num_heads=2
  ),
}


def build_model(name: str, quick: bool, seed: int = 0) -> _models.Model:
  """One of the three models, at its benchmark size or, if quick, small."""
  return getattr(_models, name)(seed, **(QUICK_SIZES[name] if quick else {}))


def run_facts() -> dict[str, Any]:
  """The device, the checkout and the versions a measurement ran with."""
  device = jax.devices()[0]
  return {
    "device": {
      "platform": device.platform,
      "device_kind": device.device_kind,
      "num_devices": jax.device_count(),
      "cpu_count": os.cpu_count(),
      "machine": platform.machine(),
    },
    "git": _git_version(),
    "jax_version": jax.__version__,
    "optax_version": optax.__version__,
  }


def _git_version() -> str:
  """The checkout's commit, with ``-dirty`` if files differ from it."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    out = subprocess.run(
      ["git", "describe", "--always", "--dirty"],
      cwd=root,
      capture_output=True,
      text=True,
      check=True,
      timeout=30,
    )
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return out.stdout.strip()


def model_names(parser: argparse.ArgumentParser, models: str) -> list[str]:
  """The models named in ``--models``; an unknown one is an error."""
  wanted = models.split(",")
  unknown = set(wanted) - set(MODEL_NAMES)
  if unknown:
    parser.error(
      f"unknown --models {sorted(unknown)}, expected some of {MODEL_NAMES}"
    )
  return wanted


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--quick",
    action="store_true",
    help="small models, 2 rounds, no Adam: checks the plumbing in < 1 min",
  )
  parser.add_argument("--rounds", type=int, default=30)
  parser.add_argument(
    "--models", default="mlp,cnn,transformer", help="comma-separated subset"
  )
  parser.add_argument("--json", help="write the results to this path")
  # Internal: what update_copies_without_ynn_fusion runs in its child.
  parser.add_argument(
    "--update-copies-only", action="store_true", help=argparse.SUPPRESS
  )
  return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.rounds < 1:
    parser.error(f"--rounds must be at least 1, got {args.rounds}")
  wanted = model_names(parser, args.models)
  rounds = 2 if args.quick else args.rounds
  if args.quick:
    # Compiling dominates a quick run; its numbers only check the plumbing.
    jax.config.update("jax_disable_most_optimizations", True)

  models = [build_model(name, args.quick) for name in wanted]
  if args.update_copies_only:
    print(json.dumps({m.name: update_copies(m) for m in models}))
    return {}
  device = jax.devices()[0]
  # Before any timing, so that the child does not compete with it; not in
  # quick runs, which must stay under a minute.
  unfused = (
    update_copies_without_ynn_fusion(args.models, args.quick)
    if device.platform == "cpu" and not args.quick
    else {}
  )
  load_before = os.getloadavg()
  results = {}
  for model in models:
    print(f"{model.name}: {model.description}", file=sys.stderr, flush=True)
    result = measure_model(model, rounds, quick=args.quick)
    result["name"] = model.name
    if model.name in unfused:
      result["extra_temp_in_param_copies"][
        "update_vs_forward_no_ynn_fusion"
      ] = unfused[model.name]
    result["targets"] = targets(result)
    results[model.name] = result
  report = {
    **run_facts(),
    "quick": args.quick,
    "rounds": rounds,
    "steps_per_round": STEPS_PER_ROUND,
    "load_average_before": load_before,
    "load_average_after": os.getloadavg(),
    "models": results,
  }
  print(f"device: {device.platform} ({device.device_kind}), rounds {rounds}")
  print(format_table(results))
  for name, result in results.items():
    print(f"{name} targets: {result['targets']}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)
      f.write("\n")
  return report


if __name__ == "__main__":
  main()
