r"""How sure is one decision: the climb's probes scored on many batches.

A climb told the run's length :math:`T` decides once a window of
:math:`T/8` steps, and each decision scores its two probes on one batch, the
one after the window. This trains the told climb on the language model of
``benchmarks.lm_scale`` (the long run: 4000 steps), and at each decision
(steps 1, 2, 4, ... while the windows double, then once a window) scores
the same two probes, :math:`w + (\pm s - \theta) \Delta` (:math:`\Delta`
the window's steps), on the decision's own batch, on 64 batches of the
training stream that the run never trains on, and on the validation
windows. If one batch were a noisy judge, the other batches would often
disagree with it.

The probes are recomputed here from the state before the decision and the
rule's formulas (relative step from the streak, centre
:math:`\theta_0 (1 - t/T)`); each run checks that they give the losses the
climb itself recorded on the decision's batch.

  python -m benchmarks.decisions                        # docs/results/
  python -m benchmarks.decisions --quick --out scratch  # small, the plumbing
"""

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np

import optax_hillclimb as ohc
from optax_hillclimb import _alias
from optax_hillclimb import _getters
from optax_hillclimb import _transform

from . import _cli
from . import _lm_train
from . import _page
from . import _text
from . import _transformer
from . import lm
from . import lm_scale

OTHER_BATCHES = (64, 8)  # full run, --quick
EVERY_K = (128, 8)  # the aliases' default; --quick: windows short enough
LR0 = 1e-5  # every lr0 trains the same run (the scale search picks it)


@dataclasses.dataclass(frozen=True)
class Climb:
  """A told climb: its alias and the centre its probes start from."""

  name: str
  alias: object
  center: float


CLIMBS = (
  Climb("hillclimb_muon, total_steps", ohc.hillclimb_muon, _alias.MUON_CENTER),
  Climb(
    "hillclimb_adam, total_steps", ohc.hillclimb_adam, _transform.EARLY_CENTER
  ),
)


def _probe_losses(config, train_bytes, seed, windows):
  """``losses(params, D, factors, batch_ts)``: [2, batches], [2] on validation.

  A probe is ``params - c * D``, as the climb scores it (``D`` holds the
  window's steps with the opposite sign to the update).
  """
  width = config.length + 1

  def at(params, displacement, c):
    return jax.tree.map(lambda p, d: p - c * d, params, displacement)

  @jax.jit
  def losses(params, displacement, factors, batch_ts):
    def on_batches(c):
      probe = at(params, displacement, c)
      return jax.lax.map(
        lambda t: _transformer.loss(
          probe, _lm_train.sample(train_bytes, seed, t, 32, width), config
        ),
        batch_ts,
      )

    def on_validation(c):
      probe = at(params, displacement, c)
      return _lm_train.mean_loss(probe, windows, 32, config)

    return jax.lax.map(on_batches, factors), jax.lax.map(on_validation, factors)

  return losses


def decision_steps(window: int, steps: int) -> list[int]:
  """The steps that decide (but the first, the scale search), spikes aside.

  Steps 1, 2, 4, ... below the first full window, then one a window.
  """
  early = [2**k for k in range(window.bit_length()) if 2**k < window]
  return early + list(range(window, steps, window))


def run_one(climb, seed, settings, corpus, windows, every_k, num_batches):
  """One training run; the record of each decision."""
  steps, config = settings.steps, settings.config
  method = lm.climbing(
    climb.name,
    lambda lr0, t: climb.alias(lr0, total_steps=t, every_k=every_k),
    (LR0,),
  )
  init, stretch, evaluate = _lm_train._programs(method, steps, 32, config)
  train_bytes = jnp.asarray(corpus.train)
  # Batches past the run's end: the same stream, never trained on.
  batch_ts = jnp.arange(steps + 1, steps + 1 + num_batches)
  own_and_others = jnp.concatenate([jnp.zeros([1], int), batch_ts])
  losses = _probe_losses(config, train_bytes, seed, jnp.asarray(windows))
  lrlr = inspect.signature(climb.alias).parameters["lrlr"].default
  growth = inspect.signature(ohc.scale_by_hillclimb).parameters["lrlr_growth"]
  window = max(every_k, steps // _transform.WINDOWS_PER_RUN)
  decisions, done = [], 0
  carry = init(seed, LR0)
  for t in decision_steps(window, steps):
    carry, _ = stretch(carry, LR0, seed, train_bytes, jnp.arange(done, t))
    params, state = carry
    before = _getters._states(state)[0]
    s = float(
      _transform.relative_step(
        before.streak, lrlr, growth.default, before.learning_rate.dtype
      )
    )
    center = climb.center * (1 - t / steps)
    on_batches, on_validation = jax.device_get(
      losses(
        params,
        before.displacement,
        jnp.array([s - center, -s - center]),
        own_and_others.at[0].set(t),
      )
    )
    carry, _ = stretch(carry, LR0, seed, train_bytes, jnp.arange(t, t + 1))
    done = t + 1
    after = _getters._states(carry[1])[0]
    recorded = np.array([after.loss_up, after.loss_down])
    if not np.allclose(on_batches[:, 0], recorded, rtol=1e-4):
      raise RuntimeError(
        f"step {t}: the recomputed probes scored {on_batches[:, 0]} on the"
        f" decision's batch, the climb recorded {recorded}; the rule's"
        " formulas here no longer match the library's."
      )
    difference = _transformer.bits_per_byte(on_batches[0] - on_batches[1])
    own, others = float(difference[0]), np.asarray(difference[1:])
    decisions.append(
      {
        "step": t,
        "learning_rate": float(before.learning_rate),
        "learning_rate_after": float(after.learning_rate),
        "relative_step": s,
        "center": center,
        "own": own,
        "others_mean": float(others.mean()),
        "others_std": float(others.std()),
        "others_agreeing": float(np.mean(np.sign(others) == np.sign(own))),
        "validation": float(
          _transformer.bits_per_byte(on_validation[0] - on_validation[1])
        ),
      }
    )
    print(f"{climb.name} seed={seed} step {t}: {decisions[-1]}", flush=True)
  carry, _ = stretch(carry, LR0, seed, train_bytes, jnp.arange(done, steps))
  return {
    "method": climb.name,
    "seed": seed,
    "final": float(evaluate(carry, jnp.asarray(windows))),
    "decisions": decisions,
  }


def run(args) -> dict:
  settings = lm.QUICK if args.quick else lm_scale.SCALES["long"]
  corpus = _text.load()
  windows = _text.validation_windows(
    corpus, settings.config.length, settings.validation_windows
  )
  every_k, num_batches = EVERY_K[args.quick], OTHER_BATCHES[args.quick]
  runs = [
    run_one(climb, seed, settings, corpus, windows, every_k, num_batches)
    for climb in CLIMBS
    for seed in range(args.seeds)
  ]
  return {
    "steps": settings.steps,
    "every_k": every_k,
    "other_batches": num_batches,
    "data": corpus.label,
    "runs": runs,
  }


def _signed(x: float) -> str:
  return f"{x:+.4f}"


def decision_table(run: dict) -> str:
  """One run's decisions: the rate, the probes, and what each judge says."""
  return _page.table(
    [
      _page.Column("step", lambda d: str(d["step"])),
      _page.Column(
        "rate before → after",
        lambda d: f"{d['learning_rate']:.3g} → {d['learning_rate_after']:.3g}",
      ),
      _page.Column("s", lambda d: f"{d['relative_step']:.3f}"),
      _page.Column("θ", lambda d: f"{d['center']:.3f}"),
      _page.Column("own batch", lambda d: _signed(d["own"])),
      _page.Column(
        "other batches, mean ± sd",
        lambda d: f"{_signed(d['others_mean'])} ± {d['others_std']:.4f}",
      ),
      _page.Column(
        "other batches agreeing", lambda d: _page.percent(d["others_agreeing"])
      ),
      _page.Column("validation", lambda d: _signed(d["validation"])),
    ],
    run["decisions"],
  )


def page(summary: dict, out: str) -> str:
  del out  # No figures.
  decisions = [d for r in summary["runs"] for d in r["decisions"]]
  outvoted = sum(d["others_agreeing"] < 0.5 for d in decisions)
  close = sum(0.5 <= d["others_agreeing"] < 0.9 for d in decisions)
  against_validation = sum(
    np.sign(d["own"]) != np.sign(d["validation"]) for d in decisions
  )
  sections = "".join(
    f"## {r['method']}, seed {r['seed']} (final {r['final']:.3f} bits/byte)"
    f"\n\n{decision_table(r)}\n"
    for r in summary["runs"]
  )
  return (
    _page.header(
      "How sure is one decision: the numbers",
      "decisions",
      f"Data: {summary['data']}. The language model of the longer run"
      f" ({summary['steps']} steps, told the run's length, `every_k`"
      f" {summary['every_k']}), from lr0 {LR0:g}. At each decision (steps"
      " 1, 2, 4, ... while the windows double, then once a window): the"
      " loss at the longer probe minus the loss at the shorter one, in"
      " bits/byte (positive: the shorter steps score better, and the rate"
      " falls), on the decision's own batch, on"
      f" {summary['other_batches']} batches the run never trains on, and on"
      " the validation windows. `s` is the relative step, `θ` the centre.",
    )
    + f"Of the {len(decisions)} decisions below, {outvoted} went the way"
    " that most of the other batches did not, and in"
    f" {close} more fewer than 90% of them agreed with the decision's own"
    f" batch; the validation windows disagreed with it {against_validation}"
    " times.\n\n" + sections
  )


EXPERIMENT = _cli.Experiment("decisions", __doc__, run, page, seeds=(2, 1))

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
