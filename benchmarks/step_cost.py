r"""What probing costs per training step, against SGD and its peers.

For each model (the reference MLP, Flax's MNIST CNN, a small transformer LM),
this times jitted training steps side by side and reports them as ratios to an
SGD step: ``hillclimb`` at its defaults, with two probes at every step (in
each probe mode) and every 10 steps, ``hillclimb_adam``, optax's backtracking
line search, and the floors, an SGD step plus one or two plain loss
evaluations written by hand (``variants`` lists them; ``docs/benchmarks.md``
explains each). The variants run interleaved in rounds of 10 steps
(``_timing.time_rounds``); memory comes from XLA's analysis of each compiled
step and of the optimizer's update alone (:func:`update_copies`).

  python -m benchmarks.step_cost          # docs/results/step_cost.*
  python -m benchmarks.step_cost --quick  # small models, under a minute
"""

import argparse
import functools
import json
import os
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _models
from . import _page
from . import _timing
from . import _train
from ._models import SGD_LR
from ._timing import ratio
from ._timing import typical_step

ADAM_LR = 1e-3
MUON_LR = 0.02


def _floor_step(model, opt, factors=(1.01, 0.99)):
  """An SGD step plus loss evaluations near ``params``, nothing else."""

  def step(params, state, batch):
    loss, grads = jax.value_and_grad(model.loss)(params, batch)
    probes = []
    for c in factors:
      # Scaled by the (traced) loss so that XLA cannot fold the two
      # evaluations into one or into the forward pass of the gradient.
      scale = c * SGD_LR * jnp.sign(loss)
      moved = jax.tree.map(lambda p, g, s=scale: p - s * g, params, grads)
      probes.append(model.loss(moved, batch))
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, jnp.stack(probes)

  return step


def variants(with_adam: bool) -> list[_timing.Variant]:
  """The optimizers compared on one model; ``sgd`` comes first."""
  lr = SGD_LR
  # The two-probe rule at every step (the aliases' defaults before the
  # stretch decision).
  hc = functools.partial(ohc.hillclimb, lr, **_train.EVERY_STEP)
  ema = optax.chain(optax.ema(0.9, debias=True), optax.scale(-lr))
  # As optax's own example: SGD with unit step, the search scales it.
  linesearch = optax.chain(
    optax.sgd(1.0),
    optax.scale_by_backtracking_linesearch(max_backtracking_steps=15),
  )
  plain, probing = _timing.plain_step, _timing.probing_step
  table = [
    ("sgd", optax.sgd(lr), plain),
    ("floor", optax.sgd(lr), _floor_step),
    ("floor1", optax.sgd(lr), functools.partial(_floor_step, factors=(1.0,))),
    ("ema", ema, plain),
    ("hillclimb_k1", hc(), probing),
    ("hillclimb_k10", hc(every_k=10), probing),
    ("vmap", hc(probe="vmap"), probing),
    ("sequential", hc(probe="sequential"), probing),
    ("linesearch", linesearch, probing),
    # The defaults (decision="stretch"): scored once per window, every 128
    # steps; with every_k=10 the decision step falls in every round.
    ("stretch", ohc.hillclimb(lr), probing),
    ("stretch_k10", ohc.hillclimb(lr, every_k=10), probing),
  ]
  if with_adam:
    every = ohc.hillclimb_adam(ADAM_LR, **_train.EVERY_STEP)
    table += [
      ("adam", optax.adam(ADAM_LR), plain),
      ("hillclimb_adam", every, probing),
      ("hillclimb_adam_stretch", ohc.hillclimb_adam(ADAM_LR), probing),
      ("muon", optax.contrib.muon(MUON_LR), plain),
      ("hillclimb_muon", ohc.hillclimb_muon(MUON_LR), probing),
    ]
  return [_timing.Variant(*row) for row in table]


def _auto_mode(programs: list[_timing.Program]) -> str:
  """The probe mode whose program ``probe="auto"`` compiled to."""
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
    opt = ohc.hillclimb(SGD_LR, probe=mode, **_train.EVERY_STEP)

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
  models: list[str], quick: bool
) -> dict[str, dict[str, float]]:
  """:func:`update_copies` in a child process with YNN fusion turned off.

  XLA reads its flags once per process, hence the child. Returns
  ``{model name: {mode: extra param copies}}``.
  """
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {NO_YNN_FUSION_FLAG}"
  command = [sys.executable, "-m", "benchmarks.step_cost"]
  command += ["--update-copies-only", "--models", ",".join(models)]
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
  programs = _timing.compile_programs(model, variants(with_adam))
  seconds = _timing.time_rounds(
    programs, model.batch, rounds, _timing.STEPS_PER_ROUND
  )
  ratios = {
    f"{name}_over_sgd": ratio(seconds, name, "sgd")
    for name in seconds
    if name != "sgd"
  }
  ratios["vmap_over_sequential"] = ratio(seconds, "vmap", "sequential")
  ratios["hillclimb_k1_over_floor"] = ratio(seconds, "hillclimb_k1", "floor")
  ratios["stretch_k10_over_hillclimb_k1"] = ratio(
    seconds, "stretch_k10", "hillclimb_k1"
  )
  if with_adam:
    for name in ("hillclimb_adam", "hillclimb_adam_stretch"):
      ratios[f"{name}_over_adam"] = ratio(seconds, name, "adam")
    ratios["hillclimb_muon_over_muon"] = ratio(
      seconds, "hillclimb_muon", "muon"
    )
  memory = {name: p.memory for p in programs for name in p.names}
  flops = {name: p.flops for p in programs for name in p.names}
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
    "sgd_ms_per_step": 1e3 * typical_step(seconds["sgd"]),
    "auto_mode": auto_mode,
    "faster_mode": faster_mode,
    "auto_picks_faster": faster_mode in (auto_mode, "tie"),
    "linesearch_evaluations_per_step": float(np.mean(evaluations)),
    "memory": memory,
    "flops_per_step": flops,
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
  """The targets for one model, pass or fail, on the device it ran on."""
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
  if result["name"] == "transformer" and "hillclimb_muon_over_muon" in result:
    # On the transformer, a climbed direction costs at most 5% more than the
    # direction's own step (the loss passed as value: only decisions
    # evaluate).
    for name in (
      "hillclimb_adam_stretch_over_adam",
      "hillclimb_muon_over_muon",
    ):
      out[f"{name}_within_5pct"] = result[name] <= 1.05
  # The defaults cost no more than the two-probe step they replaced, even
  # deciding every 10 steps instead of every 128.
  out["stretch_k10_at_most_two_probe_step"] = (
    result["stretch_k10_over_sgd"] <= result["hillclimb_k1_over_sgd"]
  )
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
  ("vmap_over_sequential", "vmap / sequential"),
  ("hillclimb_k1_over_floor", "hillclimb k1 / floor"),
  ("stretch_k10_over_hillclimb_k1", "stretch, every_k=10 / hillclimb k1"),
  ("hillclimb_adam_over_adam", "hillclimb_adam, two probes / adam"),
  ("hillclimb_adam_stretch_over_adam", "hillclimb_adam, defaults / adam"),
  ("hillclimb_muon_over_muon", "hillclimb_muon, defaults / muon"),
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


def run(args) -> dict[str, Any]:
  rounds = 2 if args.quick else args.rounds
  if args.quick:
    # Compiling dominates a quick run; its numbers only check the plumbing.
    jax.config.update("jax_disable_most_optimizations", True)
  models = [_models.build_model(name, args.quick) for name in args.models]
  if args.update_copies_only:
    print(json.dumps({m.name: update_copies(m) for m in models}))
    raise SystemExit(0)
  # Before any timing, so that the child does not compete with it; not in
  # quick runs, which must stay under a minute.
  unfused = {}
  if jax.default_backend() == "cpu" and not args.quick:
    unfused = update_copies_without_ynn_fusion(args.models, args.quick)
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
  return {
    **_page.run_facts(),
    "quick": args.quick,
    "rounds": rounds,
    "steps_per_round": _timing.STEPS_PER_ROUND,
    "load_average_before": load_before,
    "load_average_after": os.getloadavg(),
    "models": results,
  }


def _device(device: dict) -> str:
  if device["platform"] == "cpu":
    return f"{device['cpu_count']}-core {device['machine']} CPU"
  return f"{device['num_devices']} x {device['device_kind']}"


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  targets = "".join(
    f"- {name}: "
    + ", ".join(
      f"{k} {'met' if v else '**not met**'}" for k, v in r["targets"].items()
    )
    + "\n"
    for name, r in summary["models"].items()
  )
  return (
    _page.header(
      "What probing costs per step: the numbers",
      "step_cost",
      f"Device: {_device(summary['device'])},"
      f" {summary['rounds']} rounds of {summary['steps_per_round']} steps"
      " of every variant, interleaved; load average"
      f" {summary['load_average_before'][0]:.1f} before the run and"
      f" {summary['load_average_after'][0]:.1f} after. Times are ratios to"
      " an SGD step of the same model in the same run;"
      " `docs/benchmarks.md` says what each variant is and how to read the"
      " table.",
    )
    + format_table(summary["models"])
    + "\n\n## Targets\n\n"
    + targets
  )


def _arguments(parser) -> None:
  parser.add_argument("--rounds", type=int, default=30, help="timing rounds")
  parser.add_argument(
    "--models",
    type=_models.model_list,
    default=list(_models.MODEL_NAMES),
    help="comma-separated subset of " + ",".join(_models.MODEL_NAMES),
  )
  # Internal: what update_copies_without_ynn_fusion runs in its child.
  parser.add_argument(
    "--update-copies-only", action="store_true", help=argparse.SUPPRESS
  )


EXPERIMENT = _cli.Experiment(
  "step_cost", __doc__, run, page, arguments=_arguments
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
