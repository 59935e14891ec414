r"""Robustness to the starting learning rate (issue 4, part 3).

Metric: for each method, the width in decades of the widest run of
consecutive grid values of ``lr0`` whose mean final test accuracy is within
1 point of the best mean accuracy any method reaches on the protocol (one grid
value alone counts as 0 decades).

Protocol: the reference MLP (784-20-10, batch 1000, 10 epochs) on [0, 1]
inputs, ``lr0`` on ``logspace(-6, 2, 17)`` (half-decade steps), 5 seeds. Each
method has one knob that sets its starting step size, swept over the grid:
``learning_rate`` for SGD, Adam, schedule-free SGD, COCOB (a multiplier) and
hill climbing; the initial step estimate for Prodigy and D-Adaptation
(``estim_lr0``), DoG (``init_step=("learning_rate", lr0)``) and Mechanic
(``s_init``, on SGD with learning rate 1); Adam's learning rate under
``reduce_on_plateau``.

Also written: the goals of ``GOAL_TEXT``, checked on the grid, and a
compute-fair table, in which every baseline trains again for the extra steps
that hill climbing's measured extra cost per step (``docs/results/
step_cost.json``) would buy it.

  python -m benchmarks.robustness                 # docs/results/
  python -m benchmarks.robustness --quick --out /tmp/robustness
  python -m benchmarks.robustness --methods cheaper --merge

The cheaper decisions of ``scale_by_hillclimb`` (``decision="one_probe"`` and
``"no_probe"``, issue 11) run beside the two-probe rule on SGD's moving
average (``hillclimb``) and on Adam (``hillclimb_adam``); goal (e) compares
each with the two-probe rule at every lr0, and the compute-fair comparison has
one table per rule, each with the baselines at that rule's cost. On a busy
machine the grid can be run in parts: ``--methods`` runs only the named
methods (``--methods cheaper``: the cheaper-decision ones; ``slope_rtol``:
one probe with ``slope_rtol=0.25``; ``baselines``: the baselines) and
``--merge`` takes every other method from the existing ``robustness.json`` in
``--out`` (the page says which run each came from).

With ``--cnn``, the smaller check instead: Flax's MNIST CNN, 3 epochs, batch
128, one seed, hill climbing (defaults, and the former defaults: fixed 1%
step, ties lower lr, no scale search) against SGD with momentum 0.9 at lr0 =
1e-4, 1e-2 and 1, on a subset of the training set (``--cnn-train``; all 10000
test images); writes ``robustness_cnn.md``.
"""

import argparse
import json
import os
import time

import numpy as np
import optax
from optax import contrib

if not __package__:  # Run as a file: python benchmarks/robustness.py.
  import _as_module  # noqa: F401

import optax_hillclimb as ohc

from . import _data
from . import _example
from . import _report
from . import _vtrain
from ._report import plt

WITHIN = 0.01  # one accuracy point
# Goals (a), (b) and (d) are judged over these six decades of lr0.
GOAL_LR0S = (1e-6, 1e0)
FAR_BELOW = 0.05  # goal (c): never more than 5 points below the family's best
K10_WITHIN = 0.02  # goal (d): every_k=10 within 2 points of every_k=1
# The measured per-step costs, read for the compute-fair table.
STEP_COST = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  "docs",
  "results",
  "step_cost.json",
)


def _plateau_learning_rate(state, lr0):
  return lr0 * optax.tree.get(state, "scale")


def with_grad(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """``tx`` receiving its incoming updates as ``grad=``, unless given.

  The training loops pass ``value_fn`` and ``value`` only; at the head of a
  chain the incoming updates are the gradient, which the cheaper decisions
  need as ``grad``.
  """
  tx = optax.with_extra_args_support(tx)

  def update_fn(updates, state, params=None, **extra_args):
    extra_args.setdefault("grad", updates)
    return tx.update(updates, state, params, **extra_args)

  return optax.GradientTransformationExtraArgs(tx.init, update_fn)


def _hillclimb(name, make, **kwargs):
  needs_grad = kwargs.get("decision", "two_probes") != "two_probes"
  return _vtrain.Method(
    name,
    (lambda lr0: with_grad(make(lr0, **kwargs)))
    if needs_grad
    else (lambda lr0: make(lr0, **kwargs)),
    learning_rate=_vtrain.hillclimb_learning_rate,
  )


# Settings are spelled out, so that the labels stay true when defaults change.
HC_REFERENCE = "hillclimb, reference rule"
HC_NO_SEARCH = "hillclimb, no scale search"
HC_DEFAULT = "hillclimb (defaults)"
HC_K10 = "hillclimb, every_k=10, lrlr=0.1"
HCA_NO_SEARCH = "hillclimb_adam, no scale search"
HCA_DEFAULT = "hillclimb_adam (defaults)"
HCA_K10 = "hillclimb_adam, every_k=10, lrlr=0.1"
HC_ONE = "hillclimb, one_probe"
HC_NONE = "hillclimb, no_probe"
HCA_ONE = "hillclimb_adam, one_probe"
HCA_NONE = "hillclimb_adam, no_probe"
# Without the scale search, what each rule's own moves make of lr0.
HC_ONE_NO_SEARCH = "hillclimb, one_probe, no scale search"
HC_NONE_NO_SEARCH = "hillclimb, no_probe, no scale search"
HCA_ONE_NO_SEARCH = "hillclimb_adam, one_probe, no scale search"
HCA_NONE_NO_SEARCH = "hillclimb_adam, no_probe, no scale search"
# One probe with a smaller sufficient-decrease fraction, which settles at
# longer steps (benchmarks/settling.py: the one-step rate is too short).
HC_ONE_LONG = "hillclimb, one_probe, slope_rtol=0.25"
HCA_ONE_LONG = "hillclimb_adam, one_probe, slope_rtol=0.25"
# The cheaper decisions (issue 11) and the two-probe rule each is held to.
TWO_PROBE_OF = {
  HC_ONE: HC_DEFAULT,
  HC_ONE_LONG: HC_DEFAULT,
  HC_NONE: HC_DEFAULT,
  HCA_ONE: HCA_DEFAULT,
  HCA_ONE_LONG: HCA_DEFAULT,
  HCA_NONE: HCA_DEFAULT,
}

BASELINES = [
  _vtrain.Method("SGD", optax.sgd),
  _vtrain.Method("SGD momentum 0.9", lambda lr: optax.sgd(lr, momentum=0.9)),
  _vtrain.Method("Adam", optax.adam),
  _vtrain.Method(
    "Adam + reduce_on_plateau",
    lambda lr: optax.chain(
      optax.adam(lr),
      contrib.reduce_on_plateau(factor=0.5, patience=5, accumulation_size=10),
    ),
    learning_rate=_plateau_learning_rate,
  ),
  _vtrain.Method(
    "prodigy", lambda lr: contrib.prodigy(estim_lr0=lr), knob="estim_lr0"
  ),
  _vtrain.Method(
    "dadapt_adamw",
    lambda lr: contrib.dadapt_adamw(estim_lr0=lr),
    knob="estim_lr0",
  ),
  _vtrain.Method(
    "dog",
    lambda lr: contrib.dog(init_step=("learning_rate", lr)),
    knob="init_step learning_rate",
  ),
  _vtrain.Method(
    "cocob", lambda lr: contrib.cocob(learning_rate=lr), knob="multiplier"
  ),
  _vtrain.Method(
    "mechanize(SGD)",
    lambda lr: contrib.mechanize(optax.sgd(1.0), s_init=lr),
    knob="s_init",
  ),
  _vtrain.Method(
    "schedule_free_sgd",
    lambda lr: contrib.schedule_free_sgd(learning_rate=lr),
    eval_params=contrib.schedule_free_eval_params,
  ),
]
METHODS = [
  *BASELINES,
  _hillclimb(
    HC_REFERENCE,
    ohc.hillclimb,
    guard=False,
    lrlr_growth=1.0,
    tie_break="down",
    scale_search=None,
  ),
  _hillclimb(HC_NO_SEARCH, ohc.hillclimb, scale_search=None),
  _hillclimb(HC_DEFAULT, ohc.hillclimb),
  _hillclimb(HC_K10, ohc.hillclimb, every_k=10, lrlr=0.1),
  _hillclimb(HCA_NO_SEARCH, ohc.hillclimb_adam, scale_search=None),
  _hillclimb(HCA_DEFAULT, ohc.hillclimb_adam),
  _hillclimb(HCA_K10, ohc.hillclimb_adam, every_k=10, lrlr=0.1),
  _hillclimb(HC_ONE, ohc.hillclimb, decision="one_probe"),
  _hillclimb(HC_NONE, ohc.hillclimb, decision="no_probe"),
  _hillclimb(HCA_ONE, ohc.hillclimb_adam, decision="one_probe"),
  _hillclimb(HCA_NONE, ohc.hillclimb_adam, decision="no_probe"),
  *(
    _hillclimb(name, make, decision=decision, scale_search=None)
    for name, make, decision in (
      (HC_ONE_NO_SEARCH, ohc.hillclimb, "one_probe"),
      (HC_NONE_NO_SEARCH, ohc.hillclimb, "no_probe"),
      (HCA_ONE_NO_SEARCH, ohc.hillclimb_adam, "one_probe"),
      (HCA_NONE_NO_SEARCH, ohc.hillclimb_adam, "no_probe"),
    )
  ),
  *(
    _hillclimb(name, make, decision="one_probe", slope_rtol=0.25)
    for name, make in (
      (HC_ONE_LONG, ohc.hillclimb),
      (HCA_ONE_LONG, ohc.hillclimb_adam),
    )
  ),
]
# Names that --methods accepts for groups of methods.
METHOD_GROUPS = {
  "all": tuple(m.name for m in METHODS),
  "baselines": tuple(m.name for m in BASELINES),
  "cheaper": tuple(TWO_PROBE_OF),
  "cheaper_no_search": (
    HC_ONE_NO_SEARCH,
    HC_NONE_NO_SEARCH,
    HCA_ONE_NO_SEARCH,
    HCA_NONE_NO_SEARCH,
  ),
  "hillclimb": tuple(m.name for m in METHODS if m not in BASELINES),
  "slope_rtol": (HC_ONE_LONG, HCA_ONE_LONG),
}
# Enough for every goal and both compute-fair ratios to be computed once.
QUICK_METHODS = ("SGD", "Adam", HC_DEFAULT, HC_K10, HCA_DEFAULT, HCA_K10)

# The two families the goals compare within: the baselines whose step is
# SGD-like (one gradient step, no per-coordinate scaling) or Adam-like, and the
# hill-climbing variants built on each.
SGD_BASELINES = (
  "SGD",
  "SGD momentum 0.9",
  "schedule_free_sgd",
  "dog",
  "cocob",
  "mechanize(SGD)",
)
ADAM_BASELINES = ("Adam", "Adam + reduce_on_plateau", "prodigy", "dadapt_adamw")
FAMILIES = {
  "SGD": (
    *SGD_BASELINES,
    HC_REFERENCE,
    HC_NO_SEARCH,
    HC_DEFAULT,
    HC_K10,
    HC_ONE,
    HC_NONE,
    HC_ONE_NO_SEARCH,
    HC_NONE_NO_SEARCH,
    HC_ONE_LONG,
  ),
  "Adam": (
    *ADAM_BASELINES,
    HCA_NO_SEARCH,
    HCA_DEFAULT,
    HCA_K10,
    HCA_ONE,
    HCA_NONE,
    HCA_ONE_NO_SEARCH,
    HCA_NONE_NO_SEARCH,
    HCA_ONE_LONG,
  ),
}
assert set(SGD_BASELINES + ADAM_BASELINES) == {m.name for m in BASELINES}

# The ratio of step_cost.json (models.mlp) that sets each baseline's budget in
# the compute-fair table: its 10 epochs times what a step of the hill climber
# of its family costs relative to it. Only SGD and Adam were measured; DoG,
# COCOB, Mechanic and schedule-free SGD do at least SGD's work per step, and
# Prodigy and D-Adaptation at least Adam's, so the measured ratio is an upper
# bound on hill climbing's cost relative to them: the baseline gets at least
# its fair share of steps.
FAIR_RATIO = {
  **{name: "hillclimb_k1_over_sgd" for name in SGD_BASELINES},
  **{name: "hillclimb_adam_over_adam" for name in ADAM_BASELINES},
}
# What the table compares the baselines with, at the base budget.
FAIR_HILLCLIMB = (HC_DEFAULT, HCA_DEFAULT)
# One compute-fair table per decision rule: the ratios of step_cost.json
# (models.mlp) that set the SGD-like and the Adam-like baselines' budgets, and
# the hill climbers compared with them.
FAIR_BY_DECISION = {
  "two_probes": (FAIR_RATIO, FAIR_HILLCLIMB),
  "one_probe": (
    {
      **{name: "one_probe_over_sgd" for name in SGD_BASELINES},
      **{name: "hillclimb_adam_one_probe_over_adam" for name in ADAM_BASELINES},
    },
    (HC_ONE, HCA_ONE, HC_ONE_LONG, HCA_ONE_LONG),
  ),
  "no_probe": (
    {
      **{name: "no_probe_over_sgd" for name in SGD_BASELINES},
      **{name: "hillclimb_adam_no_probe_over_adam" for name in ADAM_BASELINES},
    },
    (HC_NONE, HCA_NONE),
  ),
}
# Read and reported: the k1 ratios set the budgets; the others are context.
# Those missing from an older step_cost.json are left out.
STEP_COST_RATIOS = (
  "hillclimb_k1_over_sgd",
  "hillclimb_adam_over_adam",
  "hillclimb_k10_over_sgd",
  "adam_over_sgd",
  "one_probe_over_sgd",
  "no_probe_over_sgd",
  "hillclimb_adam_one_probe_over_adam",
  "hillclimb_adam_no_probe_over_adam",
)


def robust_range(
  accuracy: np.ndarray, lr0s: np.ndarray, best: float
) -> tuple[float, float, float]:
  """Widest run of consecutive lr0s within 1 point of ``best``.

  Args:
    accuracy: mean accuracy per lr0.
    lr0s: the grid, increasing.
    best: best mean accuracy of any method.

  Returns:
    ``(decades, lowest lr0, highest lr0)``; ``(0, nan, nan)`` if no lr0 is
    within 1 point.
  """
  good = accuracy >= best - WITHIN
  widest, lo, hi = 0.0, np.nan, np.nan
  start = None
  for i, ok in enumerate([*good, False]):
    if ok and start is None:
      start = i
    elif not ok and start is not None:
      width = float(np.log10(lr0s[i - 1] / lr0s[start]))
      if np.isnan(lo) or width > widest:
        widest, lo, hi = width, lr0s[start], lr0s[i - 1]
      start = None
  return widest, lo, hi


GOAL_TEXT = {
  "a": "within 1 pt of the best of all methods, at every lr0 in 1e-6..1e0",
  "b": (
    "within 1 pt of the best SGD-family baseline (each at its best lr0), at"
    " every lr0 in 1e-6..1e0"
  ),
  "c": (
    "never more than 5 pts below its family's best (any method, any lr0),"
    " at any lr0 of the grid"
  ),
  "d": (
    "every_k=10 within 2 pts of every_k=1 (the defaults) at the same lr0, at"
    " every lr0 in 1e-6..1e0"
  ),
  "e": (
    "a cheaper decision within 1 pt of the two-probe rule (defaults) at the"
    " same lr0, at every lr0 of the grid"
  ),
}


def goal_window(lr0s: np.ndarray) -> np.ndarray:
  """Which grid values lie in ``GOAL_LR0S`` (the grid is rounded)."""
  lo, hi = GOAL_LR0S
  return (lr0s >= lo * (1 - 1e-6)) & (lr0s <= hi * (1 + 1e-6))


def _tuned_best(
  mean_acc: dict[str, np.ndarray], names: tuple[str, ...]
) -> tuple[float, str]:
  """Best mean accuracy at any lr0 of those of ``names`` that ran, and who."""
  ran = [n for n in names if n in mean_acc]
  who = max(ran, key=lambda n: mean_acc[n].max())
  return float(mean_acc[who].max()), who


def _check(
  goal: str,
  method: str,
  acc: np.ndarray,
  std: np.ndarray,
  reference: float | np.ndarray,
  reference_label: str,
  lr0s: np.ndarray,
  where: np.ndarray,
  limit: float,
) -> dict:
  """How far ``acc`` falls below ``reference`` over ``lr0s[where]``."""
  shortfall = np.where(where, reference - acc, -np.inf)
  i = int(np.argmax(shortfall))
  return {
    "goal": goal,
    "method": method,
    "reference": reference_label,
    "limit": limit,
    "worst_shortfall": float(shortfall[i]),
    "at_lr0": float(lr0s[i]),
    "std_there": float(std[i]),
    "within": int(np.sum(where & (shortfall <= limit))),
    "of": int(np.sum(where)),
    "met": bool(shortfall[i] <= limit),
  }


def goals(
  mean_acc: dict[str, np.ndarray],
  std_acc: dict[str, np.ndarray],
  lr0s: np.ndarray,
) -> list[dict]:
  """Checks the goals (a) to (d) of ``GOAL_TEXT`` on the methods that ran.

  Args:
    mean_acc: mean accuracy over seeds per lr0, by method name.
    std_acc: its standard deviation over seeds.
    lr0s: the grid.

  Returns:
    One dict per (goal, method) whose methods ran: the worst shortfall below
    the reference, at which lr0 (and the seed std there), how many lr0s are
    within the limit, and whether the goal is met.
  """
  window = goal_window(lr0s)
  everywhere = np.ones_like(window)
  rows = []

  def check(goal, method, reference, label, where, limit):
    rows.append(
      _check(
        goal,
        method,
        mean_acc[method],
        std_acc[method],
        reference,
        label,
        lr0s,
        where,
        limit,
      )
    )

  def best_label(best, who):
    return f"{who}, {_report.percent(best)}"

  if HCA_DEFAULT in mean_acc:
    best, who = _tuned_best(mean_acc, tuple(mean_acc))
    check("a", HCA_DEFAULT, best, best_label(best, who), window, WITHIN)
    rows[-1]["decades"] = robust_range(mean_acc[HCA_DEFAULT], lr0s, best)[0]
  if HC_DEFAULT in mean_acc and any(n in mean_acc for n in SGD_BASELINES):
    best, who = _tuned_best(mean_acc, SGD_BASELINES)
    check("b", HC_DEFAULT, best, best_label(best, who), window, WITHIN)
    rows[-1]["decades"] = robust_range(mean_acc[HC_DEFAULT], lr0s, best)[0]
  for family, method in (("Adam", HCA_DEFAULT), ("SGD", HC_DEFAULT)):
    if method in mean_acc:
      best, who = _tuned_best(mean_acc, FAMILIES[family])
      check("c", method, best, best_label(best, who), everywhere, FAR_BELOW)
  for k1, k10 in ((HC_DEFAULT, HC_K10), (HCA_DEFAULT, HCA_K10)):
    if k1 in mean_acc and k10 in mean_acc:
      check("d", k10, mean_acc[k1], f"{k1}, same lr0", window, K10_WITHIN)
  # The cheaper decisions: (a) or (b) as for their two-probe rule, and (e).
  for method in (HCA_ONE, HCA_NONE, HCA_ONE_LONG):
    if method in mean_acc:
      best, who = _tuned_best(mean_acc, tuple(mean_acc))
      check("a", method, best, best_label(best, who), window, WITHIN)
      rows[-1]["decades"] = robust_range(mean_acc[method], lr0s, best)[0]
  for method in (HC_ONE, HC_NONE, HC_ONE_LONG):
    if method in mean_acc and any(n in mean_acc for n in SGD_BASELINES):
      best, who = _tuned_best(mean_acc, SGD_BASELINES)
      check("b", method, best, best_label(best, who), window, WITHIN)
      rows[-1]["decades"] = robust_range(mean_acc[method], lr0s, best)[0]
  for cheap, two in TWO_PROBE_OF.items():
    if cheap in mean_acc and two in mean_acc:
      check("e", cheap, mean_acc[two], f"{two}, same lr0", everywhere, WITHIN)
  return rows


def goals_table(rows: list[dict]) -> str:
  """The goals as a Markdown table."""
  return _report.markdown_table(
    [
      "goal",
      "method",
      "reference",
      "worst shortfall (pts)",
      "at lr0 (seed std there, pts)",
      "lr0s within the limit",
      "decades within 1 pt",
      "met",
    ],
    [
      [
        f"({r['goal']}) {GOAL_TEXT[r['goal']]}",
        r["method"],
        r["reference"],
        f"{100 * r['worst_shortfall']:.1f} (limit {100 * r['limit']:.0f})",
        f"{r['at_lr0']:.0e} ({100 * r['std_there']:.1f})",
        f"{r['within']} of {r['of']}",
        f"{r['decades']:.1f}" if "decades" in r else "-",
        "met" if r["met"] else "**NOT met**",
      ]
      for r in rows
    ],
  )


def read_step_cost(path: str = STEP_COST) -> dict:
  """The MLP's per-step cost ratios from step_cost.json, and their origin."""
  with open(path) as f:
    cost = json.load(f)
  mlp = cost["models"]["mlp"]
  return {
    "path": os.path.relpath(path),
    "git": cost["git"],
    "jax": cost["jax_version"],
    "optax": cost["optax_version"],
    "quick": cost["quick"],
    "model": mlp["description"],
    "ratios": {k: mlp[k] for k in STEP_COST_RATIOS if k in mlp},
    "quartiles": {
      k: (mlp["ratios"][k]["q1"], mlp["ratios"][k]["q3"])
      for k in STEP_COST_RATIOS
      if k in mlp
    },
  }


CNN_LR0S = (1e-4, 1e-2, 1.0)


def run_cnn(args) -> None:
  """The CNN check: SGD with momentum against hill climbing at three lr0s."""
  from . import _cnn

  datasets = _example.module("datasets")

  if args.quick:
    ds = datasets.load(source="sample")
    train, epochs = 1000, 1
  else:
    ds = datasets.load(
      source="idx", data_dir=_data.DEBIAN_FASHION_MNIST, name="fashion_mnist"
    )
    train, epochs = args.cnn_train, 3
  images = datasets.to_float(ds.train_images[:train])
  labels = ds.train_labels[:train]
  test_images = datasets.to_float(ds.test_images)
  label = (
    f"{ds.name} ({ds.source}), first {len(labels)} training images, all"
    f" {len(ds.test_labels)} test images, inputs in [0, 1]"
  )
  hc_lr = ohc.get_learning_rate
  methods = [
    ("SGD momentum 0.9", lambda lr: optax.sgd(lr, momentum=0.9), None),
    (
      "hillclimb, 1% step, ties down, no scale search",
      lambda lr: ohc.hillclimb(
        lr, lrlr_growth=1.0, tie_break="down", scale_search=None
      ),
      hc_lr,
    ),
    (HC_DEFAULT, ohc.hillclimb, hc_lr),
    (
      HC_ONE,
      lambda lr: with_grad(ohc.hillclimb(lr, decision="one_probe")),
      hc_lr,
    ),
    (
      HC_NONE,
      lambda lr: with_grad(ohc.hillclimb(lr, decision="no_probe")),
      hc_lr,
    ),
    (
      HC_ONE_LONG,
      lambda lr: with_grad(
        ohc.hillclimb(lr, decision="one_probe", slope_rtol=0.25)
      ),
      hc_lr,
    ),
  ]
  all_names = [name for name, _, _ in methods]
  if args.methods:
    unknown = set(args.methods) - set(all_names)
    if unknown:
      raise SystemExit(
        f"--methods with --cnn: unknown {sorted(unknown)}; expected some of"
        f" {all_names}"
      )
    methods = [m for m in methods if m[0] in args.methods]
  summary = {}
  if args.merge:
    with open(os.path.join(args.out, "robustness_cnn.json")) as f:
      summary = json.load(f)
  start = time.time()
  run = _report.command_line()
  date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
  for name, make, lr_of in methods:
    for lr0 in CNN_LR0S:
      r = _cnn.train(
        make,
        lr0,
        images,
        labels,
        test_images,
        ds.test_labels,
        epochs=epochs,
        learning_rate=lr_of,
      )
      print(name, lr0, r, flush=True)
      summary[f"{name} @ {lr0:g}"] = {
        **r,
        "run": run,
        "date": date,
      }
  seconds = time.time() - start
  rows, runs = [], []
  for name in all_names:
    for lr0 in CNN_LR0S:
      r = summary.get(f"{name} @ {lr0:g}")
      if r is None:
        continue
      run = f"`{r['run']}` ({r['date']})" if "run" in r else "an earlier run"
      if run not in runs:
        runs.append(run)
      rows.append(
        [
          name,
          f"{lr0:g}",
          _report.percent(r["accuracy"]),
          "-" if not np.isfinite(r["final_lr"]) else f"{r['final_lr']:.3g}",
          str(runs.index(run) + 1),
        ]
      )
  table = _report.markdown_table(
    ["method", "lr0", "test accuracy", "final lr", "run"], rows
  )
  with open(os.path.join(args.out, "robustness_cnn.md"), "w") as f:
    f.write(
      "# Robustness check on Flax's MNIST CNN: the numbers\n\n"
      f"Data: {label}. {epochs} epochs, batch 128"
      f" ({next(iter(summary.values()))['steps']} steps), one seed.\n\n"
      + _report.machine_notes(seconds)
      + "\nRuns (the last column of the table; ``--merge`` keeps the rows not"
      " run again):\n\n"
      + "".join(f"{i}. {run}\n" for i, run in enumerate(runs, 1))
      + "\n"
      + table
    )
  with open(os.path.join(args.out, "robustness_cnn.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(table)


def plot_accuracy(
  path: str,
  lr0s: np.ndarray,
  mean_acc: dict[str, np.ndarray],
  best: float,
  label: str,
) -> None:
  """Accuracy against lr0, one line per method; the right panel zooms in."""
  fig, axes = plt.subplots(1, 2, figsize=(14, 5.8))
  for ax, low in zip(axes, (0, 100 * best - 8), strict=True):
    for i, (name, acc) in enumerate(mean_acc.items()):
      ax.plot(
        lr0s,
        100 * acc,
        "-" if name.startswith("hillclimb") else "--",
        marker=".",
        lw=1.2,
        color=plt.cm.tab20(i % 20),
        label=name,
      )
    ax.axhline(100 * (best - WITHIN), color="k", lw=0.6, ls=":")
    ax.set(
      xscale="log",
      xlabel="lr0 (starting learning rate or its method's equivalent)",
      ylabel="final test accuracy, %, mean of seeds",
      ylim=(low, 100 * best + 1),
    )
  axes[0].set_title(f"Robustness to lr0: {label}", fontsize=9)
  axes[1].set_title("zoom; dotted: 1 point below the best", fontsize=9)
  axes[0].legend(fontsize=6.5, loc="lower left", ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def replot(out: str) -> None:
  """Redraws robustness.png from robustness.json."""
  with open(os.path.join(out, "robustness.json")) as f:
    summary = json.load(f)
  lr0s = np.array(summary["_lr0"])
  mean_acc = {
    k: np.array(v["accuracy_mean"])
    for k, v in summary.items()
    if not k.startswith("_")
  }
  plot_accuracy(
    os.path.join(out, "robustness.png"),
    lr0s,
    mean_acc,
    summary["_best"],
    summary["_data"],
  )


def _band_rows(names, acc_of, lr0s, best, extra) -> list[list[str]]:
  """Summary rows: best, where, decades within 1 pt of ``best``, range."""
  window = goal_window(lr0s)
  rows = []
  for name in names:
    acc = acc_of[name]
    decades, lo, hi = robust_range(acc, lr0s, best)
    i = int(np.argmax(acc))
    rows.append(
      [
        name,
        *extra(name),
        _report.percent(acc[i]),
        f"{lr0s[i]:.0e}",
        f"{decades:.1f}",
        "-" if np.isnan(lo) else f"{lo:.0e} to {hi:.0e}",
        _report.percent(acc[window].min()),
        _report.percent(acc.min()),
      ]
    )
  return rows


BAND_HEADERS = [
  "best accuracy",
  "at lr0",
  "decades within 1 pt",
  "range",
  "lowest, 1e-6..1e0",
  "lowest, whole grid",
]


def select_methods(requested: list[str] | None) -> list[_vtrain.Method]:
  """The methods named in ``--methods`` (names or groups), in METHODS order."""
  if not requested:
    return list(METHODS)
  names = set()
  for item in requested:
    if item in METHOD_GROUPS:
      names.update(METHOD_GROUPS[item])
    elif any(m.name == item for m in METHODS):
      names.add(item)
    else:
      raise SystemExit(
        f"--methods: unknown method {item!r}; expected a method name or one"
        f" of {sorted(METHOD_GROUPS)} (names: {[m.name for m in METHODS]})"
      )
  return [m for m in METHODS if m.name in names]


def train_methods(methods, data, lr0s, grid, cost) -> dict[str, dict]:
  """Trains each method on the grid; its results, as stored in the JSON.

  Baselines train on past the base budget, to every compute-fair budget whose
  ratio ``cost`` has, and are evaluated at each.
  """
  base_steps = grid["epochs"] * (len(data.y_train) // grid["batch_size"])
  results = {}
  for method in methods:
    name = method.name
    t = time.time()
    budgets = {}
    for decision, (ratio_of, _) in FAIR_BY_DECISION.items():
      key = ratio_of.get(name)
      if key is not None and key in cost["ratios"]:
        steps = max(round(base_steps * cost["ratios"][key]), base_steps)
        budgets[decision] = (key, steps)
    total = max([base_steps, *(steps for _, steps in budgets.values())])
    eval_at = sorted({base_steps, *(steps for _, steps in budgets.values())})
    r = _vtrain.train_grid(
      method,
      data,
      lr0s=lr0s,
      **grid,
      steps=total,
      eval_at=eval_at if budgets else (),
    )
    accuracy = r.accuracy_at[base_steps] if budgets else r.accuracy
    results[name] = {
      "accuracy_mean": accuracy.mean(0).tolist(),
      "accuracy_std": accuracy.std(0).tolist(),
      "final_lr_median": _report.nan_median(
        r.learning_rate[:, :, base_steps - 1], 0
      ).tolist(),
      "num_seeds": grid["num_seeds"],
      "run": _report.command_line(),
      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
      "fair": {
        decision: {
          "ratio": key,
          "ratio_value": cost["ratios"][key],
          "steps": steps,
          "accuracy_mean": r.accuracy_at[steps].mean(0).tolist(),
          "accuracy_std": r.accuracy_at[steps].std(0).tolist(),
        }
        for decision, (key, steps) in budgets.items()
      },
    }
    notes = "".join(
      f", {d}-fair best {max(f['accuracy_mean']):.3f} after {f['steps']}"
      for d, f in results[name]["fair"].items()
    )
    print(
      f"{name}: {time.time() - t:.0f} s, best"
      f" {max(results[name]['accuracy_mean']):.3f} after {base_steps}"
      f" steps{notes}",
      flush=True,
    )
  return results


def load_previous(out: str) -> dict:
  """The methods of an existing robustness.json, in the current format.

  Older files keep the baselines' compute-fair runs (two-probe budgets only)
  in ``_compute_fair``; they are moved into each baseline's ``fair``.
  """
  path = os.path.join(out, "robustness.json")
  if not os.path.exists(path):
    raise SystemExit(f"--merge: no {path} to merge with")
  with open(path) as f:
    summary = json.load(f)
  old_fair = summary.get("_compute_fair", {})
  old_ratios = old_fair.get("step_cost", {}).get("ratios", {})
  methods = {}
  for name, entry in summary.items():
    if name.startswith("_"):
      continue
    entry = dict(entry)
    entry.setdefault("num_seeds", summary["_grid"]["num_seeds"])
    entry.setdefault(
      "run",
      "an earlier run (the robustness.json this one merged into)",
    )
    if "fair" not in entry:
      entry["fair"] = {}
      if name in FAIR_RATIO and name in old_fair.get("methods", {}):
        fair = old_fair["methods"][name]
        entry["fair"]["two_probes"] = {
          "ratio": FAIR_RATIO[name],
          "ratio_value": old_ratios.get(FAIR_RATIO[name]),
          "steps": fair["steps"],
          "accuracy_mean": fair["accuracy_mean"],
          "accuracy_std": fair["accuracy_std"],
          "step_cost_git": old_fair["step_cost"].get("git"),
        }
    methods[name] = entry
  return {
    "methods": methods,
    "lr0": summary["_lr0"],
    "grid": summary["_grid"],
    "data": summary["_data"],
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument(
    "--seeds", type=int, default=None, help="seeds (default 5; 1 with --quick)"
  )
  parser.add_argument(
    "--cnn", action="store_true", help="run the CNN check instead"
  )
  parser.add_argument(
    "--cnn-train",
    type=int,
    default=20000,
    help="training images for the CNN check",
  )
  parser.add_argument(
    "--data", default=None, help="fashion_mnist (default), mnist or sample"
  )
  parser.add_argument("--out", default="docs/results")
  parser.add_argument(
    "--replot",
    action="store_true",
    help="only redraw robustness.png from robustness.json in --out",
  )
  parser.add_argument(
    "--methods",
    action="append",
    help=(
      "run only this method (its name, or a group: "
      + ", ".join(METHOD_GROUPS)
      + "); repeat for more"
    ),
  )
  parser.add_argument(
    "--merge",
    action="store_true",
    help="take the methods not run from the robustness.json in --out",
  )
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if args.replot:
    replot(args.out)
    return
  if args.cnn:
    run_cnn(args)
    return
  if args.quick:
    data_name = args.data or "sample"
    lr0s = np.logspace(-6, 2, 5)
    grid = dict(num_seeds=args.seeds or 1, batch_size=200, epochs=2)
    methods = [m for m in METHODS if m.name in QUICK_METHODS]
    if args.methods:
      methods = select_methods(args.methods)
  else:
    data_name = args.data or "fashion_mnist"
    lr0s = np.logspace(-6, 2, 17)
    grid = dict(num_seeds=args.seeds or 5, batch_size=1000, epochs=10)
    methods = select_methods(args.methods)
  previous = load_previous(args.out) if args.merge else None
  if previous is not None:
    if not np.allclose(previous["lr0"], lr0s) or {
      k: v for k, v in previous["grid"].items() if k != "num_seeds"
    } != {k: v for k, v in grid.items() if k != "num_seeds"}:
      raise SystemExit(
        f"--merge: the grid of {args.out}/robustness.json"
        f" ({previous['grid']}, lr0 {previous['lr0']}) differs from this"
        f" run's ({grid}, lr0 {lr0s.tolist()})"
      )

  start = time.time()
  data = _data.load_flat(data_name, "unit")
  base_steps = grid["epochs"] * (len(data.y_train) // grid["batch_size"])
  cost = read_step_cost()
  results = train_methods(methods, data, lr0s, grid, cost)
  seconds = time.time() - start
  if previous is not None:
    for name, entry in previous["methods"].items():
      results.setdefault(name, entry)
  known = [m.name for m in METHODS]
  names = [n for n in known if n in results]
  names += [n for n in results if n not in known]
  write_report(
    args.out, names, results, lr0s, grid, base_steps, data.label, cost, seconds
  )


def write_report(
  out, names, results, lr0s, grid, base_steps, label, cost, seconds
):
  """Writes robustness.md, .json and .png from the results of each method."""
  mean_acc = {n: np.array(results[n]["accuracy_mean"]) for n in names}
  std_acc = {n: np.array(results[n]["accuracy_std"]) for n in names}
  best = max(float(a.max()) for a in mean_acc.values())

  goal_rows = goals(mean_acc, std_acc, lr0s)
  for r in goal_rows:
    print(
      f"goal ({r['goal']}) {r['method']}:"
      f" {'met' if r['met'] else 'NOT met'}; worst"
      f" {100 * r['worst_shortfall']:.1f} pts below {r['reference']}"
      f" (limit {100 * r['limit']:.0f}) at lr0 {r['at_lr0']:.0e};"
      f" {r['within']} of {r['of']} lrs within the limit",
      flush=True,
    )

  knobs = {m.name: m.knob for m in METHODS}
  summary_table = _report.markdown_table(
    ["method", "knob swept as lr0", *BAND_HEADERS],
    _band_rows(
      names,
      mean_acc,
      lr0s,
      best,
      lambda name: [f"`{knobs.get(name, 'learning_rate')}`"],
    ),
  )

  epochs = grid["epochs"]
  fair_sections, fair_json, used_ratios = [], {}, {}
  for decision, (ratio_of, climbers) in FAIR_BY_DECISION.items():
    rows_acc, rows_std, extra_of = {}, {}, {}
    for name in names:
      fair = results[name].get("fair", {}).get(decision)
      if name in ratio_of and fair is not None:
        rows_acc[name] = np.array(fair["accuracy_mean"])
        rows_std[name] = np.array(fair["accuracy_std"])
        extra_of[name] = fair
        used_ratios[(decision, fair["ratio"])] = fair
    if not rows_acc:
      continue
    for name in climbers:
      if name in mean_acc:
        rows_acc[name], rows_std[name] = mean_acc[name], std_acc[name]
    fair_best = max(float(a.max()) for a in rows_acc.values())

    def fair_extra(name, extra_of=extra_of):
      if name in extra_of:
        fair = extra_of[name]
        return [
          f"{fair['steps']} ({fair['steps'] / base_steps * epochs:.1f} epochs)",
          f"`{fair['ratio']}` = {fair['ratio_value']:.3f}",
          _report.percent(mean_acc[name].max()),
        ]
      return [f"{base_steps} ({epochs} epochs)", "-", "-"]

    table = _report.markdown_table(
      [
        "method",
        "steps",
        "ratio that set them",
        f"best at {epochs} epochs",
        *BAND_HEADERS,
      ],
      _band_rows(list(rows_acc), rows_acc, lr0s, fair_best, fair_extra),
    )
    fair_sections.append(
      f"### {decision}\n\nBaselines at the cost of"
      f" {', '.join(n for n in climbers if n in mean_acc) or 'this rule'};"
      f" the band is 1 point below this table's best row,"
      f" {_report.percent(fair_best)}.\n\n" + table
    )
    fair_json[decision] = {
      "best": fair_best,
      "methods": {
        name: {
          "steps": extra_of[name]["steps"] if name in extra_of else base_steps,
          "accuracy_mean": acc.tolist(),
          "accuracy_std": rows_std[name].tolist(),
          "decades": robust_range(acc, lr0s, fair_best)[0],
        }
        for name, acc in rows_acc.items()
      },
    }
  ratio_lines = "".join(
    f"- `{k}` = {v:.3f} (per-round quartiles"
    f" {cost['quartiles'][k][0]:.2f}-{cost['quartiles'][k][1]:.2f})\n"
    for k, v in cost["ratios"].items()
  )
  stale = sorted(
    {
      f"`{key}` = {fair['ratio_value']:.3f} (step_cost.json of commit"
      f" {fair.get('step_cost_git')})"
      for (_, key), fair in used_ratios.items()
      if fair.get("step_cost_git") is not None
    }
  )
  stale_note = (
    "Merged from an earlier run, some baselines' budgets were set by an"
    " earlier step-cost measurement: " + "; ".join(stale) + ".\n\n"
    if stale
    else ""
  )

  def grid_table(values, fmt):
    return _report.markdown_table(
      ["method", *[f"{x:.0e}" for x in lr0s]],
      [[n, *[fmt(a) for a in values[n]]] for n in names],
    )

  plot_accuracy(
    os.path.join(out, "robustness.png"), lr0s, mean_acc, best, label
  )

  seeds = grid["num_seeds"]
  provenance = _report.markdown_table(
    ["method", "seeds", "run", "date"],
    [
      [
        n,
        str(results[n].get("num_seeds", seeds)),
        f"`{results[n].get('run', '-')}`",
        results[n].get("date", "-"),
      ]
      for n in names
    ],
  )
  with open(os.path.join(out, "robustness.md"), "w") as f:
    f.write(
      "# Robustness to the starting learning rate: the numbers\n\n"
      f"Data: {label}. Grid {grid}: {base_steps} steps, lr0 on"
      f" `logspace({np.log10(lr0s[0]):.0f}, {np.log10(lr0s[-1]):.0f},"
      f" {len(lr0s)})`, {seeds} seed{'s' * (seeds > 1)} per lr0 unless the"
      " table of runs below says otherwise; every accuracy is the mean over"
      " seeds. Best mean accuracy of any method"
      f" {_report.percent(best)}; the band is 1 point below it.\n\n"
      + _report.machine_notes(seconds)
      + "\nWhich run produced each method's numbers (``--merge`` keeps the"
      " methods not run again from the previous results):\n\n"
      + provenance
      + "\n## Goals\n\n"
      "Families: SGD-like = "
      + ", ".join(FAMILIES["SGD"])
      + "; Adam-like = "
      + ", ".join(FAMILIES["Adam"])
      + ". A shortfall is the reference minus the method's mean accuracy"
      " (negative: above it).\n\n"
      + goals_table(goal_rows)
      + "\n## Summary\n\n"
      + summary_table
      + "\n## Compute-fair comparison\n\n"
      "Each baseline's runs continue past its base budget to the base budget"
      " times the per-step cost of a hill climber of its family relative to"
      " it (the same runs: the first steps are those of the tables above),"
      f" one table per decision rule, as measured in `{cost['path']}`"
      f" (models.mlp: {cost['model']}; measured at commit {cost['git']}, JAX"
      f" {cost['jax']}, optax {cost['optax']}, quick={cost['quick']}):\n\n"
      + ratio_lines
      + "\n"
      + stale_note
      + "SGD-like baselines get the ratio of `hillclimb` over SGD, Adam-like"
      " ones that of `hillclimb_adam` over Adam; for DoG, COCOB, Mechanic,"
      " schedule-free SGD, Prodigy and D-Adaptation (not measured) these are"
      " upper bounds on hill climbing's relative cost, since each does at"
      " least the work of SGD or Adam per step. Hill climbing keeps its"
      f" {epochs} epochs.\n\n"
      + "\n".join(fair_sections)
      + "\n## Mean test accuracy (%) at each lr0\n\n"
      + grid_table(mean_acc, lambda a: f"{100 * a:.1f}")
      + "\n## Standard deviation over seeds (points)\n\n"
      + grid_table(std_acc, lambda a: f"{100 * a:.1f}")
      + "\n![accuracy against lr0](robustness.png)\n"
    )
  summary = {}
  for name in names:
    summary[name] = {
      **results[name],
      "decades": robust_range(mean_acc[name], lr0s, best)[0],
    }
  summary["_best"] = best
  summary["_lr0"] = lr0s.tolist()
  summary["_data"] = label
  summary["_grid"] = grid
  summary["_goals"] = goal_rows
  two = fair_json.get("two_probes", {"best": None, "methods": {}})
  summary["_compute_fair"] = {"step_cost": cost, **two}
  summary["_compute_fair_by_decision"] = fair_json
  with open(os.path.join(out, "robustness.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(summary_table)
  print("\n".join(fair_sections))
  print(goals_table(goal_rows))


if __name__ == "__main__":
  main()
