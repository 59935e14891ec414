"""Settings that tests share: the two-probe rule and the reference rule.

``scale_by_hillclimb`` and the aliases decide with ``decision="stretch"``.
Tests of the two-probe rule at every step (``scale_by_hillclimb``'s defaults
before the stretch) and of the blog post's reference rule name those
settings here.
"""

import optax

import optax_hillclimb as ohc

# Two probes at every step, 1% steps that grow by half along a streak.
EVERY_STEP = dict(decision="two_probes", every_k=1, lrlr=0.01)

# The blog post's rule exactly: two probes at every step, fixed 1% steps,
# ties lower the learning rate, no guard, no scale search.
REFERENCE_RULE = EVERY_STEP | dict(
  guard=False, lrlr_growth=1.0, tie_break="down", scale_search=None
)


def reference_rule(learning_rate, smoothing=0.9):
  """The blog post's optimizer: the moving average and the reference rule."""
  direction = (
    optax.ema(smoothing, debias=True) if smoothing else optax.identity()
  )
  return optax.chain(
    direction, ohc.scale_by_hillclimb(learning_rate, **REFERENCE_RULE)
  )
