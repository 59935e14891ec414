"""The loss ``value_fn``: bound to update's arguments, scored at candidates.

:func:`scorer` turns what an update received (``value_fn``, its extra
keyword arguments, the parameters and ``value``) into one function that
scores candidate steps, in one batched program or one after another, with
every loss averaged over devices.
"""

from collections.abc import Callable, Mapping
import functools
import inspect
import numbers
import sys
from typing import Any, Literal, Protocol

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

ProbeMode = Literal["auto", "vmap", "sequential"]


class Score(Protocol):
  """``score(candidates, along=None, step_at=None, batch_size=None)``.

  The loss (averaged over devices, ``inf`` where non-finite) after the step
  ``-c * along`` for each candidate step size ``c``, or after the step
  ``step_at(c)`` for each row ``c`` of ``candidates``; ``batch_size``: with
  vmap, at most that many at once.
  """

  def __call__(
    self,
    candidates: jax.Array,
    along: optax.Updates | None = None,
    step_at: Callable[[jax.Array], optax.Updates] | None = None,
    batch_size: int | None = None,
  ) -> jax.Array: ...


def scorer(
  caller: str,
  value_fn: Callable[..., jax.typing.ArrayLike] | None,
  extra_args: Mapping[str, Any],
  params: optax.Params | None,
  value: jax.typing.ArrayLike | None,
  *,
  probe: ProbeMode,
  axis_name: str | None,
  dtype: jnp.dtype,
) -> tuple[Score, jax.Array | None]:
  """Checks what an update received and binds the loss to it.

  Args:
    caller: the transformation's name, for the error messages.
    value_fn: the loss function, ``value_fn(params, **kwargs) -> scalar``.
    extra_args: the update's extra keyword arguments; those whose names are
      parameters of ``value_fn`` are passed on to it.
    params: the current parameters.
    value: the loss at ``params``, or ``None``.
    probe: ``"vmap"``, ``"sequential"`` or ``"auto"``, see
      :func:`resolve_probe_mode`.
    axis_name: the device axis to average losses and ``value`` over.
    dtype: the dtype of the scores.

  Returns:
    The :class:`Score` function, and ``value`` averaged over devices in
    ``dtype`` (``None`` if not given).
  """
  if value_fn is None:
    raise TypeError(
      f"{caller}'s update needs the loss function: call update(updates, "
      "state, params, value_fn=loss_fn, ...), with extra keyword arguments "
      "(a batch, say) that loss_fn takes."
    )
  if params is None:
    raise ValueError(
      f"{caller}'s update needs params, the current parameters, to evaluate "
      "value_fn around them."
    )
  loss = bind_value_fn(value_fn, extra_args)
  probe = resolve_probe_mode(probe)

  def mean(x: jax.typing.ArrayLike) -> jax.Array:
    # Every replica must take the same decision from the same numbers:
    # averaging the gradients is not enough, each replica scores its data.
    x = jnp.asarray(x).astype(dtype)
    return x if axis_name is None else lax.pmean(x, axis_name)

  def score(candidates, along=None, step_at=None, batch_size=None):
    if step_at is None:
      step_at = lambda c: jax.tree.map(
        lambda p, u: -(c * u).astype(p.dtype), params, along
      )

    def loss_at(candidate: jax.Array) -> jax.Array:
      # A candidate whose parameters are not all finite scores inf, whatever
      # the loss says of them: a loss that ignores some parameters must not
      # let them overflow.
      moved = optax.apply_updates(params, step_at(candidate))
      finite = jax.tree.reduce(
        lambda ok, p: ok & jnp.all(jnp.isfinite(p)), moved, jnp.bool_(True)
      )
      return jnp.where(finite, loss(moved), jnp.inf)

    if probe == "vmap" and (
      batch_size is None or batch_size >= len(candidates)
    ):
      losses = jax.vmap(loss_at)(candidates)
    else:
      losses = lax.map(
        loss_at, candidates, batch_size=batch_size if probe == "vmap" else None
      )
    losses = mean(losses)
    return jnp.where(jnp.isfinite(losses), losses, jnp.inf)

  if value is not None:
    value = mean(_as_scalar(value, "value", "the loss at params (a scalar)"))
  return score, value


_KEYWORD_KINDS = (
  inspect.Parameter.POSITIONAL_OR_KEYWORD,
  inspect.Parameter.KEYWORD_ONLY,
)


def resolve_probe_mode(probe: ProbeMode) -> Literal["vmap", "sequential"]:
  """``"auto"`` resolved for the backend the computation is compiled for.

  On CPU, vmapping a network over two *weight* sets turns convolutions into
  grouped convolutions, which XLA:CPU runs several times slower than two
  evaluations in a row (``benchmarks/step_cost.py``); accelerators run the
  vmapped form as one batched launch.
  """
  if probe == "auto":
    return "sequential" if jax.default_backend() == "cpu" else "vmap"
  return probe


def keyword_names(fn: Callable[..., Any]) -> frozenset[str]:
  """Names of the parameters of ``fn`` that can be passed by keyword."""
  try:
    parameters = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    # Some callables (builtins, C extensions) have no signature: they can only
    # receive the parameters.
    return frozenset()
  names = set()
  for p in parameters:
    if p.kind in _KEYWORD_KINDS:
      names.add(p.name)
  return frozenset(names)


def missing_arguments(
  fn: Callable[..., Any], given: Mapping[str, Any]
) -> list[str]:
  """Required parameters of ``fn``, after the first, that ``given`` lacks."""
  try:
    parameters = list(inspect.signature(fn).parameters.values())
  except (TypeError, ValueError):
    return []
  if not parameters or parameters[0].kind not in (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
  ):
    return []
  missing = []
  for p in parameters[1:]:
    required = p.default is inspect.Parameter.empty
    if p.kind in _KEYWORD_KINDS and required and p.name not in given:
      missing.append(p.name)
  return missing


def bind_value_fn(
  value_fn: Callable[..., jax.typing.ArrayLike],
  extra_args: Mapping[str, Any],
) -> Callable[[Any], jax.Array]:
  """Returns ``params -> value_fn(params, **matching_extra_args)``.

  Extra arguments whose names are parameters of ``value_fn`` are passed on to
  it; the others belong to other transformations of a chain and are ignored.
  The returned function checks that ``value_fn`` returns a scalar.

  Args:
    value_fn: the loss function, ``value_fn(params, **kwargs) -> scalar``.
    extra_args: the keyword arguments given to ``update``.

  Returns:
    A function of the parameters alone, returning a scalar array.
  """
  if not callable(value_fn):
    raise TypeError(
      f"value_fn must be callable (the loss function), got {value_fn!r}."
    )
  if _is_nnx(value_fn, "Module"):
    raise TypeError(
      f"value_fn is the model ({type(value_fn).__name__}), not a loss "
      f"function. {_NNX_ADVICE}"
    )
  if missing := missing_arguments(value_fn, extra_args):
    raise TypeError(
      f"value_fn {_name(value_fn)} needs {', '.join(missing)}, which update "
      "did not receive. update passes its extra keyword arguments to value_fn "
      "by name (their order does not matter); it got "
      f"{', '.join(sorted(extra_args)) or 'none'}. Call update(..., "
      f"{', '.join(f'{m}=...' for m in missing)})."
    )
  names = keyword_names(value_fn)
  # The others belong to other transformations of a chain.
  kwargs = dict(extra_args)
  for name in extra_args:
    if name not in names:
      del kwargs[name]

  def loss(params: Any) -> jax.Array:
    try:
      value = value_fn(params, **kwargs)
    except (TypeError, AttributeError) as error:
      if _is_nnx(params, "State") and not _from_nnx_value_fn(value_fn):
        raise type(error)(
          f"value_fn {_name(value_fn)} failed ({error}) on parameters given "
          "as an nnx.State, which is what nnx.Optimizer.update passes. A loss "
          f"written for the model, loss_fn(model, ...), cannot take them. "
          f"{_NNX_ADVICE}"
        ) from error
      raise
    return _as_scalar(value, "value_fn", "a scalar loss")

  return loss


_NNX_ADVICE = (
  "With Flax NNX, pass value_fn=optax_hillclimb.nnx_value_fn(model, "
  "loss_fn, *batch): it rebuilds the model around the probe parameters and "
  "calls loss_fn on it."
)


def _name(fn: Any) -> str:
  return repr(getattr(fn, "__name__", fn))


def _is_nnx(obj: Any, class_name: str) -> bool:
  """Whether ``obj`` is a ``flax.nnx`` ``class_name``, without importing it."""
  nnx = sys.modules.get("flax.nnx")
  return nnx is not None and isinstance(obj, getattr(nnx, class_name))


def _from_nnx_value_fn(fn: Any) -> bool:
  return getattr(fn, "is_nnx_value_fn", False)


def _as_scalar(value: Any, name: str, what: str) -> jax.Array:
  """Checks that ``value`` (named ``name``) is one real number; shape ()."""
  returns = "return" if name == "value_fn" else "be"
  if isinstance(value, (tuple, list)):
    raise TypeError(
      f"{name} must {returns} {what}, got a {type(value).__name__} of "
      f"{len(value)} items. For a function that returns (loss, aux), as the "
      "loss_fn of jax.value_and_grad(..., has_aux=True) does, pass the loss "
      "alone (value=loss), and value_fn=optax_hillclimb.drop_aux(loss_fn)."
    )
  if isinstance(value, Mapping):
    raise TypeError(
      f"{name} must {returns} {what}, got a mapping with keys "
      f"{sorted(map(str, value))}. Pass the loss alone, or wrap a function "
      "that returns (loss, aux) in optax_hillclimb.drop_aux."
    )
  if not isinstance(value, (jax.Array, np.ndarray, np.generic, numbers.Real)):
    raise TypeError(
      f"{name} must {returns} {what} (a JAX or NumPy array, or a real "
      f"number), got {type(value).__name__}: {value!r:.80}."
    )
  value = jnp.asarray(value)
  if not (
    jnp.issubdtype(value.dtype, jnp.floating)
    or jnp.issubdtype(value.dtype, jnp.integer)
  ):
    raise TypeError(
      f"{name} must {returns} a real-valued loss, got an array of dtype "
      f"{value.dtype}."
    )
  if value.size != 1:
    raise ValueError(
      f"{name} must {returns} {what}, of shape (), got an array of shape "
      f"{value.shape}. Reduce it, for example with jnp.mean."
    )
  return value.reshape(())


def drop_aux(
  fn: Callable[..., tuple[jax.typing.ArrayLike, Any]],
) -> Callable[..., jax.Array]:
  """Turns a function returning ``(loss, aux)`` into one returning the loss.

  Flax's examples write the loss as ``loss_fn(params, ...) -> (loss, logits)``
  for ``jax.value_and_grad(loss_fn, has_aux=True)``; the probes need the loss
  alone. The wrapper keeps ``fn``'s signature, so that the extra keyword
  arguments of ``update`` still reach it by name.

  Args:
    fn: a function whose result is a pair ``(loss, aux)``.

  Returns:
    A function with the same parameters that returns the loss.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_hillclimb
    >>> def loss_fn(params, batch):
    ...   predictions = batch * params
    ...   return jnp.mean(predictions**2), predictions
    >>> value_fn = optax_hillclimb.drop_aux(loss_fn)
    >>> print(value_fn(jnp.array(2.0), batch=jnp.array([1.0, 3.0])))
    20.0
  """

  @functools.wraps(fn)
  def loss_only(*args: Any, **kwargs: Any) -> jax.Array:
    out = fn(*args, **kwargs)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
      raise TypeError(
        "drop_aux expects a function that returns a pair (loss, aux), got "
        f"{type(out).__name__} from {getattr(fn, '__name__', fn)!r}."
      )
    return out[0]

  return loss_only
