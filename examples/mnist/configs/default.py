"""Default hyperparameters of the MNIST example.

hillclimb's settings default to the library's own (read from the signature of
``optax_hillclimb.hillclimb``, so they cannot drift from it): the example shows
what a user gets without tuning anything but, at most, ``--learning_rate``.
See the example's README for how those defaults compare with sgd and adam.
"""

import dataclasses
import inspect
import math

import optax_hillclimb

OPTIMIZERS = ("hillclimb", "sgd", "adam")

# The hillclimb arguments the example exposes as flags.
HILLCLIMB_ARGUMENTS = (
  "learning_rate",
  "lrlr",
  "lrlr_growth",
  "max_learning_rate",
  "every_k",
  "smoothing",
)
HILLCLIMB_DEFAULTS = {
  name: inspect.signature(optax_hillclimb.hillclimb).parameters[name].default
  for name in HILLCLIMB_ARGUMENTS
}

# Starting learning rates when --learning_rate is not given: hillclimb's lr0
# is only where its scale search and climb start; sgd (with momentum 0.9)
# uses Flax's MNIST example's rate, adam the usual 1e-3.
DEFAULT_LEARNING_RATES = {
  "hillclimb": HILLCLIMB_DEFAULTS["learning_rate"],
  "sgd": 0.1,
  "adam": 1e-3,
}


@dataclasses.dataclass(frozen=True)
class Config:
  """Hyperparameters of one training run.

  The hillclimb ones default to ``optax_hillclimb.hillclimb``'s defaults, and
  the library checks them when the optimizer is built.

  Attributes:
    epochs: passes over the training set.
    batch_size: examples per step.
    optimizer: ``"hillclimb"`` (``optax_hillclimb.hillclimb``), or ``"sgd"``
      (with momentum 0.9) and ``"adam"`` to compare.
    learning_rate: the starting learning rate (hillclimb's lr0); ``None``
      picks the optimizer's default from ``DEFAULT_LEARNING_RATES``.
    lrlr: hillclimb's relative learning-rate step.
    lrlr_growth: hillclimb's growth of that step over agreeing moves.
    max_learning_rate: hillclimb's upper bound on the learning rate (``None``
      or ``inf``: unbounded).
    every_k: hillclimb probes every ``every_k`` steps.
    smoothing: hillclimb's gradient moving-average decay.
    momentum: sgd's momentum.
    source: data source, see ``datasets.load``.
    data_dir: directory of IDX files or of TFDS data.
    dataset: ``"mnist"`` or ``"fashion_mnist"``.
    seed: seeds the initialization, the sample split and the batch order.
    eval_batch_size: examples per evaluation step (bounds memory).
  """

  epochs: int = 15
  batch_size: int = 128
  optimizer: str = "hillclimb"
  learning_rate: float | None = None
  lrlr: float = HILLCLIMB_DEFAULTS["lrlr"]
  lrlr_growth: float = HILLCLIMB_DEFAULTS["lrlr_growth"]
  max_learning_rate: float | None = HILLCLIMB_DEFAULTS["max_learning_rate"]
  every_k: int = HILLCLIMB_DEFAULTS["every_k"]
  smoothing: float = HILLCLIMB_DEFAULTS["smoothing"]
  momentum: float = 0.9
  source: str = "auto"
  data_dir: str | None = None
  dataset: str = "mnist"
  seed: int = 0
  eval_batch_size: int = 1000

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(
        f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}."
      )
    for name in ("epochs", "batch_size", "every_k", "eval_batch_size"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if self.learning_rate is not None and not self.learning_rate > 0:
      raise ValueError(
        f"learning_rate must be positive, got {self.learning_rate!r}."
      )

  def resolved_max_learning_rate(self) -> float | None:
    if self.max_learning_rate is None or math.isinf(self.max_learning_rate):
      return None
    return self.max_learning_rate

  def resolved_learning_rate(self) -> float:
    if self.learning_rate is not None:
      return self.learning_rate
    return DEFAULT_LEARNING_RATES[self.optimizer]


def get_config(**overrides) -> Config:
  """Returns the default configuration, with ``overrides`` applied."""
  return dataclasses.replace(Config(), **overrides)
