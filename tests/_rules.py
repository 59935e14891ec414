"""Settings that tests share: the rules the aliases defaulted to before.

The aliases decide with ``decision="stretch"`` (windows of steps, ``lrlr``
0.1 growing by half along a streak). Tests of the two-probe rule at every
step, and of the blog post's reference rule, name those settings here.
"""

# Two probes at every step, 1% steps that grow by half along a streak.
EVERY_STEP = dict(decision="two_probes", every_k=1, lrlr=0.01, lrlr_growth=1.5)

# The blog post's rule exactly: two probes at every step, fixed 1% steps,
# ties lower the learning rate, no guard, no scale search.
REFERENCE_RULE = EVERY_STEP | dict(
  guard=False, lrlr_growth=1.0, tie_break="down", scale_search=None
)
