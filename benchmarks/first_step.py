r"""The first update's scale search: candidate picks measured side by side.

The scale search scores multiples of lr0 at the first update and picks one.
Each candidate pick below has the signature of ``_search.pick_scale`` and is
swapped in for it while the training programs are traced. Each is measured on

- a synthetic regression with targets in the hundreds
  (``benchmarks/_regression.py``, a 12-32-1 ReLU MLP, batch 50, 10 epochs of
  20 steps) at three scales of the loss (an initial loss of about 1e-3, 1 and
  1e5: the same problem, the loss multiplied by a constant);
- sklearn's digits classifier of ``benchmarks/safe_start.py`` (64-64-10 ReLU
  MLP, batch 64, 3 epochs of 22 steps);

at lr0 on a half-decade grid from 1e-6 to 1e2, with ``every_k`` 1 and 10, for
``hillclimb`` and ``hillclimb_adam``, over seeds. SGD at each rate of a
half-decade grid gives the baseline: at its best rate (by mean test loss),
the share of hidden units its first step kills.

  python -m benchmarks.first_step                 # docs/results/
  python -m benchmarks.first_step --quick --out /tmp/first_step
"""

import argparse
from collections.abc import Callable
import contextlib
import dataclasses
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

if not __package__:  # Run as a file: python benchmarks/first_step.py.
  import _as_module  # noqa: F401

import optax_hillclimb as ohc
from optax_hillclimb import _search
from optax_hillclimb import _transform

from . import _regression
from . import _report
from . import safe_start

LR0S = tuple(float(10 ** (k / 2)) for k in range(-12, 5))
SGD_RATES = tuple(float(10 ** (k / 2)) for k in range(-10, 3))
LOSS_SCALES = (1e-3, 1.0, 1e5)
DECADES = _search.SCALE_SEARCH
# Each decade and its double: the doubles score a second step of the same
# length (w - 2 c u) for the two-step pick.
DOUBLED = tuple(sorted(DECADES + tuple(2 * c for c in DECADES)))


@dataclasses.dataclass(frozen=True)
class Problem:
  """A training problem: data, model and protocol.

  Attributes:
    name: label in tables.
    data: ``((x, y), (x_test, y_test))``.
    init: ``init(key) -> params``.
    loss: ``loss(params, x, y, loss_scale)``, the training loss.
    dead_share: ``dead_share(params, x)``, hidden units dead on ``x``.
    evaluate: ``evaluate(params, x_test, y_test) -> (test loss, score)``;
      the score is the accuracy, or R^2 for the regression.
    batch_size: examples per step.
    epochs: passes over the training data.
    loss_scales: the scales of the loss to train at.
    raw_scale: the loss scale at which the loss is the raw one (SGD's rates
      are given for it).
  """

  name: str
  data: Any
  init: Callable[..., Any]
  loss: Callable[..., jax.Array]
  dead_share: Callable[..., jax.Array]
  evaluate: Callable[..., tuple[jax.Array, jax.Array]]
  batch_size: int
  epochs: int
  loss_scales: tuple[float, ...] = (1.0,)
  raw_scale: float = 1.0


def regression() -> Problem:
  data = _regression.data()
  constant = _regression.constant_mse(data[0][1], data[1][1])

  def evaluate(params, x, y):
    mse = _regression.mse(params, x, y)
    return mse, 1 - mse / constant

  return Problem(
    name="regression",
    data=data,
    init=_regression.init,
    loss=_regression.loss,
    dead_share=_regression.dead_share,
    evaluate=evaluate,
    batch_size=_regression.BATCH_SIZE,
    epochs=10,
    loss_scales=LOSS_SCALES,
    raw_scale=_regression.RAW_LOSS,
  )


def digits() -> Problem:
  def evaluate(params, x, y):
    logits = safe_start.logits(params, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)

  def dead_share(params, x):
    return jnp.mean(jnp.all(safe_start.hidden(params, x) == 0, axis=0))

  return Problem(
    name="digits",
    data=safe_start.digits(),
    init=safe_start.init,
    loss=lambda params, x, y, loss_scale: safe_start.loss(params, x, y),
    dead_share=dead_share,
    evaluate=evaluate,
    batch_size=64,
    epochs=3,
  )


# Candidate picks, with pick_scale's signature: (candidates, losses) ->
# (index of the chosen candidate, whether the losses differ at all).


def fraction_of_best(fraction: float) -> Callable:
  """The smallest candidate with ``fraction`` of the best decrease."""

  def pick(candidates, losses):
    best = jnp.min(losses)
    reference = losses[jnp.argmin(candidates)]
    good_enough = losses <= best + (reference - best) * (1 - fraction)
    chosen = jnp.argmin(jnp.where(good_enough, candidates, jnp.inf))
    return chosen, jnp.any(losses != best)

  return pick


def decade_lower(pick: Callable) -> Callable:
  """``pick``'s choice, then the candidate ten times smaller (if any)."""

  def lower(candidates, losses):
    chosen, decided = pick(candidates, losses)
    lower = jnp.isclose(candidates, candidates[chosen] / 10, rtol=1e-3)
    return jnp.where(jnp.any(lower), jnp.argmax(lower), chosen), decided

  return lower


def only_where(admissible: Callable, pick: Callable) -> Callable:
  """``pick`` among the candidates that ``admissible`` lets through.

  The others score ``inf``; when none is admissible, the smallest candidate.
  """

  def restricted(candidates, losses):
    ok = admissible(candidates, losses)
    chosen, decided = pick(candidates, jnp.where(ok, losses, jnp.inf))
    smallest = jnp.argmin(candidates)
    chosen = jnp.where(jnp.any(ok), chosen, smallest)
    return chosen, decided & jnp.any(ok)

  return restricted


def _loss_at(candidates, losses, multiple):
  """Each candidate's ``multiple``: its loss (``nan`` where none is scored)."""
  match = jnp.isclose(
    candidates[None, :], multiple * candidates[:, None], rtol=1e-3
  )
  return jnp.where(jnp.any(match, 1), losses[jnp.argmax(match, 1)], jnp.nan)


def second_step_decreases(candidates, losses):
  """Twice the step (``w - 2 c u``) scores no worse than the step itself."""
  return _loss_at(candidates, losses, 2.0) <= losses


HALF = fraction_of_best(0.5)
BEFORE = "half of best (before)"
AFTER = "half, step <= 0.2 norm(w) (after)"
# name: (pick, scale_search, longest first step as a fraction of the
# parameters' norm, or None).
PICKS = {
  BEFORE: (HALF, DECADES, None),
  "half, step <= 0.1 norm(w)": (HALF, DECADES, 0.1),
  AFTER: (HALF, DECADES, _search.MAX_RELATIVE_STEP),
  "half, step <= 0.3 norm(w)": (HALF, DECADES, 0.3),
  "tenth of best": (fraction_of_best(0.1), DECADES, None),
  "half, a decade lower": (decade_lower(HALF), DECADES, None),
  "half, 2c decreases": (
    only_where(second_step_decreases, HALF),
    DOUBLED,
    None,
  ),
}


@contextlib.contextmanager
def picking(pick: Callable, max_relative_step: float | None):
  """Swaps ``pick`` and the bound in for the library's while tracing.

  With ``max_relative_step``, the search sees ``inf`` for candidates whose
  step is longer than that fraction of the parameters' norm
  (``_search.bound_steps``), from the norms of the update and parameters
  that the update received; with ``None``, no bound, whatever the library
  does.
  """
  library = _search.pick_scale, _search.search, _transform._see
  norms = {}

  def see(config, loss, params, updates, *args):
    norms["step"], norms["params"] = map(optax.tree.norm, (updates, params))
    return library[2](config, loss, params, updates, *args)

  def search(
    lr0, candidates, losses, *, step_norm=None, params_norm=None, **kw
  ):
    del step_norm, params_norm  # The library's own bound, if it has one.
    if max_relative_step is not None:
      losses = _search.bound_steps(
        candidates, losses, norms["step"], norms["params"], max_relative_step
      )
    return library[1](lr0, candidates, losses, **kw)

  _search.pick_scale, _search.search, _transform._see = pick, search, see
  try:
    yield
  finally:
    _search.pick_scale, _search.search, _transform._see = library


def hillclimb_methods(alias: Callable, every_k: int, scales) -> Callable:
  def make(lr0, loss_scale):
    del loss_scale
    return alias(lr0, every_k=every_k, scale_search=scales)

  return make


def sgd_method(problem: Problem) -> Callable:
  def make(lr, loss_scale):
    # The loss times a constant is the same problem: SGD's rate scales back.
    return optax.sgd(lr * problem.raw_scale / loss_scale)

  return make


def hillclimb_rate(state, lr0):
  del lr0
  return ohc.get_learning_rate(state)


def train(
  problem: Problem, make: Callable, rate: Callable, lr0s, num_seeds: int
) -> dict:
  """Trains a grid [loss scale, seed, lr0]; returns numpy arrays by metric."""
  (x, y), (x_test, y_test) = problem.data
  steps_per_epoch = len(y) // problem.batch_size
  used = steps_per_epoch * problem.batch_size

  def run_one(loss_scale, key, lr0):
    params = problem.init(key)
    opt = optax.with_extra_args_support(make(lr0, loss_scale))
    keys = jax.random.split(jax.random.fold_in(key, 1), problem.epochs)
    order = jax.vmap(lambda k: jax.random.permutation(k, len(y))[:used])(keys)

    def batch_loss(p, bx, by):
      return problem.loss(p, bx, by, loss_scale)

    def step(carry, indices):
      params, state = carry
      bx, by = x[indices], y[indices]
      value, grads = jax.value_and_grad(batch_loss)(params, bx, by)
      updates, state = opt.update(
        grads, state, params, value_fn=batch_loss, value=value, bx=bx, by=by
      )
      params = optax.apply_updates(params, updates)
      dead = problem.dead_share(params, x)
      return (params, state), (value, dead, rate(state, lr0))

    (params, _), (values, dead, rates) = jax.lax.scan(
      step, (params, opt.init(params)), order.reshape(-1, problem.batch_size)
    )
    test_loss, score = problem.evaluate(params, x_test, y_test)
    return {
      "test_loss": test_loss,
      "score": score,
      "value": values,
      "dead": dead,
      "learning_rate": rates,
    }

  grid = jax.vmap(run_one, in_axes=(None, None, 0))
  grid = jax.vmap(grid, in_axes=(None, 0, None))
  grid = jax.vmap(grid, in_axes=(0, None, None))
  out = jax.jit(grid)(
    jnp.asarray(problem.loss_scales, jnp.float32),
    jax.vmap(jax.random.key)(jnp.arange(num_seeds)),
    jnp.asarray(lr0s, jnp.float32),
  )
  return {k: np.asarray(v) for k, v in jax.device_get(out).items()}


def at_constant(problem: Problem, runs: dict) -> np.ndarray:
  """Runs that end at the constant prediction (or at chance, classifying)."""
  if problem.name == "regression":
    return np.abs(runs["score"]) <= 0.05
  return runs["score"] <= 0.2


def in_reach(problem: Problem, alias: str, sgd_rates, lr0s) -> np.ndarray:
  """Cells [loss scale, lr0] whose search reaches SGD's best rate.

  ``hillclimb`` steps along the gradient, so its rates scale with the loss
  as SGD's do: from lr0 the search reaches at most lr0 times the largest
  multiple. ``hillclimb_adam``'s steps do not depend on the loss's scale.
  """
  lr0s = np.asarray(lr0s)[None, :]
  if alias != "hillclimb":
    return np.ones((len(problem.loss_scales), lr0s.size), bool)
  scales = np.asarray(problem.loss_scales)[:, None]
  needed = np.asarray(sgd_rates)[:, None] * problem.raw_scale / scales
  return lr0s * max(DECADES) >= needed


def summarize(problem: Problem, runs: dict, reach: np.ndarray) -> dict:
  """Numbers over the runs in reach (loss scales x seeds x lr0)."""
  mask = np.broadcast_to(reach[:, None, :], runs["score"].shape)
  at = lambda key: runs[key][mask]
  first = runs["value"][..., :1]
  growth = np.max(runs["value"][..., 1:20] / first, axis=-1)[mask]
  return {
    "dead_step1_mean": float(at("dead")[:, 0].mean()),
    "dead_step1_max": float(at("dead")[:, 0].max()),
    "dead_step20_max": float(at("dead")[:, 19].max()),
    "growth_20_max": float(np.max(growth)),
    "test_loss_median": float(np.median(at("test_loss"))),
    "test_loss_max": float(np.max(at("test_loss"))),
    "score_mean": float(np.mean(at("score"))),
    "score_min": float(np.min(at("score"))),
    "at_constant": int(np.sum(at_constant(problem, runs)[mask])),
    "runs": int(mask.sum()),
    "out_of_reach": int((~mask).sum()),
  }


def every_k_gap(problem: Problem, k1: dict, k10: dict, reach) -> float:
  """The worst cell's gap of ``every_k=10`` behind ``every_k=1``.

  Points of accuracy for the classifier; the relative excess of the test
  loss for the regression. Cells are [loss scale, lr0] in reach, means over
  seeds.
  """
  if problem.name == "regression":
    gap = k10["test_loss"].mean(1) / k1["test_loss"].mean(1) - 1
  else:
    gap = (k1["score"].mean(1) - k10["score"].mean(1)) * 100
  return float(np.max(gap[reach]))


def sgd_baseline(problem: Problem, num_seeds: int) -> dict:
  """SGD on its rate grid: the best rate per loss scale and its first step."""
  runs = train(
    problem, sgd_method(problem), lambda state, lr: lr, SGD_RATES, num_seeds
  )
  mean_loss = np.nan_to_num(runs["test_loss"].mean(1), nan=np.inf)
  best = np.argmin(mean_loss, axis=1)  # [loss scale]
  at_best = {
    k: np.stack([v[i, :, b] for i, b in enumerate(best)])  # [scale, seed]
    for k, v in runs.items()
  }
  return {
    "best_rate": [SGD_RATES[b] for b in best],
    "test_loss_mean": at_best["test_loss"].mean(1).tolist(),
    "score_mean": at_best["score"].mean(1).tolist(),
    "dead_step1_mean": at_best["dead"][..., 0].mean(1).tolist(),
    "dead_step1_max": at_best["dead"][..., 0].max(1).tolist(),
    "dead_step20_max": at_best["dead"][..., 19].max(1).tolist(),
    "dead_final_max": at_best["dead"][..., -1].max(1).tolist(),
  }


ALIASES = {"hillclimb": ohc.hillclimb, "hillclimb_adam": ohc.hillclimb_adam}


def measure(problem, picks, aliases, lr0s, num_seeds, log) -> dict:
  """Every pick x alias x every_k on ``problem``: summaries and gaps."""
  out = {"sgd": sgd_baseline(problem, num_seeds), "picks": {}}
  for name in picks:
    pick, scales, bound = PICKS[name]
    out["picks"][name] = {}
    for alias in aliases:
      runs = {}
      for every_k in (1, 10):
        make = hillclimb_methods(ALIASES[alias], every_k, scales)
        with picking(pick, bound):
          runs[every_k] = train(problem, make, hillclimb_rate, lr0s, num_seeds)
      reach = in_reach(problem, alias, out["sgd"]["best_rate"], lr0s)
      out["picks"][name][alias] = {
        "every_k=1": summarize(problem, runs[1], reach),
        "every_k=10": summarize(problem, runs[10], reach),
        "gap": every_k_gap(problem, runs[1], runs[10], reach),
        "in_reach": reach.tolist(),
        # Per [loss scale, lr0], over seeds.
        "test_loss_by_lr0": runs[10]["test_loss"].mean(1).tolist(),
        "dead_step1_by_lr0": runs[10]["dead"][..., 0].mean(1).tolist(),
        "learning_rate_step1_by_lr0": np.median(
          runs[10]["learning_rate"][..., 0], 1
        ).tolist(),
      }
      log(f"{problem.name}: {name}, {alias}")
  return out


def _final(problem: Problem, s: dict) -> str:
  if problem.name == "regression":
    return f"{s['test_loss_median']:.0f} / {s['test_loss_max']:.0f}"
  return f"{100 * s['score_mean']:.1f}% / {100 * s['score_min']:.1f}%"


def picks_table(problem: Problem, result: dict) -> str:
  rows = []
  for name, by_alias in result["picks"].items():
    for alias, r in by_alias.items():
      for k in ("every_k=1", "every_k=10"):
        s = r[k]
        rows.append(
          [
            name,
            alias,
            k.split("=")[1],
            f"{_report.percent(s['dead_step1_mean'])} /"
            f" {_report.percent(s['dead_step1_max'])}",
            _report.percent(s["dead_step20_max"]),
            f"{s['growth_20_max']:.3g}",
            _final(problem, s),
            f"{s['at_constant']} of {s['runs']}",
          ]
        )
  final = (
    "test MSE: median / worst"
    if problem.name == "regression"
    else "test accuracy: mean / worst"
  )
  return _report.markdown_table(
    [
      "pick",
      "optimizer",
      "every_k",
      "dead after step 1: mean / worst",
      "dead after step 20: worst",
      "batch loss, steps 2-20 / step 1: worst",
      final,
      "runs at the constant prediction",
    ],
    rows,
  )


def gap_table(problem: Problem, result: dict) -> str:
  unit = "%" if problem.name == "regression" else " points"
  scale = 100 if problem.name == "regression" else 1
  rows = [
    [name] + [f"{scale * r['gap']:+.1f}{unit}" for r in by_alias.values()]
    for name, by_alias in result["picks"].items()
  ]
  aliases = list(next(iter(result["picks"].values())))
  return _report.markdown_table(["pick", *aliases], rows)


def sgd_table(problems: list[Problem], results: dict) -> str:
  rows = []
  for problem in problems:
    s = results[problem.name]["sgd"]
    for i, loss_scale in enumerate(problem.loss_scales):
      rows.append(
        [
          problem.name,
          f"{loss_scale:g}" if problem.name == "regression" else "-",
          f"{s['best_rate'][i]:.3g}",
          _final_sgd(problem, s["test_loss_mean"][i], s["score_mean"][i]),
          f"{_report.percent(s['dead_step1_mean'][i])} /"
          f" {_report.percent(s['dead_step1_max'][i])}",
          _report.percent(s["dead_step20_max"][i]),
          _report.percent(s["dead_final_max"][i]),
        ]
      )
  return _report.markdown_table(
    [
      "problem",
      "loss scale",
      "SGD's best rate (for the raw loss)",
      "its result (mean)",
      "dead after its step 1: mean / worst",
      "after step 20: worst",
      "at the end: worst",
    ],
    rows,
  )


def _final_sgd(problem: Problem, test_loss: float, score: float) -> str:
  if problem.name == "regression":
    return f"test MSE {test_loss:.0f}"
  return f"accuracy {_report.percent(score)}"


def by_lr0_table(problem: Problem, result: dict, picks, lr0s) -> str:
  """``every_k=10`` per lr0: mean test loss and dead share after step 1."""
  columns, headers = [], ["lr0"]
  for name in picks:
    for alias, r in result["picks"][name].items():
      for i, loss_scale in enumerate(problem.loss_scales):
        scale = (
          f", loss scale {loss_scale:g}" if len(problem.loss_scales) > 1 else ""
        )
        headers.append(f"{name}, {alias}{scale}")
        columns.append(
          [
            f"{test:.3g} ({_report.percent(dead)})"
            for test, dead in zip(
              r["test_loss_by_lr0"][i], r["dead_step1_by_lr0"][i], strict=True
            )
          ]
        )
  rows = [
    [f"{lr0:.3g}", *row]
    for lr0, row in zip(lr0s, zip(*columns, strict=True), strict=True)
  ]
  return _report.markdown_table(headers, rows)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument(
    "--quick",
    action="store_true",
    help="one seed, lr0 1e-6, 3e-3 and 100, hillclimb, picks before/after",
  )
  parser.add_argument("--picks", nargs="*", default=list(PICKS))
  parser.add_argument("--out", default="docs/results")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  lr0s, seeds, picks, aliases = LR0S, args.seeds, args.picks, list(ALIASES)
  if args.quick:
    lr0s, seeds, aliases = (1e-6, 10**-2.5, 100.0), 1, ["hillclimb"]
    picks = [BEFORE, AFTER]
  start = time.time()
  log = lambda text: print(f"{text}: {time.time() - start:.0f} s", flush=True)
  problems = [regression(), digits()]
  results = {
    p.name: measure(p, picks, aliases, lr0s, seeds, log) for p in problems
  }
  detail = [p for p in (BEFORE, AFTER) if p in picks]
  text = [
    "# The first step at any scale of the loss: the numbers\n\n"
    + DESCRIPTION.format(seeds=seeds, num_lr0=len(lr0s))
    + _report.machine_notes(time.time() - start),
    "## SGD's first step at its best rate\n\n" + sgd_table(problems, results),
  ]
  for p in problems:
    text.append(f"## {p.name}: the picks\n\n" + picks_table(p, results[p.name]))
    text.append(
      f"## {p.name}: every_k=10 behind every_k=1 (worst lr0)\n\n"
      + gap_table(p, results[p.name])
    )
    text.append(
      f"## {p.name}: every_k=10 per lr0, test loss (dead after step 1)\n\n"
      + by_lr0_table(p, results[p.name], detail, lr0s)
    )
  with open(os.path.join(args.out, "first_step.md"), "w") as f:
    f.write("\n".join(text))
  results["_lr0"] = list(lr0s)
  results["_sgd_rates"] = list(SGD_RATES)
  results["_seeds"] = seeds
  with open(os.path.join(args.out, "first_step.json"), "w") as f:
    json.dump(results, f, indent=1)
  print("\n".join(text[1:]))


DESCRIPTION = """\
The first update's scale search scores lr0 times 1e-6 .. 1e6 on the first
batch and picks one. Each pick below replaces the library's for a whole grid:
lr0 from 1e-6 to 1e2 on a half-decade grid ({num_lr0} values), {seeds} seeds,
`every_k` 1 and 10. The training loops pass `value=` (the batch loss before
the step) and `value_fn`, as a user would.

- regression: the synthetic regression of `benchmarks/_regression.py`
  (targets in the hundreds, a 12-32-1 ReLU MLP, batch 50, 10 epochs of 20
  steps), at loss scales 1e-3, 1 and 1e5 (the mean squared error times a
  constant so that the initial loss is about that; the raw one is about 3e4).
  Cells are over all three scales. For `hillclimb`, whose rates scale with
  the loss as SGD's do, cells where lr0 x 1e6 is below SGD's best rate for
  that scale are out of the search's reach (with SGD's best rate of 1e-3 for
  the raw loss: lr0 up to 1e-2 for a loss of order 1e-3, up to 1e-5 for one
  of order 1); they are left out.
- digits: the classifier of `benchmarks/safe_start.py` (sklearn's 8x8 digits,
  a 64-64-10 ReLU MLP, batch 64, 3 epochs of 22 steps).

Dead units: hidden units that output 0 on every training example. The
constant prediction: test R^2 within 0.05 of 0 (regression), accuracy at
most 20% (digits). SGD's best rate: the rate of a half-decade grid with the
lowest mean test loss.

"""


if __name__ == "__main__":
  main()
