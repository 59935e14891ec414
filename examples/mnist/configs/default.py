"""Default hyperparameters of the MNIST example.

The example trains with ``optax_hillclimb.hillclimb_adam``; ``hillclimb`` (the
same climb on a smoothed gradient), ``hillclimb_muon`` (on Muon's direction),
and sgd and adam, are there to compare. The hill climbers' settings default
to the library's own (read from the signatures of the aliases, so they
cannot drift from them): the example shows what a user gets without tuning
anything but, at most, ``--learning_rate``. See the example's README for how
they compare with sgd and adam.
"""

import dataclasses
import inspect
import math

import optax_hillclimb

# The optimizers that climb their learning rate, and the baselines.
HILLCLIMBERS = ("hillclimb_adam", "hillclimb", "hillclimb_muon")
OPTIMIZERS = (*HILLCLIMBERS, "sgd", "adam")


def _library_default(optimizer: str, argument: str):
  alias = getattr(optax_hillclimb, optimizer)
  return inspect.signature(alias).parameters[argument].default


# The arguments of the climb that the example exposes as flags, the same in
# all hill climbers, and the moving-average decay that only hillclimb has
# (for hillclimb_adam, Adam's b1 plays that part).
CLIMB_ARGUMENTS = (
  "lrlr",
  "max_learning_rate",
  "every_k",
  "decision",
)
CLIMB_DEFAULTS = {
  name: _library_default("hillclimb_adam", name) for name in CLIMB_ARGUMENTS
}
SMOOTHING_DEFAULT = _library_default("hillclimb", "smoothing")

# Starting learning rates when --learning_rate is not given: a hill climber's
# lr0 is only where its scale search and climb start; sgd (with momentum 0.9)
# uses Flax's MNIST example's rate, adam the usual 1e-3.
DEFAULT_LEARNING_RATES = {
  **{name: _library_default(name, "learning_rate") for name in HILLCLIMBERS},
  "sgd": 0.1,
  "adam": 1e-3,
}


@dataclasses.dataclass(frozen=True)
class Config:
  """Hyperparameters of one training run.

  The hill climbers' ones default to the library's defaults, and the library
  checks them when the optimizer is built.

  Attributes:
    epochs: passes over the training set.
    batch_size: examples per step.
    optimizer: ``"hillclimb_adam"`` (``optax_hillclimb.hillclimb_adam``),
      ``"hillclimb"`` (``optax_hillclimb.hillclimb``), or ``"sgd"`` (with
      momentum 0.9) and ``"adam"`` to compare.
    learning_rate: the starting learning rate (a hill climber's lr0); ``None``
      picks the optimizer's default from ``DEFAULT_LEARNING_RATES``.
    lrlr: the hill climbers' relative learning-rate step.
    max_learning_rate: their upper bound on the learning rate (``None`` or
      ``inf``: unbounded).
    every_k: the hill climbers decide every ``every_k`` steps (with
      ``"stretch"``, also at steps 1, 2, 4, ... below it).
    decision: how the hill climbers decide: ``"stretch"`` (the steps since
      the last decision, on the batch passed to ``update``) or
      ``"two_probes"`` (two candidate rates on the step's own batch).
    horizon: with ``decision="stretch"``, whether the hill climbers are told
      the run's length (``total_steps``: epochs times steps per epoch), so
      that their early decisions favour progress and the late ones settling.
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
  optimizer: str = "hillclimb_adam"
  learning_rate: float | None = None
  lrlr: float = CLIMB_DEFAULTS["lrlr"]
  max_learning_rate: float | None = CLIMB_DEFAULTS["max_learning_rate"]
  every_k: int = CLIMB_DEFAULTS["every_k"]
  decision: str = CLIMB_DEFAULTS["decision"]
  horizon: bool = True
  smoothing: float = SMOOTHING_DEFAULT
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
