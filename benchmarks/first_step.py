r"""The first update's scale search: candidate picks measured side by side.

The scale search scores multiples of lr0, rounded to quarter decades, at the
first update and picks one. Each candidate pick of ``benchmarks/_picks.py``
replaces the library's for a whole grid (lr0 x seeds x ``every_k`` 1 and 10,
for ``hillclimb`` and ``hillclimb_adam``) on a synthetic regression with
targets in the hundreds at three scales of its loss
(``benchmarks/_regression.py``) and on the digits classifier of
``benchmarks/safe_start.py``. SGD's first step at its best rate is the
baseline: how many hidden units may a first step kill? The page
(``DESCRIPTION`` below) says how each number is made.

  python -m benchmarks.first_step
"""

import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _loss_scales
from . import _models
from . import _page
from . import _picks
from . import _regression
from . import _train

LR0S = tuple(float(10 ** (k / 2)) for k in range(-12, 5))
QUICK_LR0S = (1e-6, 10**-2.5, 100.0)
SGD_RATES = tuple(float(10 ** (k / 2)) for k in range(-10, 3))
LOSS_SCALES = (1e-3, 1.0, 1e5)


def problems() -> list[_loss_scales.Problem]:
  regression = _loss_scales.Problem(
    "regression",
    _regression.dataset(),
    _regression.task,
    "r2",
    dict(batch_size=_regression.BATCH_SIZE, epochs=10),
    LOSS_SCALES,
    _regression.RAW_LOSS,
  )
  digits = _loss_scales.Problem(
    "digits",
    _data.digits(),
    lambda _: _models.DIGITS_TASK,
    "accuracy",
    dict(batch_size=64, epochs=3),
  )
  return [regression, digits]


def summarize(
  problem: _loss_scales.Problem, runs: dict, reach: np.ndarray
) -> dict:
  """Numbers over the runs in reach (loss scales x seeds x lr0)."""
  mask = np.broadcast_to(reach[:, None, :], runs["score"].shape)
  at = lambda key: runs[key][mask]
  first = runs["value"][..., :1]
  growth = np.max(runs["value"][..., 1:20] / first, axis=-1)[mask]
  # At the constant prediction (regression), or at chance (classifier).
  score = runs["score"]
  constant = np.abs(score) <= 0.05 if problem.score == "r2" else score <= 0.2
  return {
    "dead_step1_mean": float(at("dead")[:, 0].mean()),
    "dead_step1_max": float(at("dead")[:, 0].max()),
    "dead_step20_max": float(at("dead")[:, 1].max()),
    "growth_20_max": float(np.max(growth)),
    "test_loss_median": float(np.median(at("test_loss"))),
    "test_loss_max": float(np.max(at("test_loss"))),
    "score_mean": float(np.mean(at("score"))),
    "score_min": float(np.min(at("score"))),
    "at_constant": int(np.sum(constant[mask])),
    "runs": int(mask.sum()),
    "out_of_reach": int((~mask).sum()),
  }


def every_k_gap(
  problem: _loss_scales.Problem, k1: dict, k10: dict, reach
) -> float:
  """The worst cell's gap of ``every_k=10`` behind ``every_k=1``.

  Points of accuracy for the classifier; the relative excess of the test
  loss for the regression. Cells are [loss scale, lr0] in reach, means over
  seeds.
  """
  if problem.score == "r2":
    gap = k10["test_loss"].mean(1) / k1["test_loss"].mean(1) - 1
  else:
    gap = (k1["score"].mean(1) - k10["score"].mean(1)) * 100
  return float(np.max(gap[reach]))


def sgd_baseline(problem: _loss_scales.Problem, num_seeds: int) -> dict:
  """SGD on its rate grid: the best rate per loss scale and its first step."""

  def sgd(loss_scale):
    # The loss times a constant is the same problem: SGD's rate scales back.
    scale = problem.raw_scale / loss_scale
    return _train.Method(f"SGD x{scale:g}", lambda lr: optax.sgd(lr * scale))

  runs = _loss_scales.train(problem, sgd, SGD_RATES, num_seeds)
  mean_loss = np.nan_to_num(runs["test_loss"].mean(1), nan=np.inf)
  best = np.argmin(mean_loss, axis=1)  # [loss scale]
  at_best = {
    k: np.stack([v[i, :, b] for i, b in enumerate(best)])  # [scale, seed]
    for k, v in runs.items()
  }
  dead = at_best["dead"]  # [scale, seed, (step 1, step 20, last)]
  return {
    "best_rate": [SGD_RATES[b] for b in best],
    "test_loss_mean": at_best["test_loss"].mean(1).tolist(),
    "score_mean": at_best["score"].mean(1).tolist(),
    "dead_step1_mean": dead[..., 0].mean(1).tolist(),
    "dead_step1_max": dead[..., 0].max(1).tolist(),
    "dead_step20_max": dead[..., 1].max(1).tolist(),
    "dead_final_max": dead[..., 2].max(1).tolist(),
  }


ALIASES = {"hillclimb": ohc.hillclimb, "hillclimb_adam": ohc.hillclimb_adam}


def pick_runs(problem, name, alias, lr0s, num_seeds) -> dict:
  """The runs of one pick, by ``every_k``, its program traced with the pick."""
  pick, scales, bound = _picks.PICKS[name]
  runs = {}
  for every_k in (1, 10):
    # A method of its own per pick: the harness caches a program per method.
    method = _train.hillclimber(
      f"{alias}, every_k={every_k}, {name}",
      ALIASES[alias],
      **(_train.EVERY_STEP | dict(every_k=every_k, scale_search=scales)),
    )
    with _picks.picking(pick, bound):
      runs[every_k] = _loss_scales.train(
        problem, lambda _, m=method: m, lr0s, num_seeds
      )
  return runs


def measure(problem, picks, aliases, lr0s, num_seeds) -> dict:
  """Every pick x alias x every_k on ``problem``: summaries and gaps."""
  out = {
    "loss_scales": list(problem.loss_scales),
    "sgd": sgd_baseline(problem, num_seeds),
    "picks": {},
  }
  for name in picks:
    out["picks"][name] = {}
    for alias in aliases:
      runs = pick_runs(problem, name, alias, lr0s, num_seeds)
      reach = _loss_scales.in_reach(
        problem, alias, out["sgd"]["best_rate"], lr0s
      )
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
      print(f"{problem.name}: {name}, {alias}", flush=True)
  return out


def run(args) -> dict:
  """Every pick on both problems, and SGD's baseline."""
  lr0s, aliases = LR0S, list(ALIASES)
  picks = args.methods or list(_picks.PICKS)
  if args.quick:
    lr0s, aliases = QUICK_LR0S, ["hillclimb"]
    picks = args.methods or [_picks.BEFORE, _picks.AFTER]
  summary = {
    p.name: measure(p, picks, aliases, lr0s, args.seeds) for p in problems()
  }
  summary["_lr0"] = list(lr0s)
  summary["_sgd_rates"] = list(SGD_RATES)
  summary["_seeds"] = args.seeds
  return summary


def _columns(*specs: tuple[str, str]) -> list[_page.Column]:
  """Columns from ``(header, format string over a row's fields)`` pairs."""
  return [_page.Column(h, lambda row, f=f: f.format(**row)) for h, f in specs]


DEAD_STEP1 = "{dead_step1_mean:.1%} / {dead_step1_max:.1%}"
FINAL = {
  "regression": (
    "test MSE: median / worst",
    "{test_loss_median:.0f} / {test_loss_max:.0f}",
  ),
  "digits": (
    "test accuracy: mean / worst",
    "{score_mean:.1%} / {score_min:.1%}",
  ),
}


def picks_table(name: str, result: dict) -> str:
  """Each pick x optimizer x every_k: its runs in reach, summarized."""
  rows = [
    {"pick": pick, "optimizer": alias, "k": k, **r[f"every_k={k}"]}
    for pick, by_alias in result["picks"].items()
    for alias, r in by_alias.items()
    for k in (1, 10)
  ]
  columns = _columns(
    ("pick", "{pick}"),
    ("optimizer", "{optimizer}"),
    ("every_k", "{k}"),
    ("dead after step 1: mean / worst", DEAD_STEP1),
    ("dead after step 20: worst", "{dead_step20_max:.1%}"),
    ("batch loss, steps 2-20 / step 1: worst", "{growth_20_max:.3g}"),
    FINAL[name],
    ("runs at the constant prediction", "{at_constant} of {runs}"),
  )
  return _page.table(columns, rows)


def gap_table(name: str, result: dict) -> str:
  """Each pick's worst gap of every_k=10 behind every_k=1, per optimizer."""
  gap = "{:+.1%}" if name == "regression" else "{:+.1f} points"
  rows = [
    {"pick": pick, **{a: gap.format(r["gap"]) for a, r in by_alias.items()}}
    for pick, by_alias in result["picks"].items()
  ]
  aliases = list(next(iter(result["picks"].values())))
  return _page.table(
    _columns(("pick", "{pick}"), *((a, f"{{{a}}}") for a in aliases)), rows
  )


SGD_RESULT = {
  "regression": "test MSE {test_loss_mean:.0f}",
  "digits": "accuracy {score_mean:.1%}",
}


def sgd_table(summary: dict) -> str:
  """SGD at its best rate: its result and the units its first steps kill."""
  rows = []
  for name in PROBLEMS:
    for i, scale in enumerate(summary[name]["loss_scales"]):
      row = {k: v[i] for k, v in summary[name]["sgd"].items()}
      result = SGD_RESULT[name].format(**row)
      scale = f"{scale:g}" if name == "regression" else "-"
      rows.append({**row, "problem": name, "scale": scale, "result": result})
  columns = _columns(
    ("problem", "{problem}"),
    ("loss scale", "{scale}"),
    ("SGD's best rate (for the raw loss)", "{best_rate:.3g}"),
    ("its result (mean)", "{result}"),
    ("dead after its step 1: mean / worst", DEAD_STEP1),
    ("after step 20: worst", "{dead_step20_max:.1%}"),
    ("at the end: worst", "{dead_final_max:.1%}"),
  )
  return _page.table(columns, rows)


SHORT = {_picks.BEFORE: "before", _picks.AFTER: "after"}


def by_lr0_table(result: dict, alias: str, lr0s) -> str:
  """One optimizer's every_k=10 runs per lr0, before and after side by side.

  Cells: the mean test loss (the share of units dead after step 1).
  """
  scales = result["loss_scales"]
  picks = [p for p in SHORT if p in result["picks"]]
  rows = [{"lr0": f"{lr0:.3g}"} for lr0 in lr0s]
  columns = [("lr0", "{lr0}")]
  for i, scale in enumerate(scales):
    for pick in picks:
      column = f"c{len(columns)}"  # A field name that str.format can read.
      r = result["picks"][pick][alias]
      for row, test, dead in zip(
        rows, r["test_loss_by_lr0"][i], r["dead_step1_by_lr0"][i], strict=True
      ):
        row[column] = f"{test:.3g} ({dead:.1%})"
      header = SHORT[pick]
      if len(scales) > 1:
        header += f", loss scale {scale:g}"
      columns.append((header, f"{{{column}}}"))
  return _page.table(_columns(*columns), rows)


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  lr0s = summary["_lr0"]
  text = [
    _page.header(
      "The first step at any scale of the loss: the numbers",
      "first_step",
      DESCRIPTION.format(
        lo=lr0s[0], hi=lr0s[-1], num_lr0=len(lr0s), seeds=summary["_seeds"]
      ).strip(),
    ),
    "## SGD's first step at its best rate\n\n" + sgd_table(summary),
  ]
  for name in PROBLEMS:
    result = summary[name]
    text.append(f"## {name}: the picks\n\n" + picks_table(name, result))
    text.append(
      f"## {name}: every_k=10 behind every_k=1 (worst lr0)\n\n"
      + gap_table(name, result)
    )
    text.append(
      f"## {name}: every_k=10 per lr0, test loss (dead after step 1)\n\n"
      + BY_LR0.format(before=_picks.BEFORE, after=_picks.AFTER)
    )
    for alias in next(iter(result["picks"].values())):
      text.append(f"### {alias}\n\n" + by_lr0_table(result, alias, lr0s))
  return "\n".join(text)


PROBLEMS = ("regression", "digits")
DESCRIPTION = """\
The first update's scale search scores 49 rates on the first batch, lr0
times 10^(k/4) for k = -24 .. 24, each rounded to a quarter decade (1, 1.78,
3.16 or 5.62 times a power of ten), and picks one. Each pick below
replaces the library's for a whole grid: lr0 from {lo:g} to {hi:g}
({num_lr0} values), {seeds} seeds, with `every_k` 1 and 10. The training
loops pass `value=` (the batch loss before the step) and `value_fn`, as a
user would.

- regression: the synthetic regression of `benchmarks/_regression.py`
  (targets in the hundreds, a 12-32-1 ReLU MLP, batch 50, 10 epochs of 20
  steps), at loss scales 1e-3, 1 and 1e5 (the mean squared error times a
  constant so that the initial loss is about that; the raw one is about 3e4).
  For `hillclimb`, whose rates scale with the loss as SGD's do, cells where
  lr0 x 1e6 is below SGD's best rate for that scale are out of the search's
  reach and left out of the summaries.
- digits: the classifier of `benchmarks.safe_start` (sklearn's 8x8 digits,
  a 64-64-10 ReLU MLP, batch 64, 3 epochs of 22 steps).

Dead units: hidden units that output 0 on every training example. The
constant prediction: test R^2 within 0.05 of 0 (regression), accuracy at
most 20% (digits). SGD's best rate: the rate of a half-decade grid with the
lowest mean test loss.
"""
BY_LR0 = """\
- before: the pick without a bound (`{before}`);
- after: the library's pick (`{after}`).

Every lr0 is shown, in the search's reach or not.
"""


EXPERIMENT = _cli.Experiment(
  "first_step",
  __doc__,
  run,
  page,
  seeds=(3, 1),
  methods=tuple(_picks.PICKS),
  groups={"before-after": (_picks.BEFORE, _picks.AFTER)},
)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
