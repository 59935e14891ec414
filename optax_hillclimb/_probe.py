"""Evaluating the loss at candidate steps, in one batch or one at a time."""

from collections.abc import Callable
from typing import Any, Literal

import jax
from jax import lax
import jax.numpy as jnp
import optax

from optax_hillclimb import _validation

ProbeMode = Literal["auto", "vmap", "sequential"]
PROBE_MODES = ("auto", "vmap", "sequential")


def resolve_probe_mode(mode: ProbeMode) -> Literal["vmap", "sequential"]:
  """Resolves ``"auto"`` for the backend the computation is compiled for.

  On CPU, vmapping a network over two *weight* sets turns convolutions into
  grouped convolutions, which XLA:CPU runs several times slower than two
  evaluations in a row (see ``benchmarks/step_cost.py``). Accelerators run the
  vmapped form as one batched launch.

  Args:
    mode: ``"auto"``, ``"vmap"`` or ``"sequential"``.

  Returns:
    ``"vmap"`` or ``"sequential"``.
  """
  _validation.check_choice("probe", mode, PROBE_MODES)
  if mode == "auto":
    return "sequential" if jax.default_backend() == "cpu" else "vmap"
  return mode


def probe_losses(
  loss: Callable[[Any], jax.Array],
  params: Any,
  direction: Any,
  step_sizes: jax.Array,
  mode: Literal["vmap", "sequential"],
  *,
  batch_size: int | None = None,
) -> jax.Array:
  """Returns ``[loss(params - c * direction) for c in step_sizes]``.

  The candidates of :func:`candidate_losses` along one direction.

  Args:
    loss: scalar function of the parameters.
    params: the current parameters.
    direction: the update direction, a tree like ``params``.
    step_sizes: a vector of step sizes.
    mode: see :func:`candidate_losses`.
    batch_size: see :func:`candidate_losses`.

  Returns:
    A vector with one loss per step size.
  """

  def step_at(step_size: jax.Array) -> Any:
    return jax.tree.map(
      lambda p, u: -(step_size * u).astype(p.dtype), params, direction
    )

  return candidate_losses(
    loss, params, step_at, step_sizes, mode, batch_size=batch_size
  )


def candidate_losses(
  loss: Callable[[Any], jax.Array],
  params: Any,
  step_at: Callable[[jax.Array], Any],
  candidates: jax.Array,
  mode: Literal["vmap", "sequential"],
  *,
  batch_size: int | None = None,
) -> jax.Array:
  """Returns ``[loss(params + step_at(c)) for c in candidates]``.

  A candidate whose parameters are not all finite scores ``inf``, whatever
  ``loss`` says of them: a loss that ignores some parameters must not let
  them overflow.

  Args:
    loss: scalar function of the parameters.
    params: the current parameters.
    step_at: the update (a tree like ``params``) at one candidate, a row of
      ``candidates``.
    candidates: ``[num_candidates, ...]``: step sizes, or settings of
      hyperparameters.
    mode: ``"vmap"`` evaluates all candidates in one batched program (``loss``
      is traced once); ``"sequential"`` evaluates them one after another with
      ``jax.lax.map``, so that at most one candidate parameter tree is alive at
      a time.
    batch_size: in ``"vmap"`` mode, evaluate at most this many candidates at
      once (``None``: all), to bound memory when there are many.

  Returns:
    A vector with one loss per candidate.
  """

  def loss_at(candidate: jax.Array) -> jax.Array:
    moved = optax.apply_updates(params, step_at(candidate))
    finite = jnp.all(
      jnp.asarray([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(moved)])
    )
    return jnp.where(finite, loss(moved), jnp.inf)

  if mode == "vmap":
    if batch_size is None or batch_size >= candidates.shape[0]:
      return jax.vmap(loss_at)(candidates)
    return jax.lax.map(loss_at, candidates, batch_size=batch_size)
  return jax.lax.map(loss_at, candidates)


def device_mean(
  x: jax.typing.ArrayLike, dtype: jnp.dtype, axis_name: str | None
) -> jax.Array:
  """``x`` in ``dtype``, averaged over the device axis ``axis_name``.

  Every replica must take the same decision from the same numbers: averaging
  the gradients is not enough, each replica scores its own data.
  """
  x = jnp.asarray(x).astype(dtype)
  return x if axis_name is None else lax.pmean(x, axis_name)


def as_scores(
  losses: jax.Array, dtype: jnp.dtype, axis_name: str | None
) -> jax.Array:
  """Losses averaged over devices, with ``inf`` for the non-finite ones."""
  losses = device_mean(losses, dtype, axis_name)
  return jnp.where(jnp.isfinite(losses), losses, jnp.inf)
