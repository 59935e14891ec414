r"""Climbing momentum as well as the learning rate.

On the robustness protocol's MLP (784-20-10, batch 1000, inputs in [0, 1],
``benchmarks/robustness.py``), at a few starting learning rates ``lr0``:

- SGD with learning rate and momentum both climbed
  (``optax_hillclimb.climb``, layout ``"cycle"``), starting from momentum 0,
  0.5, 0.9 and 0.99;
- the same with layout ``"all"`` (both directions of both hyperparameters at
  every probe step), from momentum 0 and 0.9;
- the learning rate alone climbed, momentum fixed at each of those values;
- SGD with each fixed momentum and Adam, at fixed learning rates on a grid
  (tuned by picking the best grid value);
- Adam with learning rate and ``b1`` climbed, from ``b1`` = 0.5 and 0.9, and
  with the learning rate alone climbed.
- ``hillclimb`` and ``hillclimb_adam`` as the library builds them (the
  stretch decision, only the learning rate climbed), at their defaults and
  told the run's length (``total_steps``).

The goal: climbing momentum is never more than 1 point behind the best fixed
momentum (learning rate climbed) at the same lr0, whatever momentum it
started from. Also timed, in interleaved rounds: a step of each climbing
variant against a probe step of ``hillclimb`` (two probes, every step), on
the MLP and (with ``--cnn``) on Flax's MNIST CNN; the goal is a step of
``climb`` with one hyperparameter probed per step costing no more than it.

  python -m benchmarks.climb --cnn --seeds 3 --rounds-cnn 12
"""

import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _models
from . import _page
from . import _sweep
from . import _timing
from . import _train
from ._page import plt

WITHIN = 0.01  # the goal: one accuracy point
MOMENTA = (0.0, 0.5, 0.9, 0.99)
ALL_LAYOUT_MOMENTA = (0.0, 0.9)
B1S = (0.5, 0.9)
# The full run behind the committed page.
FULL_RUN = ("--cnn", "--seeds", "3", "--rounds-cnn", "12")


def sgd(learning_rate, momentum):
  return optax.inject_hyperparams(optax.sgd)(
    learning_rate=learning_rate, momentum=momentum
  )


def adam(learning_rate, b1):
  return optax.inject_hyperparams(optax.adam)(
    learning_rate=learning_rate, b1=b1
  )


def _recorder(second: str):
  """``(state, lr0) -> [learning rate, second hyperparameter]`` per step."""

  def record(state, lr0):
    del lr0
    hp = state.inner_state.hyperparams
    return jnp.stack([hp["learning_rate"], hp[second]]).astype(jnp.float32)

  return record


def _fixed(value):
  def record(state, lr0):
    del state
    return jnp.stack([lr0, jnp.asarray(value, jnp.float32)])

  return record


def climb_name(inner: str, second: str, start: float, layout: str) -> str:
  return f"climb {inner} lr+{second}, {layout}, {second}0={start:g}"


def lr_only_name(inner: str, second: str, value: float) -> str:
  return f"climb {inner} lr only, {second}={value:g}"


INNER = {"SGD": (sgd, "momentum"), "Adam": (adam, "b1")}


def _climbing(family: str, start: float, *args, **kwargs):
  """A climbing method of ``family`` from ``start``; the rest goes to climb."""
  inner = "Adam" if family.startswith("adam") else "SGD"
  make_inner, second = INNER[inner]
  if family.endswith("_lr"):
    name = lr_only_name(inner, second, start)
  else:
    name = climb_name(inner, second, start, kwargs.get("layout", "cycle"))
  method = _train.Method(
    name,
    lambda lr: ohc.climb(make_inner(lr, start), *args, **kwargs),
    learning_rate=_recorder(second),
  )
  return method, family, start


def _library(name: str, make, second_value: float):
  """An alias as the library builds it: only the learning rate climbs.

  Its second hyperparameter (``hillclimb``'s smoothing, ``hillclimb_adam``'s
  ``b1``) is fixed at ``second_value``.
  """

  def record(state, lr0):
    second = jnp.asarray(second_value, jnp.float32)
    lr = _train.hillclimb_learning_rate(state, lr0)
    return jnp.stack([lr.astype(jnp.float32), second])

  return _train.Method(name, make, learning_rate=record), "library", 0.9


def library_methods(steps: int):
  """``hillclimb`` and ``hillclimb_adam``: defaults, and told ``steps``."""
  return [
    _library("hillclimb (defaults)", ohc.hillclimb, 0.9),
    _library(
      f"hillclimb, total_steps={steps}",
      lambda lr: ohc.hillclimb(lr, total_steps=steps),
      0.9,
    ),
    _library("hillclimb_adam (defaults)", ohc.hillclimb_adam, 0.9),
    _library(
      f"hillclimb_adam, total_steps={steps}",
      lambda lr: ohc.hillclimb_adam(lr, total_steps=steps),
      0.9,
    ),
  ]


def methods(momenta, all_momenta, b1s):
  """The climbing methods: ``[(Method, family, start)]``."""
  out = []
  for m in momenta:
    out += [_climbing("sgd_both", m), _climbing("sgd_lr", m, "learning_rate")]
  out += [_climbing("sgd_all", m, layout="all") for m in all_momenta]
  out += [_climbing("adam_both", b1, ("learning_rate", "b1")) for b1 in b1s]
  if b1s:
    out.append(_climbing("adam_lr", 0.9, "learning_rate"))
  return out


def baselines(momenta, with_adam=True):
  """Fixed hyperparameters, swept on the learning-rate grid."""
  out = [
    (
      _train.Method(
        f"SGD momentum {m:g}",
        lambda lr, m=m: optax.sgd(lr, momentum=m),
        learning_rate=_fixed(m),
      ),
      "sgd_fixed",
      m,
    )
    for m in momenta
  ]
  if with_adam:
    adam_fixed = _train.Method("Adam", optax.adam, learning_rate=_fixed(0.9))
    out.append((adam_fixed, "adam_fixed", 0.9))
  return out


# Step cost -------------------------------------------------------------------

COST_VARIANTS = (
  "SGD momentum 0.9",
  "hillclimb (two probes, every step)",
  "climb SGD lr only",
  "climb SGD lr+momentum, cycle",
  "climb SGD lr+momentum, all",
)


def cost_optimizers(lr0: float = 0.1):
  return {
    COST_VARIANTS[0]: optax.sgd(lr0, momentum=0.9),
    COST_VARIANTS[1]: ohc.hillclimb(lr0, **_train.EVERY_STEP),
    COST_VARIANTS[2]: ohc.climb(sgd(lr0, 0.9), "learning_rate"),
    COST_VARIANTS[3]: ohc.climb(sgd(lr0, 0.9)),
    COST_VARIANTS[4]: ohc.climb(sgd(lr0, 0.9), layout="all"),
  }


def measure_cost(model: _models.Model, rounds: int, names=COST_VARIANTS):
  """Per-step time of each variant, and its ratio to hillclimb's step.

  Timed as ``step_cost`` times its variants, in interleaved rounds.
  """
  variants = [
    _timing.Variant(name, opt, _timing.probing_step)
    for name, opt in cost_optimizers().items()
    if name in names
  ]
  programs = _timing.compile_programs(model, variants)
  steps = _timing.STEPS_PER_ROUND
  seconds = _timing.time_rounds(programs, model.batch, rounds, steps)
  out = {"model": model.description, "rounds": rounds, "steps_per_round": steps}
  for name, s in seconds.items():
    out[name] = {
      "ms_per_step_median": 1e3 * _timing.typical_step(s),
      "over_hillclimb": _timing.round_ratios(s, seconds[COST_VARIANTS[1]]),
    }
  return out


def cost_table(cost: dict) -> str:
  def ratio(name):
    r = cost[name]["over_hillclimb"]
    return f"{r['median']:.2f} ({r['q1']:.2f}-{r['q3']:.2f})"

  return _page.table(
    [
      _page.Column("variant", lambda n: n),
      _page.Column(
        "ms per step (median of rounds)",
        lambda n: f"{cost[n]['ms_per_step_median']:.2f}",
      ),
      _page.Column(
        "per-round ratio to hillclimb's probe step: median (quartiles)", ratio
      ),
    ],
    [n for n in COST_VARIANTS if n in cost],
  )


# Runs ------------------------------------------------------------------------


def run_cnn(args) -> dict:
  """Flax's MNIST CNN: lr+momentum climbed against lr alone, and step cost."""
  momenta = (0.0, 0.9) if args.quick else MOMENTA
  data = _data.load_images(
    "sample" if args.quick else "fashion_mnist",
    512 if args.quick else args.cnn_train,
  )
  runs = {}
  for method, _, _ in methods(momenta, (), ())[: 2 * len(momenta)]:
    method = _train.Method(
      method.name,
      method.make,
      learning_rate=lambda s, lr0: s.inner_state.hyperparams["momentum"],
    )
    r = _train.train_grid(
      method,
      _models.CNN_TASK,
      data,
      lr0s=(1e-2,),
      num_seeds=1,
      batch_size=128,
      epochs=1,
      loop="python",
    )
    runs[f"{method.name} @ 0.01"] = {
      "accuracy": float(r.metrics["accuracy"][0, 0]),
      "final_momentum": float(r.learning_rate[0, 0, -1]),
      "steps": r.train_loss.shape[-1],
    }
  rounds = 2 if args.quick else args.rounds_cnn
  cost = measure_cost(_models.cnn(0), rounds)
  label = f"{data.label}, 1 epoch, batch 128, seed 0"
  return {"data": label, "runs": runs, "cost": cost}


def setting(args) -> dict:
  """The grid of a quick or a full run."""
  if args.quick:
    return dict(
      data="sample",
      lr0s=[0.3],
      grid_lrs=np.logspace(-3, 0, 4).tolist(),
      batch_size=200,
      epochs=args.epochs or 1,
      momenta=(0.9,),
      all_momenta=(),
      b1s=(),
      rounds=2,
    )
  return dict(
    # Distinct mantissas from 1e-3 to 5. The scale search rounds the rates
    # it scores to quarter decades: every lr0 scores the same ones.
    data="fashion_mnist",
    lr0s=[1e-3, 2e-2, 0.3, 5.0],
    grid_lrs=np.logspace(-4, 1, 11).tolist(),
    batch_size=1000,
    epochs=args.epochs or 5,
    momenta=MOMENTA,
    all_momenta=ALL_LAYOUT_MOMENTA,
    b1s=B1S,
    rounds=args.rounds,
  )


def run(args) -> dict:
  s = setting(args)
  data = _data.load_flat(s["data"], "unit")
  grid = dict(num_seeds=args.seeds, batch_size=s["batch_size"])
  grid["epochs"] = s["epochs"]
  summary = {"data": data.label, "grid": grid, "lr0": s["lr0s"]}
  summary["steps"] = s["epochs"] * (len(data.y_train) // s["batch_size"])
  summary["grid_lr"] = s["grid_lrs"]
  summary["methods"], curves = {}, {}
  climbing = methods(s["momenta"], s["all_momenta"], s["b1s"])
  climbing += library_methods(summary["steps"])
  fixed = baselines(s["momenta"], with_adam=bool(s["b1s"]))
  for (method, family, start), lr0s in [
    *((m, s["lr0s"]) for m in climbing),
    *((m, s["grid_lrs"]) for m in fixed),
  ]:
    r = _train.train_grid(method, _models.MLP, data, lr0s=lr0s, **grid)
    accuracy = r.metrics["accuracy"]  # [seed, lr0]
    summary["methods"][method.name] = {
      "family": family,
      "start": start,
      "accuracy_mean": accuracy.mean(0).tolist(),
      "accuracy_std": accuracy.std(0).tolist(),
    }
    if lr0s is s["lr0s"]:
      curves[method.name] = r.learning_rate  # [seed, lr0, step, 2]
      summary["methods"][method.name]["final_hyperparams_median"] = np.median(
        r.learning_rate[:, :, -1], axis=0
      ).tolist()
    print(method.name, np.round(100 * accuracy.mean(0), 1), flush=True)
  summary["goals"] = goals(summary, s["momenta"], s["all_momenta"], s["b1s"])
  figures(args.out, curves, s)
  names = (
    COST_VARIANTS[1:2] + COST_VARIANTS[3:] if args.quick else COST_VARIANTS
  )
  model = _models.mlp(0, batch_size=s["batch_size"])
  summary["cost"] = {"mlp": measure_cost(model, s["rounds"], names)}
  summary["cnn"] = run_cnn(args) if args.cnn else None
  return summary


# Goals and page --------------------------------------------------------------

GOAL_FAMILIES = (  # climbed family, its lr-only family, second, layout, inner
  ("sgd_both", "sgd_lr", "momentum", "cycle", "SGD"),
  ("sgd_all", "sgd_lr", "momentum", "all", "SGD"),
  ("adam_both", "adam_lr", "b1", "cycle", "Adam"),
)


def _best_fixed(methods_, fixed_family):
  """The best lr-only run at each lr0, and which it is; None if none ran."""
  names = [k for k, v in methods_.items() if v["family"] == fixed_family]
  if not names:
    return None
  means = np.array([methods_[k]["accuracy_mean"] for k in names])
  return names, means.max(0), [names[i] for i in means.argmax(0)]


def goals(summary, momenta, all_momenta, b1s) -> list[dict]:
  """Each climbed start against the best fixed value at the same lr0."""
  starts = {"sgd_both": momenta, "sgd_all": all_momenta, "adam_both": b1s}
  out = []
  for both, fixed, second, layout, inner in GOAL_FAMILIES:
    best = _best_fixed(summary["methods"], fixed)
    if best is None:
      continue
    names, best_fixed, _ = best
    for start in starts[both]:
      name = climb_name(inner, second, start, layout)
      accuracy = np.array(summary["methods"][name]["accuracy_mean"])
      lr0s, everywhere = np.array(summary["lr0"]), np.ones(len(accuracy), bool)
      found = _sweep.shortfall(
        accuracy, best_fixed, lr0s, everywhere, WITHIN + 1e-9
      )
      out.append({
        "method": name,
        "reference": "best of " + ", ".join(names),
        "shortfall_by_lr0": (best_fixed - accuracy).tolist(),
        **{k: found[k] for k in ("worst_shortfall", "at_lr0", "met")},
      })  # fmt: skip
  return out


def goal_table(summary) -> str:
  methods_, lr0s = summary["methods"], summary["lr0"]
  fixed_of = {both: fixed for both, fixed, *_ in GOAL_FAMILIES}

  def best_where_worst(goal):
    family = fixed_of[methods_[goal["method"]]["family"]]
    _, best, who = _best_fixed(methods_, family)
    i = lr0s.index(goal["at_lr0"])
    return f"{who[i]} ({_page.percent(best[i])})"

  return _page.table(
    [
      _page.Column("climbed", lambda g: g["method"]),
      _page.Column(
        "points behind the best fixed value, at lr0 = "
        + ", ".join(f"{x:g}" for x in lr0s),
        lambda g: " / ".join(f"{100 * x:+.1f}" for x in g["shortfall_by_lr0"]),
      ),
      _page.Column("best fixed where it is worst", best_where_worst),
      _page.Column("worst at lr0", lambda g: f"{g['at_lr0']:g}"),
      _page.Column(
        "goal (<= 1 pt)", lambda g: "met" if g["met"] else "**NOT met**"
      ),
    ],
    summary["goals"],
  )


def method_tables(summary) -> tuple[str, str]:
  """The climbing runs at each lr0, and the fixed baselines on the grid."""
  methods_ = summary["methods"]
  climbing = [n for n, m in methods_.items() if "final_hyperparams_median" in m]
  fixed = [n for n in methods_ if n not in climbing]
  climb_table = _page.table(
    [
      _page.Column("method", lambda n: n),
      *(
        _page.Column(
          f"lr0 {x:g}",
          lambda n, i=i: (
            f"{100 * methods_[n]['accuracy_mean'][i]:.1f} ±"
            f" {100 * methods_[n]['accuracy_std'][i]:.1f}"
          ),
        )
        for i, x in enumerate(summary["lr0"])
      ),
      _page.Column(
        "final lr, second (median)",
        lambda n: " / ".join(
          f"{a:.3g}, {b:.3g}"
          for a, b in methods_[n]["final_hyperparams_median"]
        ),
      ),
    ],
    climbing,
  )
  grid_lrs = summary["grid_lr"]

  def best(n):
    acc = methods_[n]["accuracy_mean"]
    i = int(np.argmax(acc))
    return f"{_page.percent(acc[i])} at {grid_lrs[i]:.0e}"

  baseline_table = _page.table(
    [
      _page.Column("method", lambda n: n),
      *(
        _page.Column(
          f"{x:.0e}",
          lambda n, i=i: f"{100 * methods_[n]['accuracy_mean'][i]:.1f}",
        )
        for i, x in enumerate(grid_lrs)
      ),
      _page.Column("best", best),
    ],
    fixed,
  )
  return climb_table, baseline_table


def cnn_section(cnn) -> str:
  runs = cnn["runs"]
  return (
    f"\n## Flax's MNIST CNN\n\n{cnn['data']}.\n\n"
    + _page.table(
      [
        _page.Column("run", lambda k: k),
        _page.Column(
          "test accuracy", lambda k: _page.percent(runs[k]["accuracy"])
        ),
        _page.Column(
          "final momentum", lambda k: f"{runs[k]['final_momentum']:.3g}"
        ),
      ],
      list(runs),
    )
    + f"\nStep cost, {cnn['cost']['model']}, {cnn['cost']['rounds']}"
    f" interleaved rounds of {cnn['cost']['steps_per_round']} steps:\n\n"
    + cost_table(cnn["cost"])
  )


FIGURES = {
  "sgd": "SGD, learning rate and momentum climbed",
  "adam": "Adam, learning rate and b1 climbed",
}


def figures(out, curves, s) -> None:
  """Learning rate and second hyperparameter against step, per family."""
  lr0s = np.array(s["lr0s"])
  families = {
    "sgd": [climb_name("SGD", "momentum", m, "cycle") for m in s["momenta"]]
    + [lr_only_name("SGD", "momentum", s["momenta"][-1])],
    "adam": [climb_name("Adam", "b1", b, "cycle") for b in s["b1s"]],
  }
  i = int(np.argmin(np.abs(np.log(lr0s / 1e-2))))
  for tag, names in families.items():
    if not s["b1s"] and tag == "adam":
      continue
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for color, name in zip(plt.cm.tab10(np.arange(10)), names, strict=False):
      med = np.median(curves[name][:, i], axis=0)  # over seeds
      axes[0].plot(med[:, 0], color=color, lw=1, label=name)
      axes[1].plot(1 - med[:, 1], color=color, lw=1, label=name)
    axes[0].set(yscale="log", xlabel="step", ylabel="learning rate")
    axes[1].set(
      yscale="log", xlabel="step", ylabel="1 - momentum (or 1 - b1), log scale"
    )
    axes[0].set_title(f"{FIGURES[tag]}, lr0 = {lr0s[i]:g}", fontsize=9)
    axes[1].legend(fontsize=6.5, loc="best")
    _page.save(fig, f"{out}/climb_{tag}.png")


def page(summary: dict, out: str) -> str:
  del out  # The figures are drawn by the run: they need every step.
  grid, lr0s, grid_lrs = summary["grid"], summary["lr0"], summary["grid_lr"]
  best_any = max(max(m["accuracy_mean"]) for m in summary["methods"].values())
  climb_table, baseline_table = method_tables(summary)
  cost = summary["cost"]["mlp"]
  text = _page.header(
    "Climbing momentum: the numbers",
    "climb",
    f"Data: {summary['data']}. MLP 784-20-10, batch {grid['batch_size']},"
    f" {grid['epochs']} epochs ({summary['steps']} steps),"
    f" {grid['num_seeds']} seed(s) per setting; accuracies are final test"
    " accuracies, mean ± standard deviation over seeds. Climbing methods"
    f" start from each lr0 of {', '.join(f'{x:g}' for x in lr0s)}; the fixed"
    " baselines run on the learning-rate grid"
    f" `logspace({np.log10(grid_lrs[0]):.0f}, {np.log10(grid_lrs[-1]):.0f},"
    f" {len(grid_lrs)})`. Best mean accuracy of any run:"
    f" {_page.percent(best_any)}.",
    FULL_RUN,
  ) + (
    "## Goal: never more than 1 point behind the best fixed value\n\n"
    "For each starting value, the points by which the climbed run trails"
    " the best of the runs with the learning rate alone climbed and the"
    " second hyperparameter fixed at each value tried, at the same lr0"
    " (negative: ahead).\n\n"
    + goal_table(summary)
    + "\n## Climbing runs\n\n"
    + climb_table
    + "\n## Fixed hyperparameters on the learning-rate grid\n\n"
    + baseline_table
    + "\n## Step cost, MLP\n\n"
    f"{cost['model']}; {cost['rounds']} interleaved rounds of"
    f" {cost['steps_per_round']} steps; ratios are per-round ratios"
    " to `hillclimb`'s step (probing every step), median and quartiles.\n\n"
    + cost_table(cost)
  )
  if summary.get("cnn"):
    text += cnn_section(summary["cnn"])
  tags = (
    ["sgd", "adam"]
    if any(m["family"] == "adam_both" for m in summary["methods"].values())
    else ["sgd"]
  )
  return text + "".join(
    f"\n![hyperparameters against step](climb_{t}.png)\n" for t in tags
  )


def _arguments(parser) -> None:
  parser.add_argument("--epochs", type=int, default=None)
  parser.add_argument(
    "--rounds", type=int, default=100, help="timing rounds of 10 steps, MLP"
  )
  parser.add_argument("--cnn", action="store_true", help="add the CNN check")
  parser.add_argument("--cnn-train", type=int, default=20000)
  parser.add_argument(
    "--rounds-cnn", type=int, default=8, help="timing rounds of 10 steps, CNN"
  )


EXPERIMENT = _cli.Experiment(
  "climb", __doc__, run, page, seeds=(2, 1), arguments=_arguments
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
