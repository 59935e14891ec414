r"""The language model of ``benchmarks.lm``, trained longer and made larger.

Two scales, on the same data and validation windows, seed 0 (``--seeds N``
runs seeds 0 to N-1 of the methods asked for):

- ``long``: the same model (2 layers, width 96) for 4000 steps;
- ``large``: 4 layers of width 192 (4 heads) for 1000 steps.

Each runs AdamW with 5% warmup and cosine decay on a small grid around its
rate tuned at 1000 steps, ``schedule_free_adamw`` at its rate tuned at 1000
steps, ``prodigy`` and ``dadapt_adamw`` at their defaults, ``hillclimb_adam``
with and without the run's length and ``hillclimb_muon`` with it from the
six starting rates of ``benchmarks.lm``, and Muon with warmup and cosine at
its peak tuned at 1000 steps and half of it. A climbing run whose state
after its first update equals one already made is that run (its lr0 only
seeds the state), and is recorded as such rather than trained again.

  python -m benchmarks.lm_scale --scale long           # docs/results/lm_scale.*
  python -m benchmarks.lm_scale --scale large --merge  # the other scale
  python -m benchmarks.lm_scale --quick --out scratch  # small, both scales
  python -m benchmarks.lm_scale --merge --seeds 2 --methods muon_cosine
  python -m benchmarks.lm_scale --scale long --merge --seeds 4 \
    --methods muon_cosine --methods 'hillclimb_muon, total_steps'
"""

import dataclasses

import optax

import optax_hillclimb as ohc
from optax_hillclimb import _transform

from . import _cli
from . import _lm_page
from . import _page
from . import _text
from . import _transformer
from . import lm
from ._lm_train import Method

LARGE = _transformer.Config(num_layers=4, width=192, num_heads=4)
SCALES = {
  "long": lm.Settings(steps=4000, eval_every=400),
  "large": lm.Settings(config=LARGE),
}
QUICK = {
  "long": dataclasses.replace(lm.QUICK, steps=80),
  "large": dataclasses.replace(
    lm.QUICK, config=_transformer.Config(num_layers=2, width=32, num_heads=2)
  ),
}
TITLES = {
  "long": "The same model, four times longer",
  "large": "A larger model",
}


def methods(scale: str, quick: bool) -> dict[str, list[Method]]:
  """The runs of one scale, by group, in the order they are made."""
  # AdamW-cosine on a grid around its rate tuned at 1000 steps (1e-2), the
  # larger model also lower; schedule-free AdamW at its own; Muon-cosine at
  # its (2e-2) and half of it; Lion-cosine at its (1e-3) and below;
  # AdEMAMix-cosine at its (1e-2) and either side over 4000 steps, and
  # 1e-3 (3e-3 was best); on the larger model at AdamW's peaks.
  adamw_peaks = (3e-3, 1e-2) if scale == "long" else (1e-3, 3e-3, 1e-2)
  ademamix_peaks = (1e-3, 3e-3, 1e-2, 3e-2) if scale == "long" else adamw_peaks
  # Quick: two starts, so that the repeated run is recognised.
  lr0s = (3e-4, 2e-5) if quick else lm.CLIMB_LR0S
  groups = {
    "baselines": [
      Method("adamw_cosine", lm.adamw_cosine, lr0s=adamw_peaks),
      Method("schedule_free_adamw",
             lambda lr0, steps: optax.contrib.schedule_free_adamw(lr0),
             lr0s=(1e-2,),
             eval_params=optax.contrib.schedule_free_eval_params),
      Method("prodigy", lambda lr0, steps: optax.contrib.prodigy(),
             lr0s=(0.0,)),
      Method("dadapt_adamw", lambda lr0, steps: optax.contrib.dadapt_adamw(),
             lr0s=(0.0,)),
    ],
    "climb": [
      lm.climbing("hillclimb_adam, total_steps",
                  lambda lr0, steps: ohc.hillclimb_adam(lr0, total_steps=steps),
                  lr0s),
      lm.climbing("hillclimb_adam", lambda lr0, steps: ohc.hillclimb_adam(lr0),
                  lr0s),
    ],
    "directions": [
      lm.climbing("hillclimb_muon, total_steps",
                  lambda lr0, steps: ohc.hillclimb_muon(lr0, total_steps=steps),
                  lr0s),
      # Each decision judged on the eight steps that end at it.
      lm.climbing("hillclimb_muon, total_steps, judge_steps=8",
                  lambda lr0, steps: ohc.hillclimb_muon(
                    lr0, total_steps=steps, judge_steps=8),
                  lr0s),
      Method("muon_cosine", lm.muon_cosine, lr0s=(1e-2, 2e-2)),
      # Lion's direction, its probes centred an eighth back as Muon's; and
      # capped at Lion-cosine's best peak over 4000 steps, to see whether
      # the climb's decisions or its level lose to the schedule.
      lm.climbing("lion, climbed, center=1/8",
                  lm.chained(optax.scale_by_lion, center=1 / 8), lr0s),
      lm.climbing("lion, climbed, center=1/8, max_learning_rate=3e-4",
                  lm.chained(optax.scale_by_lion, center=1 / 8,
                             max_learning_rate=3e-4), lr0s),
      Method("lion_cosine", lm.lion_cosine, lr0s=(1e-4, 3e-4, 1e-3)),
      # AdEMAMix's direction as the recipe climbs it (the default centre);
      # its cosine around AdamW's best peak at each scale.
      lm.climbing("ademamix, climbed",
                  lm.chained(optax.contrib.scale_by_ademamix), lr0s),
      Method("ademamix_cosine", lm.ademamix_cosine, lr0s=ademamix_peaks),
    ],
  }  # fmt: skip
  if quick:
    return {"baselines": groups["baselines"][:1], "climb": groups["climb"][:1]}
  return groups


NAMES = list(
  dict.fromkeys(m.name for g in methods("long", False).values() for m in g)
)


def run(args) -> dict:
  summary = _cli.load(args.out, "lm_scale") if args.merge else {}
  summary.setdefault("scales", {})
  corpus = _text.load()
  summary["data"] = corpus.label
  for scale in args.scale or list(SCALES):
    settings = (QUICK if args.quick else SCALES)[scale]
    windows = _text.validation_windows(
      corpus, settings.config.length, settings.validation_windows
    )
    # Each run records its seed; --seeds only says which are run.
    wanted = dataclasses.asdict(settings)
    del wanted["seeds"]
    entry = summary["scales"].setdefault(
      scale, {"settings": wanted, "groups": {}}
    )
    if entry["settings"] != wanted:
      raise SystemExit(f"--merge: the {scale} runs had other settings.")
    for name, group_methods in methods(scale, args.quick).items():
      group = entry["groups"].setdefault(name, {"runs": [], "seconds": 0.0})
      chosen = [m for m in group_methods
                if not args.methods or m.name in args.methods]  # fmt: skip
      lm.run_into(
        group, chosen, args.seeds, settings, corpus, windows,
        lambda: _cli.save(args.out, "lm_scale", summary),
      )  # fmt: skip
  return summary


def gap_table(entry: dict) -> str:
  """Each method's final loss at its best and worst lr0 against AdamW's."""
  runs = [r for g in entry["groups"].values() for r in g["runs"]]
  cosine = [r for r in runs if r["method"] == "adamw_cosine"]
  if not cosine:
    return ""
  tuned = min(_lm_page.finite(r["final"]) for r in cosine)
  rows = []
  for method in dict.fromkeys(r["method"] for r in runs):
    finals = [_lm_page.finite(r["final"]) for r in runs
              if r["method"] == method]  # fmt: skip
    best, worst = min(finals), max(finals)
    rows.append([
      method,
      str(len(finals)),
      f"{best:.3f} ({100 * (best / tuned - 1):+.1f}%)",
      f"{worst:.3f} ({100 * (worst / tuned - 1):+.1f}%)",
    ])  # fmt: skip
  return (
    f"Against the tuned AdamW-cosine's {tuned:.3f} (its best peak):\n\n"
    + _page.markdown_table(
      ["method", "runs", "best (vs AdamW-cosine)", "worst"], rows
    )
  )


# Each climb told the run's length beside the tuned schedule of its direction.
CLIMB_AND_SCHEDULE = (
  ("hillclimb_adam, total_steps", "adamw_cosine"),
  ("hillclimb_muon, total_steps", "muon_cosine"),
  ("lion, climbed, center=1/8", "lion_cosine"),
  ("ademamix, climbed", "ademamix_cosine"),
)


def rate_table(entry: dict) -> str:
  """The climbed rate beside the tuned schedule's, every eighth of the run.

  The climbed rates are the ones applied at each step, from the smallest
  starting rate (seeds 0, 1, ... in turn): the records hold the climbed
  rate, which the last fifth of a told run shortens (``settling``); the
  schedule's, at the peak that the page's tables mark tuned.
  """
  steps = entry["settings"]["steps"]
  runs = [r for g in entry["groups"].values() for r in g["runs"]]
  # Multiples of 10: the records keep the rate of every 10th update.
  at = [int(steps * k // 80) * 10 for k in (*range(1, 8), 7.5)]
  headers, columns = ["step"], []

  def settling(t):
    # The factor on update t (counted from 1), as the climb computes it.
    left = 1 - (t - 1) / steps
    return min(1.0, left / _transform.SETTLE_FRACTION)

  for climb, schedule in CLIMB_AND_SCHEDULE:
    climbed = {}
    for r in sorted(runs, key=lambda r: r["lr0"]):
      if r["method"] == climb:
        climbed.setdefault(r["seed"], r)
    scheduled = [r for r in runs if r["method"] == schedule]
    if not climbed or not scheduled:
      continue
    peak = _lm_page.tuned_peak(scheduled)
    tuned = lm.warmup_cosine(peak, steps)
    # The schedule's rate at update t (counted from 1) is its value at t - 1.
    columns.append([f"{float(tuned(t - 1)):.2g}" for t in at])
    columns.append([
      " / ".join(
        f"{climbed[seed]['learning_rate'][t // 10 - 1] * settling(t):.2g}"
        for seed in sorted(climbed)
      )
      for t in at
    ])  # fmt: skip
    lr0 = climbed[min(climbed)]["lr0"]
    headers += [f"{schedule} (peak {peak:g})", f"{climb} (lr0 {lr0:g})"]
  if not columns:
    return ""
  rows = [[str(t), *(c[i] for c in columns)] for i, t in enumerate(at)]
  return (
    "\n### The climbed rate against the tuned schedule\n\n"
    "The rate applied at each step, every eighth of the run: the"
    " schedule's at its tuned peak (as the tables above mark it), the"
    " climb's from its smallest starting rate (seeds 0, 1, ... in turn).\n\n"
    + _page.markdown_table(headers, rows)
  )


def page(summary: dict, out: str) -> str:
  del out  # no figures
  text = _page.header(
    "The language model, longer and larger",
    "lm_scale",
    "The byte-level transformer of the language-model page, on the same"
    " data, batches of 32 windows of 64 bytes and validation windows, seed 0;"
    " where a row lists several values, seeds 0, 1, ... in turn. A tuned"
    " method's rows show its best peak; a climbing method's, every starting"
    " rate. A climbing run whose state after the first update is bit for bit"
    " one already made is that run: it is listed, not trained again.",
  )
  for scale, entry in summary["scales"].items():
    s, c = entry["settings"], entry["settings"]["config"]
    text += (
      f"## {TITLES[scale]}\n\n{c['num_layers']} layers, width {c['width']},"
      f" {c['num_heads']} heads, {s['steps']} steps.\n\n"
      + _lm_page.summary_table(entry, tuple(entry["groups"]))
      + "\n"
      + gap_table(entry)
      + "\n### Across starting rates\n\n"
      + _lm_page.spread_table(entry)
      + rate_table(entry)
      + "\n"
    )
  return text


def _arguments(parser) -> None:
  parser.add_argument(
    "--scale",
    choices=list(SCALES),
    action="append",
    help="run only this scale (repeat for both; default: both)",
  )


EXPERIMENT = _cli.Experiment(
  "lm_scale",
  __doc__,
  run,
  page,
  methods=NAMES,
  merge=lambda previous, new: new,
  seeds=(1, 1),
  arguments=_arguments,
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
