"""Input pipeline: MNIST from ``datasets.py``, in memory.

The images are small enough to keep whole in memory as float32 in [0, 1]
(what Flax's MNIST example feeds its CNN); batches are drawn by index.
"""

from collections.abc import Iterator
from typing import NamedTuple

import datasets
import numpy as np


class Split(NamedTuple):
  """One split: ``image`` float32 ``[N, 28, 28, 1]`` in [0, 1], ``label``
  int32 ``[N]``."""

  image: np.ndarray
  label: np.ndarray


def get_datasets(
  source: str = "auto",
  data_dir: str | None = None,
  name: str = "mnist",
  seed: int = 0,
) -> tuple[Split, Split, datasets.Dataset]:
  """Loads the train and test splits, scaled to [0, 1].

  Args:
    source: ``"auto"``, ``"sample"``, ``"idx"`` or ``"tfds"``, see
      :func:`datasets.load`.
    data_dir: directory of IDX files or TFDS data.
    name: ``"mnist"`` or ``"fashion_mnist"``.
    seed: seed of the sample's train/test split.

  Returns:
    ``(train, test, data)``: the float splits and the raw
    :class:`datasets.Dataset` (which says what was loaded).
  """
  data = datasets.load(source, data_dir=data_dir, name=name, seed=seed)
  train = Split(datasets.to_float(data.train_images), data.train_labels)
  test = Split(datasets.to_float(data.test_images), data.test_labels)
  return train, test, data


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch; the remainder is dropped, as in Flax's example."""
  if num_examples < batch_size:
    raise ValueError(
      f"batch_size={batch_size} is larger than the {num_examples} training "
      "examples."
    )
  return num_examples // batch_size


def train_batches(
  split: Split, batch_size: int, seed: int, epoch: int
) -> Iterator[Split]:
  """Shuffled full batches of one epoch.

  The order depends only on ``(seed, epoch)``, so a run resumed from a
  checkpoint sees the same batches as one that never stopped.

  Args:
    split: the training split.
    batch_size: examples per batch.
    seed: the run's seed.
    epoch: the epoch number (1-based).

  Yields:
    :class:`Split` batches of ``batch_size`` examples.
  """
  n = steps_per_epoch(len(split.label), batch_size)
  order = np.random.default_rng([seed, epoch]).permutation(len(split.label))
  for idx in order[: n * batch_size].reshape(n, batch_size):
    yield Split(split.image[idx], split.label[idx])


def eval_batches(split: Split, batch_size: int) -> Iterator[Split]:
  """The whole split in order, in batches of at most ``batch_size``."""
  for start in range(0, len(split.label), batch_size):
    yield Split(
      split.image[start : start + batch_size],
      split.label[start : start + batch_size],
    )
