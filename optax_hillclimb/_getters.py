"""Reading the climbed values out of an optimizer state."""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from optax_hillclimb import _climb
from optax_hillclimb import _climb_config
from optax_hillclimb import _transform


def _unwrap(x: Any) -> jax.Array:
  # Wrappers such as Flax NNX's OptArray hold the array; unwrap it.
  return x if isinstance(x, jax.Array) else jnp.asarray(x)


def _states(state: optax.OptState) -> list[Any]:
  """The HillclimbState and ClimbState nodes of ``state``, outermost only."""
  kinds = (_transform.HillclimbState, _climb.ClimbState)
  return [
    node
    for node in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kinds))
    if isinstance(node, kinds)
  ]


def get_hyperparams(state: optax.OptState) -> dict[str, jax.Array]:
  """Returns the current values of the hyperparameters that :func:`climb` tunes.

  Args:
    state: an optimizer state that contains exactly one :class:`ClimbState`
      (the state of :func:`climb`, possibly inside a chain or wrapper).

  Returns:
    A dict from each climbed hyperparameter's name to its current value, a
    JAX array.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_hillclimb
    >>> opt = optax_hillclimb.climb(
    ...     optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.5)
    ... )
    >>> state = opt.init(jnp.zeros(3))
    >>> hp = optax_hillclimb.get_hyperparams(state)
    >>> print({name: f"{v:.2f}" for name, v in hp.items()})
    {'learning_rate': '0.10', 'momentum': '0.50'}
  """
  found = [s for s in _states(state) if isinstance(s, _climb.ClimbState)]
  if len(found) != 1:
    raise ValueError(
      "get_hyperparams expects exactly one ClimbState (the state of "
      f"optax_hillclimb.climb) in the optimizer state, found {len(found)}."
    )
  return {name: _unwrap(v) for name, v in found[0].hyperparams.items()}


def get_learning_rate(state: optax.OptState) -> jax.Array:
  """Returns the learning rate applied at the last update.

  For :func:`scale_by_hillclimb` and the aliases it is the climbed rate times
  the factor that a run of known length (``total_steps``) applies to its last
  fifth: the climbed rate until then, falling to zero at ``total_steps``, and
  zero past it (a run longer than its ``total_steps`` takes no more steps;
  tell it its new length). ``HillclimbState.learning_rate`` holds the climbed
  rate itself. For :func:`climb`, it is the climbed learning rate, or the
  inner optimizer's when it is not climbed.

  Works for any chain or wrapper that contains exactly one
  :class:`HillclimbState` or :class:`ClimbState`, including
  :func:`optax.inject_hyperparams`: there ``optax.tree.get(state,
  "learning_rate")`` raises ``KeyError`` (found multiple values), because
  the injected ``learning_rate`` (the starting rate only: setting it during
  the run changes nothing) sits beside the climbed one.

  Args:
    state: an optimizer state.

  Returns:
    The learning rate, as a JAX array (also for ``nnx.Optimizer.opt_state``,
    whose leaves Flax wraps).

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> opt = optax_hillclimb.hillclimb(learning_rate=0.05)
    >>> state = opt.init(jnp.zeros(3))
    >>> print(optax_hillclimb.get_learning_rate(state))
    0.05
  """
  found = _states(state)
  if len(found) != 1:
    raise ValueError(
      "get_learning_rate expects exactly one HillclimbState (or ClimbState) "
      f"in the optimizer state, found {len(found)}."
    )
  (node,) = found
  if isinstance(node, _transform.HillclimbState):
    return _unwrap(node.learning_rate) * _unwrap(node.settling)
  if _climb_config.LEARNING_RATE in node.hyperparams:
    return _unwrap(node.hyperparams[_climb_config.LEARNING_RATE])
  hyperparams = getattr(node.inner_state, "hyperparams", {})
  if _climb_config.LEARNING_RATE not in hyperparams:
    raise ValueError(
      "get_learning_rate: this climb state's inner optimizer has no "
      "'learning_rate' hyperparameter."
    )
  return _unwrap(hyperparams[_climb_config.LEARNING_RATE])
