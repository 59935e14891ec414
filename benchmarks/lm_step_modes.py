r"""How to run the language-model benchmark's training steps on a CPU.

Times a step of the byte-level transformer (``benchmarks.lm``, Adam) four
ways, per run and step: a jitted step called from a Python loop; the steps
in ``jax.lax.scan`` inside one ``jax.jit``; and both of them ``jax.vmap``-ed
over ``--runs`` learning rates, as ``_train.train_grid`` trains the MLP's
grids. Each round times every mode once, in turn, and the page reports the
median over rounds of each mode's time relative to the scan of one run.

  python -m benchmarks.lm_step_modes --rounds 3  # docs/results/lm_step_modes.*
  python -m benchmarks.lm_step_modes --quick --out scratch
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _cli
from . import _lm_train
from . import _page
from . import _text
from . import _transformer

ADAM = _lm_train.Method(
  "adam", lambda lr0, steps: optax.adam(lr0), lr0s=(1e-3,)
)


def modes(num_runs: int, config: _transformer.Config):
  """``{name: (runs, carry, advance(carry, ts) -> carry)}``, jitted."""
  init, step = _lm_train.init_and_step(ADAM, 1000, 32, config)
  lr0s = jnp.full([num_runs], 1e-3)
  seeds = jnp.arange(num_runs)

  def scan(carry, ts, lr0, seed, data):
    return jax.lax.scan(lambda c, t: step(c, t, lr0, seed, data), carry, ts)[0]

  one_step = jax.jit(lambda c, t, data: step(c, t, 1e-3, 0, data)[0])
  many_steps = jax.vmap(step, in_axes=(0, None, 0, 0, None))
  vmap_step = jax.jit(lambda c, t, data: many_steps(c, t, lr0s, seeds, data)[0])
  one_scan = jax.jit(lambda c, ts, data: scan(c, ts, 1e-3, 0, data))
  many_scans = jax.vmap(scan, in_axes=(0, None, 0, 0, None))
  vmap_scan = jax.jit(lambda c, ts, data: many_scans(c, ts, lr0s, seeds, data))

  def loop(jitted):
    def advance(carry, ts, data):
      for t in ts:
        carry = jitted(carry, t, data)
      return carry

    return advance

  one = init(0, 1e-3)
  many = jax.vmap(init)(seeds, lr0s)
  return {
    "loop, one run": (1, one, loop(one_step)),
    "scan, one run": (1, one, one_scan),
    f"loop, vmap over {num_runs} runs": (num_runs, many, loop(vmap_step)),
    f"scan, vmap over {num_runs} runs": (num_runs, many, vmap_scan),
  }


def measure(num_runs, steps, rounds, config, data) -> dict[str, np.ndarray]:
  """Seconds per run and step of each mode, [rounds], interleaved."""
  ts = jnp.arange(steps)
  timed = {}
  for name, (runs, carry, advance) in modes(num_runs, config).items():
    jax.block_until_ready(advance(carry, ts, data))  # compile
    timed[name] = (runs, carry, advance, [])
  for _ in range(rounds):
    for runs, carry, advance, seconds in timed.values():
      start = time.perf_counter()
      jax.block_until_ready(advance(carry, ts, data))
      seconds.append((time.perf_counter() - start) / (runs * steps))
  return {name: np.array(t[-1]) for name, t in timed.items()}


def run(args) -> dict:
  config = _transformer.DEFAULT
  steps, rounds = args.steps, args.rounds
  if args.quick:
    config = _transformer.Config(num_layers=1, width=32, num_heads=2)
    steps, rounds = 4, 2
  data = jnp.asarray(_text.load().train)
  seconds = measure(args.runs, steps, rounds, config, data)
  reference = seconds["scan, one run"]
  return {
    "config": dataclasses.asdict(config),
    "steps": steps,
    "rounds": rounds,
    "modes": {
      name: {
        "ms_per_run_and_step": 1e3 * float(np.median(s)),
        "relative_to_one_scan": float(np.median(s / reference)),
      }
      for name, s in seconds.items()
    },
  }


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  config = summary["config"]
  rows = [
    [
      name,
      f"{m['ms_per_run_and_step']:.1f}",
      f"{m['relative_to_one_scan']:.2f}",
    ]
    for name, m in summary["modes"].items()
  ]
  return _page.header(
    "Running the language model's steps on CPU",
    "lm_step_modes",
    "One Adam step of the byte-level transformer of `benchmarks.lm`"
    f" ({config['num_layers']} layers, width {config['width']}, batch 32),"
    f" {summary['steps']} steps per mode and round, {summary['rounds']}"
    " rounds with the modes in turn; times per run and step (the median over"
    " rounds) and relative to the scan of one run (the median of the"
    " per-round ratios).",
    ["--rounds", str(summary["rounds"])],
  ) + _page.markdown_table(
    ["mode", "ms per run and step", "relative to scan, one run"], rows
  )


def _arguments(parser) -> None:
  parser.add_argument("--runs", type=int, default=4, help="runs vmapped")
  parser.add_argument("--steps", type=int, default=20, help="steps per round")
  parser.add_argument("--rounds", type=int, default=5, help="timing rounds")


EXPERIMENT = _cli.Experiment(
  "lm_step_modes", __doc__, run, page, arguments=_arguments
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
