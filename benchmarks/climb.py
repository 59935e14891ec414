r"""Climbing momentum as well as the learning rate (issue 10).

On the robustness protocol's MLP (784-20-10, batch 1000, inputs in [0, 1],
benchmarks/robustness.py), at a few starting learning rates ``lr0``:

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

The goal: climbing momentum is never more than 1 point behind the best fixed
momentum (learning rate climbed) at the same lr0, whatever momentum it
started from. Also timed, in interleaved rounds: a step of each climbing
variant against a probe step of ``hillclimb`` (today's probe step), on the MLP
and (with ``--cnn``) on Flax's MNIST CNN; the goal is a step of ``climb``
with one hyperparameter probed per step costing no more than it.

  python -m benchmarks.climb                  # docs/results/climb.*
  python -m benchmarks.climb --quick --out /tmp/climb
  python -m benchmarks.climb --cnn            # + the CNN check
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

if not __package__:  # Run as a file: python benchmarks/climb.py.
  import _as_module  # noqa: F401

import optax_hillclimb as ohc

from . import _data
from . import _example
from . import _mlp
from . import _report
from . import _vtrain
from ._report import plt

WITHIN = 0.01  # the goal: one accuracy point
MOMENTA = (0.0, 0.5, 0.9, 0.99)
ALL_LAYOUT_MOMENTA = (0.0, 0.9)
B1S = (0.5, 0.9)


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


def methods(momenta, all_momenta, b1s):
  """The climbing methods: ``[(Method, family, second, start)]``."""
  out = []
  for m in momenta:
    out.append(
      (
        _vtrain.Method(
          climb_name("SGD", "momentum", m, "cycle"),
          lambda lr, m=m: ohc.climb(sgd(lr, m)),
          learning_rate=_recorder("momentum"),
        ),
        "sgd_both",
        m,
      )
    )
    out.append(
      (
        _vtrain.Method(
          lr_only_name("SGD", "momentum", m),
          lambda lr, m=m: ohc.climb(sgd(lr, m), "learning_rate"),
          learning_rate=_recorder("momentum"),
        ),
        "sgd_lr",
        m,
      )
    )
  for m in all_momenta:
    out.append(
      (
        _vtrain.Method(
          climb_name("SGD", "momentum", m, "all"),
          lambda lr, m=m: ohc.climb(sgd(lr, m), layout="all"),
          learning_rate=_recorder("momentum"),
        ),
        "sgd_all",
        m,
      )
    )
  for b1 in b1s:
    out.append(
      (
        _vtrain.Method(
          climb_name("Adam", "b1", b1, "cycle"),
          lambda lr, b1=b1: ohc.climb(adam(lr, b1), ("learning_rate", "b1")),
          learning_rate=_recorder("b1"),
        ),
        "adam_both",
        b1,
      )
    )
  if not b1s:
    return out
  out.append(
    (
      _vtrain.Method(
        lr_only_name("Adam", "b1", 0.9),
        lambda lr: ohc.climb(adam(lr, 0.9), "learning_rate"),
        learning_rate=_recorder("b1"),
      ),
      "adam_lr",
      0.9,
    )
  )
  return out


def baselines(momenta, with_adam=True):
  """Fixed hyperparameters, swept on the learning-rate grid."""
  out = [
    (
      _vtrain.Method(
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
    out.append(
      (
        _vtrain.Method("Adam", optax.adam, learning_rate=_fixed(0.9)),
        "adam_fixed",
        0.9,
      )
    )
  return out


# Step cost -------------------------------------------------------------------


def _step_programs(loss, params, batch, opts):
  """Jitted training steps (not vmapped: cond picks the branch at run time)."""
  programs = {}
  for name, opt in opts.items():
    opt = optax.with_extra_args_support(opt)

    def step(params, state, batch, opt=opt):
      def batch_loss(weights):
        return loss(weights, *batch)

      value, grads = jax.value_and_grad(batch_loss)(params)
      updates, state = opt.update(
        grads, state, params, value_fn=batch_loss, value=value
      )
      return optax.apply_updates(params, updates), state

    step = jax.jit(step)
    state = opt.init(params)
    # Two steps: compiled, and past the first update (the scale search).
    new_params, new_state = step(params, state, batch)
    new_params, new_state = step(new_params, new_state, batch)
    jax.block_until_ready(new_params)
    programs[name] = (step, new_params, new_state)
  return programs


def time_steps(programs, batch, rounds: int, steps: int) -> dict:
  """Seconds per step of each program, in interleaved rounds.

  Each round runs every program for ``steps`` steps, one program after the
  other, in an order that rotates from round to round.

  Returns:
    ``{name: [rounds] seconds per step}``.
  """
  names = list(programs)
  seconds = {name: np.zeros(rounds) for name in names}
  carry = {name: programs[name][1:] for name in names}
  for r in range(rounds):
    for name in names[r % len(names) :] + names[: r % len(names)]:
      step = programs[name][0]
      p, s = carry[name]
      start = time.perf_counter()
      for _ in range(steps):
        p, s = step(p, s, batch)
      jax.block_until_ready(p)
      seconds[name][r] = (time.perf_counter() - start) / steps
      carry[name] = (p, s)
  return seconds


COST_VARIANTS = (
  "SGD momentum 0.9",
  "hillclimb (today's probe step)",
  "climb SGD lr only",
  "climb SGD lr+momentum, cycle",
  "climb SGD lr+momentum, all",
)


def cost_optimizers(lr0: float = 0.1):
  return {
    COST_VARIANTS[0]: optax.sgd(lr0, momentum=0.9),
    COST_VARIANTS[1]: ohc.hillclimb(lr0),
    COST_VARIANTS[2]: ohc.climb(sgd(lr0, 0.9), "learning_rate"),
    COST_VARIANTS[3]: ohc.climb(sgd(lr0, 0.9)),
    COST_VARIANTS[4]: ohc.climb(sgd(lr0, 0.9), layout="all"),
  }


def measure_cost(
  loss, params, batch, rounds, steps, label, names=COST_VARIANTS
) -> dict:
  opts = {k: v for k, v in cost_optimizers().items() if k in names}
  programs = _step_programs(loss, params, batch, opts)
  seconds = time_steps(programs, batch, rounds, steps)
  reference = seconds[COST_VARIANTS[1]]
  out = {"model": label, "rounds": rounds, "steps_per_round": steps}
  for name, s in seconds.items():
    ratio = s / reference
    q1, median, q3 = np.percentile(ratio, [25, 50, 75])
    out[name] = {
      "ms_per_step_median": 1e3 * float(np.median(s)),
      "over_hillclimb": {
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
      },
    }
  return out


def cost_table(cost: dict) -> str:
  return _report.markdown_table(
    [
      "variant",
      "ms per step (median of rounds)",
      "per-round ratio to hillclimb's probe step: median (quartiles)",
    ],
    [
      [
        name,
        f"{cost[name]['ms_per_step_median']:.2f}",
        f"{cost[name]['over_hillclimb']['median']:.2f}"
        f" ({cost[name]['over_hillclimb']['q1']:.2f}-"
        f"{cost[name]['over_hillclimb']['q3']:.2f})",
      ]
      for name in COST_VARIANTS
      if name in cost
    ],
  )


# CNN -------------------------------------------------------------------------


def run_cnn(args, quick: bool) -> dict:
  """Flax's MNIST CNN: lr+momentum climbed against lr alone, and step cost."""
  from . import _cnn

  datasets = _example.module("datasets")
  if quick:
    ds = datasets.load(source="sample")
    train, epochs, lr0s, momenta = 512, 1, (1e-2,), (0.0, 0.9)
  else:
    ds = datasets.load(
      source="idx", data_dir=_data.DEBIAN_FASHION_MNIST, name="fashion_mnist"
    )
    train, epochs, lr0s, momenta = args.cnn_train, 1, (1e-2,), MOMENTA
  images = datasets.to_float(ds.train_images[:train])
  labels = ds.train_labels[:train]
  test_images = datasets.to_float(ds.test_images)
  label = (
    f"{ds.name} ({ds.source}), first {len(labels)} training images, all"
    f" {len(ds.test_labels)} test images, {epochs} epoch(s), batch 128, seed 0"
  )
  runs = {}
  for m in momenta:
    for name, make in (
      (climb_name("SGD", "momentum", m, "cycle"), lambda lr, m=m: ohc.climb(
        sgd(lr, m))),
      (lr_only_name("SGD", "momentum", m), lambda lr, m=m: ohc.climb(
        sgd(lr, m), "learning_rate")),
    ):  # fmt: skip
      for lr0 in lr0s:
        r = _cnn.train(
          make,
          lr0,
          images,
          labels,
          test_images,
          ds.test_labels,
          epochs=epochs,
          learning_rate=lambda s: s.inner_state.hyperparams["momentum"],
        )
        r["final_momentum"] = r.pop("final_lr")
        runs[f"{name} @ {lr0:g}"] = r
        print("cnn", name, lr0, r, flush=True)

  model = _cnn.CNN()
  batch = (jnp.asarray(images[:128]), jnp.asarray(labels[:128]))
  params = model.init(jax.random.key(0), batch[0][:1])["params"]

  def loss(p, x, y):
    logits = model.apply({"params": p}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  cost = measure_cost(
    loss,
    params,
    batch,
    rounds=2 if quick else args.rounds_cnn,
    steps=2 if quick else 5,
    label="Flax MNIST CNN, batch 128",
  )
  print(cost_table(cost), flush=True)
  return {"data": label, "runs": runs, "cost": cost}


# Report ----------------------------------------------------------------------


def plot_hyperparams(path, curves, lr0s, lr0_index, title):
  """Learning rate and second hyperparameter against step, one line each."""
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
  colors = plt.cm.tab10(np.arange(10))
  for color, (name, values) in zip(colors, curves.items(), strict=False):
    med = np.median(values[:, lr0_index], axis=0)  # over seeds
    axes[0].plot(med[:, 0], color=color, lw=1, label=name)
    axes[1].plot(1 - med[:, 1], color=color, lw=1, label=name)
  axes[0].set(yscale="log", xlabel="step", ylabel="learning rate")
  axes[1].set(
    yscale="log",
    xlabel="step",
    ylabel="1 - momentum (or 1 - b1), log scale",
  )
  axes[0].set_title(f"{title}, lr0 = {lr0s[lr0_index]:g}", fontsize=9)
  axes[1].legend(fontsize=6.5, loc="best")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--seeds", type=int, default=None)
  parser.add_argument("--epochs", type=int, default=None)
  parser.add_argument("--data", default=None)
  parser.add_argument("--rounds", type=int, default=20)
  parser.add_argument("--cnn", action="store_true", help="add the CNN check")
  parser.add_argument("--cnn-train", type=int, default=20000)
  parser.add_argument("--rounds-cnn", type=int, default=8)
  parser.add_argument("--out", default="docs/results")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if args.quick:
    data_name = args.data or "sample"
    lr0s = np.array([0.3])
    grid_lrs = np.logspace(-3, 0, 4)
    grid = dict(num_seeds=args.seeds or 1, batch_size=200)
    epochs = args.epochs or 1
    momenta, all_momenta, b1s = (0.9,), (), ()
    rounds, steps = 2, 5
  else:
    data_name = args.data or "fashion_mnist"
    # Distinct mantissas: the scale search makes lr0 and 10 lr0 alike.
    lr0s = np.array([1e-3, 2e-2, 0.3, 5.0])
    grid_lrs = np.logspace(-4, 1, 11)
    grid = dict(num_seeds=args.seeds or 2, batch_size=1000)
    epochs = args.epochs or 5
    momenta, all_momenta, b1s = MOMENTA, ALL_LAYOUT_MOMENTA, B1S
    rounds, steps = args.rounds, 50
  grid["epochs"] = epochs

  start = time.time()
  data = _data.load_flat(data_name, "unit")
  steps_total = epochs * (len(data.y_train) // grid["batch_size"])
  acc, curves, info = {}, {}, {}
  for method, family, start_value in methods(momenta, all_momenta, b1s):
    t = time.time()
    r = _vtrain.train_grid(method, data, lr0s=lr0s, **grid)
    acc[method.name] = r.accuracy  # [seed, lr0]
    curves[method.name] = r.learning_rate  # [seed, lr0, step, 2]
    info[method.name] = (family, start_value, "lr0")
    print(
      f"{method.name}: {time.time() - t:.0f} s,"
      f" {np.round(100 * r.accuracy.mean(0), 1)}",
      flush=True,
    )
  for method, family, value in baselines(momenta, with_adam=bool(b1s)):
    t = time.time()
    r = _vtrain.train_grid(method, data, lr0s=grid_lrs, **grid)
    acc[method.name] = r.accuracy
    info[method.name] = (family, value, "grid")
    print(
      f"{method.name}: {time.time() - t:.0f} s,"
      f" {np.round(100 * r.accuracy.mean(0), 1)}",
      flush=True,
    )
  train_seconds = time.time() - start

  # Step cost on the MLP, one batch of the protocol's size.
  t = time.time()
  params = _mlp.init(jax.random.key(0))
  batch = (
    jnp.asarray(data.x_train[: grid["batch_size"]]),
    jnp.asarray(data.y_train[: grid["batch_size"]]),
  )
  cost = {
    "mlp": measure_cost(
      _mlp.loss,
      params,
      batch,
      rounds,
      steps,
      f"MLP 784-20-10, batch {grid['batch_size']}",
      # Quick: only what compares the layouts with today's probe step.
      names=COST_VARIANTS[1:2] + COST_VARIANTS[3:]
      if args.quick
      else COST_VARIANTS,
    )
  }
  print(cost_table(cost["mlp"]), f"{time.time() - t:.0f} s", flush=True)
  cnn = run_cnn(args, args.quick) if args.cnn else None
  seconds = time.time() - start

  mean = {k: a.mean(0) for k, a in acc.items()}
  std = {k: a.std(0) for k, a in acc.items()}

  # The goal, per family: climbing the second hyperparameter against the best
  # fixed one (learning rate climbed in both) at the same lr0.
  goal_rows, goals = [], []
  for both, fixed, second, starts in (
    ("sgd_both", "sgd_lr", "momentum", momenta),
    ("sgd_all", "sgd_lr", "momentum", all_momenta),
    ("adam_both", "adam_lr", "b1", b1s),
  ):
    fixed_names = [k for k, v in info.items() if v[0] == fixed]
    if not starts or not fixed_names:
      continue
    best_fixed = np.max([mean[k] for k in fixed_names], axis=0)
    best_who = [
      fixed_names[i] for i in np.argmax([mean[k] for k in fixed_names], axis=0)
    ]
    for s in starts:
      layout = "all" if both == "sgd_all" else "cycle"
      inner = "Adam" if both.startswith("adam") else "SGD"
      name = climb_name(inner, second, s, layout)
      shortfall = best_fixed - mean[name]
      worst = int(np.argmax(shortfall))
      met = bool(np.all(shortfall <= WITHIN + 1e-9))
      goals.append(
        {
          "method": name,
          "reference": "best of " + ", ".join(fixed_names),
          "shortfall_by_lr0": shortfall.tolist(),
          "worst_shortfall": float(shortfall[worst]),
          "at_lr0": float(lr0s[worst]),
          "met": met,
        }
      )
      goal_rows.append(
        [
          name,
          " / ".join(f"{100 * x:+.1f}" for x in shortfall),
          f"{best_who[worst]} ({_report.percent(best_fixed[worst])})",
          f"{lr0s[worst]:g}",
          "met" if met else "**NOT met**",
        ]
      )
  lr0_cols = [f"{x:g}" for x in lr0s]
  goal_table = _report.markdown_table(
    [
      "climbed",
      f"points behind the best fixed value, at lr0 = {', '.join(lr0_cols)}",
      "best fixed where it is worst",
      "worst at lr0",
      "goal (<= 1 pt)",
    ],
    goal_rows,
  )

  def final_values(name):
    med = np.median(curves[name][:, :, -1], axis=0)  # [lr0, 2]
    return " / ".join(f"{a:.3g}, {b:.3g}" for a, b in med)

  climb_table = _report.markdown_table(
    ["method", *[f"lr0 {c}" for c in lr0_cols], "final lr, second (median)"],
    [
      [
        name,
        *[
          f"{100 * a:.1f} ± {100 * s:.1f}"
          for a, s in zip(mean[name], std[name], strict=True)
        ],
        final_values(name),
      ]
      for name, v in info.items()
      if v[2] == "lr0"
    ],
  )
  grid_cols = [f"{x:.0e}" for x in grid_lrs]
  baseline_table = _report.markdown_table(
    ["method", *grid_cols, "best"],
    [
      [
        name,
        *[f"{100 * a:.1f}" for a in mean[name]],
        f"{_report.percent(mean[name].max())} at"
        f" {grid_lrs[int(np.argmax(mean[name]))]:.0e}",
      ]
      for name, v in info.items()
      if v[2] == "grid"
    ],
  )

  plots = []
  for family_names, tag, title in (
    (
      [climb_name("SGD", "momentum", m, "cycle") for m in momenta]
      + [lr_only_name("SGD", "momentum", momenta[-1])],
      "sgd",
      "SGD, learning rate and momentum climbed",
    ),
    (
      [climb_name("Adam", "b1", b, "cycle") for b in b1s],
      "adam",
      "Adam, learning rate and b1 climbed",
    ),
  ):
    if not family_names or not all(n in curves for n in family_names):
      continue
    i = int(np.argmin(np.abs(np.log(lr0s / 1e-2))))
    path = f"climb_{tag}.png"
    plot_hyperparams(
      os.path.join(args.out, path),
      {n: curves[n] for n in family_names},
      lr0s,
      i,
      title,
    )
    plots.append(path)

  best_any = max(float(m.max()) for m in mean.values())
  seeds = grid["num_seeds"]
  page = (
    "# Climbing momentum: the numbers\n\n"
    f"Data: {data.label}. MLP 784-20-10, batch {grid['batch_size']},"
    f" {epochs} epochs ({steps_total} steps), {seeds} seed(s) per setting;"
    " accuracies are final test accuracies, mean ± standard deviation over"
    " seeds. Climbing methods start from each lr0 of"
    f" {', '.join(lr0_cols)}; the fixed baselines run on the learning-rate"
    f" grid `logspace({np.log10(grid_lrs[0]):.0f},"
    f" {np.log10(grid_lrs[-1]):.0f}, {len(grid_lrs)})`. Best mean accuracy"
    f" of any run: {_report.percent(best_any)}.\n\n"
    + _report.machine_notes(seconds)
    + f"- Training wall time {train_seconds:.0f} s\n"
    + "\n## Goal: never more than 1 point behind the best fixed value\n\n"
    "For each starting value, the points by which the climbed run trails"
    " the best of the runs with the learning rate alone climbed and the"
    " second hyperparameter fixed at each value tried, at the same lr0"
    " (negative: ahead).\n\n"
    + goal_table
    + "\n## Climbing runs\n\n"
    + climb_table
    + "\n## Fixed hyperparameters on the learning-rate grid\n\n"
    + baseline_table
    + "\n## Step cost, MLP\n\n"
    f"{cost['mlp']['model']}; {cost['mlp']['rounds']} interleaved rounds of"
    f" {cost['mlp']['steps_per_round']} steps; ratios are per-round ratios"
    " to `hillclimb`'s step (probing every step), median and quartiles.\n\n"
    + cost_table(cost["mlp"])
  )
  if cnn is not None:
    page += (
      "\n## Flax's MNIST CNN\n\n"
      f"{cnn['data']}.\n\n"
      + _report.markdown_table(
        ["run", "test accuracy", "final momentum"],
        [
          [k, _report.percent(r["accuracy"]), f"{r['final_momentum']:.3g}"]
          for k, r in cnn["runs"].items()
        ],
      )
      + f"\nStep cost, {cnn['cost']['model']}, {cnn['cost']['rounds']}"
      f" interleaved rounds of {cnn['cost']['steps_per_round']} steps:\n\n"
      + cost_table(cnn["cost"])
    )
  page += "".join(f"\n![hyperparameters against step]({p})\n" for p in plots)
  with open(os.path.join(args.out, "climb.md"), "w") as f:
    f.write(page)
  summary = {
    "data": data.label,
    "grid": grid,
    "steps": steps_total,
    "lr0": lr0s.tolist(),
    "grid_lr": grid_lrs.tolist(),
    "methods": {
      name: {
        "family": info[name][0],
        "start": info[name][1],
        "accuracy_mean": mean[name].tolist(),
        "accuracy_std": std[name].tolist(),
        **(
          {
            "final_hyperparams_median": np.median(
              curves[name][:, :, -1], axis=0
            ).tolist()
          }
          if name in curves
          else {}
        ),
      }
      for name in mean
    },
    "goals": goals,
    "cost": cost,
    "cnn": cnn,
    "seconds": seconds,
  }
  with open(os.path.join(args.out, "climb.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(goal_table)
  print(climb_table)
  print(baseline_table)


if __name__ == "__main__":
  main()
