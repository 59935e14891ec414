r"""A byte-level transformer language model on Debian's fortunes.

A decoder transformer (2 layers, width 96, 4 heads, 64-byte context) trained
on batches of 32 random windows of the fortunes' training records, scored by
its loss in bits per byte on held-out records (about one in ten, fixed by each
record's CRC-32). Every optimizer trains the same steps on the same batches
for each seed. Three groups of runs, each saved as it finishes:

- ``baselines``: AdamW with 5% warmup and cosine decay, constant Adam and
  ``schedule_free_adamw``, each tuned on a grid of learning rates (on seed 0;
  the other seeds at the rate chosen), and ``prodigy``, ``dadapt_adamw`` and
  ``mechanize`` (around Adam) at their defaults;
- ``climb``: ``hillclimb_adam`` and ``hillclimb`` at their defaults
  (``decision="stretch"``) and told the run's length (``total_steps``),
  from starting rates with six different mantissas over six decades;
- ``directions``: other directions than Adam's: ``hillclimb_muon`` told the
  run's length, from the ``climb`` group's starting rates and its default
  start (0.02); Muon (``optax.contrib.muon``) with 5% warmup and cosine
  decay at peaks around its usual rate (each peak at every seed); Lion's and
  AdEMAMix's ``scale_by_*`` directions chained before ``scale_by_hillclimb``,
  and ``optax.lion`` and ``optax.contrib.ademamix`` with warmup and cosine
  at peaks around theirs (Lion's 3-10 times below Adam's).

Runs already in ``lm.json`` are kept with ``--merge`` and not made again, so
that the runs can be made a group (``--methods climb``), a method or a seed
at a time; ``lm.json`` is saved after every run. A climbing run whose state
after its first update equals one already made (same method and seed) is
that run, its lr0 only seeding the state: it is recorded as such
(``same_run_as``), not trained again.

  python -m benchmarks.lm                                # docs/results/lm.*
  python -m benchmarks.lm --methods climb --merge       # one group
  python -m benchmarks.lm --methods directions --merge  # other directions
  python -m benchmarks.lm --quick --out scratch         # a small model
"""

import dataclasses
import json
import time

import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _lm_page
from . import _lm_train
from . import _text
from . import _train
from . import _transformer
from ._lm_train import Method

# Tuned on seed 0's final validation loss; the other seeds run at the choice.
TUNED = ("adamw_cosine", "adam", "schedule_free_adamw")
CLIMB_LR0S = (1e-6, 2e-5, 3e-4, 5e-3, 7e-2, 1.5)
# Muon's peaks under warmup and cosine (its usual rate is about 0.02).
MUON_PEAKS = (1e-2, 2e-2, 5e-2)
# Lion's sit 3-10 times below Adam's (AdamW-cosine's best here is 1e-2);
# AdEMAMix's around Adam's.
LION_PEAKS = (3e-4, 1e-3, 3e-3)
ADEMAMIX_PEAKS = (3e-3, 1e-2, 3e-2)
WARMUP = 0.05
SPIKE_SKIP = 0.05  # spikes are counted after this fraction of the steps
SPIKE_DECAY = 0.95  # the running average of batch losses (about 20 steps)


@dataclasses.dataclass(frozen=True)
class Settings:
  steps: int = 1000
  eval_every: int = 100
  seeds: int = 2
  validation_windows: int = 512
  config: _transformer.Config = _transformer.DEFAULT


QUICK = Settings(
  steps=40,
  eval_every=20,
  validation_windows=64,
  config=_transformer.Config(num_layers=1, width=32, num_heads=2),
)


def warmup_cosine(lr0, steps):
  """5% warmup, then cosine decay to zero, peaking at ``lr0``."""
  # The schedule's shape with peak 1, times lr0: optax's schedule would test
  # the (traced) peak against zero.
  shape = optax.warmup_cosine_decay_schedule(
    0.0, 1.0, max(1, int(WARMUP * steps)), steps
  )
  return lambda count: lr0 * shape(count)


def adamw_cosine(lr0, steps):
  return optax.adamw(warmup_cosine(lr0, steps))


def muon_cosine(lr0, steps):
  return optax.contrib.muon(warmup_cosine(lr0, steps))


def lion_cosine(lr0, steps):
  return optax.lion(warmup_cosine(lr0, steps))


def ademamix_cosine(lr0, steps):
  return optax.contrib.ademamix(warmup_cosine(lr0, steps))


def climbing(name, make, lr0s, feed="same"):
  """A hill-climbing method: the climbed rate is recorded."""
  return Method(
    name,
    make,
    learning_rate=_train.hillclimb_learning_rate,
    lr0s=lr0s,
    feed=feed,
  )


def baselines(quick: bool) -> list[Method]:
  def default(name, make):
    return Method(name, lambda lr0, steps: make(), lr0s=(0.0,))

  sf = optax.contrib
  return [
    Method("adamw_cosine", adamw_cosine, lr0s=(3e-3, 1e-2) if quick
           else (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
    Method("adam", lambda lr0, steps: optax.adam(lr0),
           lr0s=(3e-4, 1e-3, 3e-3, 1e-2)),
    Method("schedule_free_adamw",
           lambda lr0, steps: sf.schedule_free_adamw(lr0),
           # 2.5e-3 is its default.
           lr0s=(1e-3, 2.5e-3, 1e-2, 3e-2),
           eval_params=sf.schedule_free_eval_params),
    default("prodigy", sf.prodigy),
    default("dadapt_adamw", sf.dadapt_adamw),
    default("mechanize_adam", lambda: sf.mechanize(optax.adam(1.0))),
  ][: 1 if quick else None]  # fmt: skip


def climbers(quick: bool) -> list[Method]:
  methods = [
    climbing("hillclimb_adam", lambda lr0, steps: ohc.hillclimb_adam(lr0),
             CLIMB_LR0S),
    climbing("hillclimb", lambda lr0, steps: ohc.hillclimb(lr0),
             (3e-4, 7e-2)),
    # Told the run's length, as a training loop that knows it would.
    climbing("hillclimb_adam, total_steps",
             lambda lr0, steps: ohc.hillclimb_adam(lr0, total_steps=steps),
             CLIMB_LR0S),
    climbing("hillclimb, total_steps",
             lambda lr0, steps: ohc.hillclimb(lr0, total_steps=steps),
             (3e-4, 7e-2)),
  ]  # fmt: skip
  if quick:
    return [dataclasses.replace(methods[0], lr0s=(3e-4,))]
  return methods


def chained(direction, **climb):
  """``make(lr0, steps)``: ``direction()`` climbed, told the run's length."""
  return lambda lr0, steps: optax.chain(
    direction(), ohc.scale_by_hillclimb(lr0, total_steps=steps, **climb)
  )


def directions(quick: bool) -> list[Method]:
  """Other directions, each climbed and on its own tuned schedule: Muon's;
  Lion's and AdEMAMix's (``scale_by_*`` chained before
  ``scale_by_hillclimb``).
  """
  methods = [
    climbing("hillclimb_muon, total_steps",
             lambda lr0, steps: ohc.hillclimb_muon(lr0, total_steps=steps),
             (*CLIMB_LR0S, 2e-2)),  # and its default start
    Method("muon_cosine", muon_cosine, lr0s=MUON_PEAKS),
    climbing("lion, climbed", chained(optax.scale_by_lion), CLIMB_LR0S),
    Method("lion_cosine", lion_cosine, lr0s=LION_PEAKS),
    climbing("ademamix, climbed", chained(optax.contrib.scale_by_ademamix),
             CLIMB_LR0S),
    Method("ademamix_cosine", ademamix_cosine, lr0s=ADEMAMIX_PEAKS),
    # Probes centred an eighth of the window back, as hillclimb_muon's.
    climbing("lion, climbed, center=1/8",
             chained(optax.scale_by_lion, center=1 / 8), CLIMB_LR0S),
    climbing("ademamix, climbed, center=1/8",
             chained(optax.contrib.scale_by_ademamix, center=1 / 8),
             CLIMB_LR0S),
    # Each decision judged on the eight steps that end at it.
    climbing("hillclimb_muon, total_steps, judge_steps=8",
             lambda lr0, steps: ohc.hillclimb_muon(
               lr0, total_steps=steps, judge_steps=8),
             (*CLIMB_LR0S, 2e-2)),
  ]  # fmt: skip
  if quick:
    return [dataclasses.replace(methods[0], lr0s=(3e-4,)),
            dataclasses.replace(methods[1], lr0s=(5e-2,))]  # fmt: skip
  return methods


def max_spike(batch_loss: np.ndarray) -> tuple[float, int]:
  """The largest ratio of a batch loss to the running average before it.

  The running average is an exponential moving average (decay
  ``SPIKE_DECAY``) of the batch losses before the step; steps in the first
  ``SPIKE_SKIP`` of the run are not counted. Returns ``(ratio, step)``;
  a non-finite loss counts as an infinite ratio.
  """
  average, worst, at = batch_loss[0], 0.0, -1
  for t in range(1, len(batch_loss)):
    ratio = batch_loss[t] / average if np.isfinite(batch_loss[t]) else np.inf
    if t >= SPIKE_SKIP * len(batch_loss) and not ratio <= worst:
      worst, at = float(ratio), t
    if np.isfinite(batch_loss[t]):
      average = SPIKE_DECAY * average + (1 - SPIKE_DECAY) * batch_loss[t]
  return worst, at


def record(method: Method, lr0: float, seed: int, run) -> dict:
  """The JSON record of one run."""
  spike, spike_step = max_spike(run.batch_loss)
  finite = np.where(np.isfinite(run.validation), run.validation, np.inf)
  tail = run.learning_rate[-max(1, len(run.learning_rate) // 5) :]
  return {
    "method": method.name,
    "lr0": lr0,
    "seed": seed,
    "final": float(run.validation[-1]),
    "best": float(finite.min()),
    "best_step": int(run.eval_steps[finite.argmin()]),
    "max_spike": spike,
    "max_spike_step": spike_step,
    "eval_steps": run.eval_steps.tolist(),
    "validation": run.validation.tolist(),
    "lr_settled": float(np.median(tail)),
  } | ({} if method.feed == "none" else {
    # Every 10th step's rate: the trajectory, for the figures.
    "learning_rate": run.learning_rate[9::10].tolist(),
  })  # fmt: skip


def run_method(method, seed, settings, corpus, windows, done):
  """Trains ``method`` at one seed over its grid; yields the run records.

  Runs already in ``done`` (keyed by method, lr0 and seed) are skipped. A
  tuned method trains its whole grid at seed 0 and the other seeds at the
  rate with seed 0's lowest final validation loss.
  """
  lr0s = method.lr0s
  if method.name in TUNED and seed > 0:
    seed0 = [done[k] for k in done if k[0] == method.name and k[2] == 0]
    if not seed0:
      return
    lr0s = (min(seed0, key=lambda r: _lm_page.finite(r["final"]))["lr0"],)
  for lr0 in lr0s:
    if (method.name, lr0, seed) in done:
      continue
    start = time.perf_counter()
    twin, digest = _twin(method, lr0, seed, settings, corpus, done)
    if twin is not None:
      rec = twin | {"lr0": lr0, "same_run_as": twin["lr0"]}
      rec["seconds"] = time.perf_counter() - start
      print(f"{method.name} lr0={lr0:g} seed={seed}: the run of"
            f" lr0={twin['lr0']:g} (the same state after step one)",
            flush=True)  # fmt: skip
      yield rec
      continue
    run = _lm_train.train(
      method, lr0, seed, corpus.train, windows,
      steps=settings.steps, eval_every=settings.eval_every,
      config=settings.config,
    )  # fmt: skip
    rec = record(method, lr0, seed, run)
    if digest is not None:
      rec["first_update"] = digest
    rec["seconds"] = time.perf_counter() - start
    print(f"{method.name} lr0={lr0:g} seed={seed}: final {rec['final']:.3f}"
          f" best {rec['best']:.3f} spike {rec['max_spike']:.2f}"
          f" lr {rec['lr_settled']:.2e} ({rec['seconds']:.0f} s)",
          flush=True)  # fmt: skip
    yield rec


def _twin(method, lr0, seed, settings, corpus, done):
  """A run already made that this one repeats, and this one's digest.

  Only a climbing method's ``lr0`` does nothing but seed its state, so only
  its runs are compared (by :func:`_lm_train.first_update`).
  """
  if method.feed == "none":
    return None, None
  digest = _lm_train.first_update(
    method, lr0, seed, corpus.train, steps=settings.steps,
    config=settings.config,
  )  # fmt: skip
  for (name, _, s), rec in done.items():
    if name == method.name and s == seed:
      if rec.get("first_update") == digest and "same_run_as" not in rec:
        return rec, digest
  return None, digest


def _only(method: Method, lr0s) -> Method:
  """``method`` restricted to the grid points in ``lr0s`` (tuned: all)."""
  if method.name in TUNED or method.lr0s == (0.0,):
    return method
  return dataclasses.replace(
    method, lr0s=tuple(x for x in method.lr0s if x in lr0s)
  )


MAKERS = {
  "baselines": baselines,
  "climb": climbers,
  "directions": directions,
}
GROUPS = {g: [m.name for m in make(False)] for g, make in MAKERS.items()}
NAMES = [name for names in GROUPS.values() for name in names]


def run_into(group, methods, seeds, settings, corpus, windows, save):
  """Runs ``methods`` at seeds ``0..seeds-1`` into ``group``'s runs.

  Runs already in the group are kept and not repeated; ``save()`` is called
  after each run, so that an interrupted benchmark loses one run at most.
  """
  done = {(r["method"], r["lr0"], r["seed"]): r for r in group["runs"]}
  for seed in range(seeds):
    for method in methods:
      for rec in run_method(method, seed, settings, corpus, windows, done):
        done[rec["method"], rec["lr0"], rec["seed"]] = rec
        group["runs"].append(rec)
        group["seconds"] += rec["seconds"]
        save()


def run_group(name, args, settings, corpus, windows, summary):
  """Runs one group, seed by seed, saving the summary after each run."""
  methods = MAKERS[name](args.quick)
  methods = [m for m in methods if m.name in (args.methods or NAMES)]
  if args.lr0s:
    methods = [_only(m, args.lr0s) for m in methods]
  group = summary["groups"].setdefault(name, {"runs": [], "seconds": 0.0})
  run_into(
    group, methods, args.seeds, settings, corpus, windows,
    lambda: _cli.save(args.out, "lm", summary),
  )  # fmt: skip


def run(args) -> dict:
  settings = QUICK if args.quick else Settings()
  corpus = _text.load()
  windows = _text.validation_windows(
    corpus, settings.config.length, settings.validation_windows
  )
  wanted = json.loads(json.dumps(dataclasses.asdict(settings)))
  summary = {"settings": wanted, "data": corpus.label, "groups": {}}
  if args.merge:
    summary = _cli.load(args.out, "lm")
    if summary["settings"] != wanted:
      raise SystemExit("--merge: lm.json was made with other settings.")
  for name in GROUPS:
    run_group(name, args, settings, corpus, windows, summary)
  return summary


def _arguments(parser) -> None:
  parser.add_argument(
    "--lr0s",
    type=float,
    nargs="+",
    help="run only these points of the untuned grids",
  )


EXPERIMENT = _cli.Experiment(
  "lm",
  __doc__,
  run,
  _lm_page.page,
  seeds=(2, 2),
  methods=NAMES,
  groups=GROUPS,
  merge=lambda previous, new: new,
  arguments=_arguments,
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
