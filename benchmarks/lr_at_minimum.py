r"""Does the learning rate tend to zero at a minimum?

Runs the reference rule (smoothed gradient, 1% steps, every step, no guard)
on problems whose minimum is known, and records the learning rate, the loss
gap :math:`f(w) - f^*` and, where it is cheap, the exact line-search step
along the update direction :math:`u`,

.. math::  \eta^*_t = \arg\min_\eta f(w_t - \eta u_t),

which for a quadratic is :math:`\nabla f^\top u / u^\top H u`. On a parabola
:math:`\varphi(\eta) = f(w - \eta u)`, the probe at :math:`\eta(1+s)` beats the
one at :math:`\eta(1-s)` exactly when :math:`\eta < \eta^*`, so the rule
tracks :math:`\eta^*`, which does not depend on the size of the gradient.

Problems: a 50-dimensional quadratic with condition number 100 (minimum
value 0, then 1), and L2-regularised softmax regression on 2000
Fashion-MNIST images (full batch, then batches of 100), each in float32 and
float64::

  python -m benchmarks.lr_at_minimum
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hillclimb as ohc

from . import _cli
from . import _data
from . import _page
from . import _train
from ._page import plt

DIM = 50
LR0 = 0.1
L2 = 1e-3
DATA = {False: "fashion_mnist", True: "sample"}  # by --quick
IMAGES = {False: 2000, True: 300}


def quadratic(offset: float, dtype) -> tuple:
  """``f(w) = offset + 0.5 (w - w*)' H (w - w*)`` with eigenvalues 1..0.01."""
  eigenvalues = jnp.logspace(0, -2, DIM, dtype=dtype)
  # Drawn in float64 and cast, so both dtypes solve the same problem.
  target = jax.random.normal(jax.random.key(1), (DIM,), jnp.float64)
  target = target.astype(dtype)

  def loss(w):
    d = w - target
    return offset + 0.5 * jnp.sum(eigenvalues * d * d)

  def curvature(u):
    return jnp.sum(eigenvalues * u * u)

  return loss, curvature, jnp.zeros(DIM, dtype), jnp.asarray(offset, dtype)


def softmax_regression(images, labels, dtype):
  """Mean cross-entropy plus ``L2/2 |W|^2``: strongly convex."""
  x = jnp.asarray(images, dtype)
  y = jnp.asarray(labels)

  def loss(params, idx=None):
    xb, yb = (x, y) if idx is None else (x[idx], y[idx])
    logits = xb @ params["w"] + params["b"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
    return ce + 0.5 * L2 * jnp.sum(params["w"] ** 2)

  init = {
    "w": jnp.zeros((x.shape[1], 10), dtype),
    "b": jnp.zeros(10, dtype),
  }
  return loss, init


def minimum_value(loss, init, steps: int) -> jax.Array:
  """``f*`` by L-BFGS in float64 (the problem is strongly convex)."""
  params = jax.tree.map(lambda p: p.astype(jnp.float64), init)
  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(loss)

  def step(carry, _):
    params, state = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = solver.update(
      grad, state, params, value=value, grad=grad, value_fn=loss
    )
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.lax.scan(
    step, (params, solver.init(params)), None, length=steps
  )
  return loss(params)


def run_rule(loss, init, steps, lr0, batches=None, curvature=None):
  """Runs the reference rule; returns per-step lr, loss and line-search step.

  Args:
    loss: ``loss(params)`` or, with ``batches``, ``loss(params, idx)``.
    init: initial parameters.
    steps: number of steps.
    lr0: starting learning rate.
    batches: optional int array [steps, batch] of example indices.
    curvature: optional ``u -> u' H u`` (quadratics), for the exact step.

  Returns:
    ``(lr, full loss, exact step or NaN, probes tied)``, each [steps].
  """
  # The post's rule exactly, whose open question this answers.
  opt = _train.reference_rule(lr0)
  full_loss = loss

  def step(carry, idx):
    params, state = carry
    batch_loss = full_loss if idx is None else (lambda p: loss(p, idx))
    value, grads = jax.value_and_grad(batch_loss)(params)
    updates, state = opt.update(grads, state, params, value_fn=batch_loss)
    lr = ohc.get_learning_rate(state)
    exact = jnp.nan
    if curvature is not None:
      # guard=False: updates = -lr * u exactly.
      u = -updates / lr.astype(updates.dtype)
      exact = jnp.vdot(grads, u) / curvature(u)
    params = optax.apply_updates(params, updates)
    # hillclimb is chain(ema, scale_by_hillclimb): the rule's state is [1].
    tie = state[1].loss_up == state[1].loss_down
    full = value if idx is None else loss(params)
    return (params, state), (lr, full, exact, tie)

  (_, _), out = jax.lax.scan(
    step, (init, opt.init(init)), batches, length=steps
  )
  return jax.device_get(out)


def collapse_step(lr: np.ndarray) -> int | None:
  """First step after the peak where lr is below a tenth of the peak."""
  peak = int(np.argmax(lr))
  below = np.nonzero(lr[peak:] < lr[peak] / 10)[0]
  return None if below.size == 0 else peak + int(below[0])


def problems(quick: bool):
  """``(name, loss, init, f*, batches, curvature)`` of every run."""
  steps = 150 if quick else 4000
  for offset in (0.0, 1.0):
    for dtype in (jnp.float32, jnp.float64):
      loss, curvature, w0, fmin = quadratic(offset, dtype)
      name = f"quadratic, f*={offset:g}, {jnp.dtype(dtype).name}"
      yield name, loss, w0, float(fmin), None, curvature
  num_images = IMAGES[quick]
  data = _data.load_images(DATA[quick], num_images)
  images = data.x_train.reshape(num_images, -1)
  batches = np.random.default_rng(0).integers(0, num_images, (steps, 100))
  for dtype in (jnp.float32, jnp.float64):
    loss, init = softmax_regression(images, data.y_train, dtype)
    loss64, init64 = softmax_regression(images, data.y_train, jnp.float64)
    fmin = float(minimum_value(loss64, init64, 100 if quick else 1000))
    name = f"softmax regression, %s, {jnp.dtype(dtype).name}"
    yield name % "full batch", loss, init, fmin, None, None
    yield name % "batch 100", loss, init, fmin, batches, None


def run(args) -> dict:
  # float64 runs need x64; float32 runs pass float32 parameters explicitly.
  jax.config.update("jax_enable_x64", True)
  steps = 150 if args.quick else 4000
  runs = {}
  for name, loss, init, fmin, batches, curvature in problems(args.quick):
    lr, value, exact, tie = run_rule(
      loss, init, steps, LR0, batches=batches, curvature=curvature
    )
    runs[name] = (lr, value - fmin, exact if curvature else None, tie)
  figure(os.path.join(args.out, "lr_at_minimum.png"), runs)
  summary = {name: describe(*run) for name, run in runs.items()}
  summary["_lr0"] = LR0
  summary["_steps"] = steps
  summary["_data"] = f"{DATA[args.quick]}, first {IMAGES[args.quick]} images"
  return summary


def describe(lr, gap, exact, tie) -> dict:
  """One run's row: peak and final lr, gap, where lr collapsed, ties."""
  del exact
  fall = collapse_step(lr)
  return {
    "peak_lr": float(lr.max()),
    "final_lr": float(lr[-1]),
    "final_gap": float(gap[-1]),
    "collapse_step": fall,
    "gap_at_collapse": None if fall is None else float(gap[fall]),
    "tied_before": float(tie[: fall or len(tie)].mean()),
    "tied_after": None if fall is None else float(tie[fall:].mean()),
  }


def figure(path, runs) -> None:
  fig, (ax_lr, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2))
  for i, (name, (lr, gap, exact, _)) in enumerate(runs.items()):
    color = f"C{i}"
    ax_lr.plot(lr, color=color, lw=1, label=name)
    if exact is not None and name.endswith("float64"):
      ax_lr.plot(exact, color=color, lw=0.6, ls=":", alpha=0.8)
    ax_gap.plot(np.maximum(gap, 1e-17), color=color, lw=1)
  ax_lr.set(yscale="log", xlabel="step", ylabel="learning rate")
  ax_lr.set_title(
    "learning rate (dotted: exact line-search step, quadratic, float64)",
    fontsize=8,
  )
  ax_gap.set(yscale="log", xlabel="step", ylabel="f(w) - f*")
  ax_gap.set_title("distance to the minimum value", fontsize=8)
  ax_lr.legend(fontsize=6)
  _page.save(fig, path, dpi=110)


def _or_dash(fmt):
  return lambda value: "-" if value is None else fmt(value)


COLUMNS = [
  ("peak lr", "peak_lr", lambda v: f"{v:.3g}"),
  ("final lr", "final_lr", lambda v: f"{v:.3g}"),
  ("final gap", "final_gap", lambda v: f"{max(v, 0.0):.2g}"),
  ("lr < peak/10 from step", "collapse_step", _or_dash(str)),
  ("gap then", "gap_at_collapse", _or_dash(lambda v: f"{max(v, 0.0):.2g}")),
  ("probes tied before", "tied_before", lambda v: f"{v:.0%}"),
  ("tied after", "tied_after", _or_dash(lambda v: f"{v:.0%}")),
]


def page(summary: dict, out: str) -> str:
  del out  # The figure is drawn by the run: it needs every step.
  names = [k for k in summary if not k.startswith("_")]
  table = _page.table(
    [
      _page.Column("problem", lambda n: n),
      *(
        _page.Column(h, lambda n, k=k, f=f: f(summary[n][k]))
        for h, k, f in COLUMNS
      ),
    ],
    names,
  )
  return (
    _page.header(
      "Learning rate near a minimum: the numbers",
      "lr_at_minimum",
      "Reference rule (smoothed gradient, 1% steps, every step, no guard),"
      f" lr0 = {summary['_lr0']:g}, {summary['_steps']} steps. Softmax"
      f" regression on {summary['_data']}, L2 = {L2:g};"
      " f* from 1000 L-BFGS steps in float64. The gap for batches is the"
      " full-data loss gap. A tie is a probe step where both candidate"
      " losses are equal (the rule then lowers the learning rate).",
    )
    + table
    + "\n![learning rate near a minimum](lr_at_minimum.png)\n"
  )


EXPERIMENT = _cli.Experiment("lr_at_minimum", __doc__, run, page)

if __name__ == "__main__":
  _cli.main(EXPERIMENT)
