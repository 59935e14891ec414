"""Tests of examples/mnist/datasets.py: IDX files, the sample, TFDS, auto."""

import gzip
import importlib.util
import os
import socket

import numpy as np
import pytest

from benchmarks import _example

datasets = _example.module("datasets")
_HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
  """Fails any test that tries to open a connection (a download)."""

  def refuse(*args, **kwargs):
    raise AssertionError(f"a test tried to connect to {args[1:]!r}")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(autouse=True)
def empty_tfds_dir(tmp_path, monkeypatch):
  """Points TFDS's default data dir at an empty folder."""
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no_tfds_here"))


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
  """Encodes ``array`` as an IDX file (big-endian, as the format says)."""
  dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
  header = bytes([0, 0, code, array.ndim])
  header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  return header + np.asarray(array).astype(dtype).tobytes()


def write_idx_dir(directory, n_train=6, n_test=4, gz=True, seed=0):
  """Writes the four MNIST IDX files with random content; returns it."""
  rng = np.random.default_rng(seed)
  arrays = {
    "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
    "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
    "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
    "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
  }
  os.makedirs(directory, exist_ok=True)
  for stem, array in arrays.items():
    data = idx_bytes(array.astype(np.uint8))
    if gz:
      with gzip.open(os.path.join(directory, stem + ".gz"), "wb") as f:
        f.write(data)
    else:
      with open(os.path.join(directory, stem), "wb") as f:
        f.write(data)
  return arrays


# IDX reader.


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_uint8(tmp_path, gz):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  path = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
  opener = gzip.open if gz else open
  with opener(path, "wb") as f:
    f.write(idx_bytes(images))
  out = datasets.read_idx(path)
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("code", [0x0C, 0x0D])
def test_read_idx_big_endian_types(tmp_path, code):
  values = np.array([[1, -2, 70000], [3, 4, -5]])
  path = tmp_path / "values-idx2"
  path.write_bytes(idx_bytes(values, code))
  out = datasets.read_idx(path)
  assert out.dtype.isnative
  np.testing.assert_array_equal(out, values)


def test_read_idx_truncated_data_names_the_file(tmp_path):
  path = tmp_path / "short-idx3-ubyte"
  path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-10])
  with pytest.raises(ValueError, match=r"short-idx3-ubyte is truncated"):
    datasets.read_idx(path)


def test_read_idx_extra_bytes_names_the_file(tmp_path):
  path = tmp_path / "long-idx1-ubyte"
  path.write_bytes(idx_bytes(np.zeros(5, np.uint8)) + b"\x00")
  with pytest.raises(ValueError, match=r"long-idx1-ubyte is longer"):
    datasets.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
  path = tmp_path / "header-idx3-ubyte"
  path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8))[:9])
  with pytest.raises(ValueError, match=r"header-idx3-ubyte is truncated"):
    datasets.read_idx(path)


def test_read_idx_bad_magic(tmp_path):
  path = tmp_path / "notidx"
  path.write_bytes(b"PK\x03\x04" + bytes(100))
  with pytest.raises(ValueError, match=r"notidx has a bad header"):
    datasets.read_idx(path)


def test_read_idx_corrupt_gzip_names_the_file(tmp_path):
  path = tmp_path / "broken-idx1-ubyte.gz"
  path.write_bytes(
    gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))[:30]
  )
  with pytest.raises(ValueError, match=r"broken-idx1-ubyte.gz"):
    datasets.read_idx(path)


def test_read_idx_not_gzip_despite_name(tmp_path):
  path = tmp_path / "plain-idx1-ubyte.gz"
  path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))
  with pytest.raises(ValueError, match=r"plain-idx1-ubyte.gz"):
    datasets.read_idx(path)


# The idx source.


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_directory(tmp_path, gz):
  arrays = write_idx_dir(tmp_path, gz=gz)
  data = datasets.load("idx", tmp_path, name="fashion_mnist")
  assert data.source == "idx"
  assert data.name == "fashion_mnist"
  assert data.train_images.shape == (6, 28, 28, 1)
  assert data.test_images.shape == (4, 28, 28, 1)
  assert data.train_images.dtype == np.uint8
  assert data.train_labels.dtype == np.int32
  np.testing.assert_array_equal(
    data.train_images[..., 0], arrays["train-images-idx3-ubyte"]
  )
  np.testing.assert_array_equal(
    data.test_labels, arrays["t10k-labels-idx1-ubyte"]
  )
  assert str(tmp_path) in data.description
  assert "6 train / 4 test" in data.description


def test_load_idx_mismatched_labels_names_the_file(tmp_path):
  write_idx_dir(tmp_path, gz=False)
  path = tmp_path / "t10k-labels-idx1-ubyte"
  path.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
  with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte holds shape"):
    datasets.load("idx", tmp_path)


def test_load_idx_missing_file(tmp_path):
  write_idx_dir(tmp_path, gz=False)
  os.remove(tmp_path / "train-labels-idx1-ubyte")
  with pytest.raises(FileNotFoundError, match="lacks some of the four files"):
    datasets.load("idx", tmp_path)


def test_load_idx_needs_data_dir():
  with pytest.raises(ValueError, match="needs data_dir"):
    datasets.load("idx")


@pytest.mark.skipif(
  not os.path.isdir("/usr/share/datasets/fashion-mnist"),
  reason="Debian's dataset-fashion-mnist is not installed",
)
def test_load_debian_fashion_mnist():
  data = datasets.load(
    "idx", "/usr/share/datasets/fashion-mnist", name="fashion_mnist"
  )
  assert data.train_images.shape == (60000, 28, 28, 1)
  assert data.test_images.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(data.test_labels), [1000] * 10)


# The sample source.


def test_sample_is_real_mnist_split_4000_1000():
  data = datasets.load("sample")
  assert data.source == "sample"
  assert data.name == "mnist"
  assert data.train_images.shape == (4000, 28, 28, 1)
  assert data.test_images.shape == (1000, 28, 28, 1)
  assert data.train_images.dtype == np.uint8
  assert data.test_labels.dtype == np.int32
  # 500 digits per class, shuffled before the split: every class on both
  # sides, roughly 100 of each in the test set.
  counts = np.bincount(data.test_labels, minlength=10)
  assert counts.sum() == 1000
  assert counts.min() > 60
  assert counts.max() < 140
  assert np.bincount(data.train_labels, minlength=10).sum() == 4000
  # Real digits: mostly background with bright strokes (MNIST's mean pixel
  # is about 33 of 255); random pixels would average 127.
  assert 20 < data.train_images.mean() < 45
  assert data.train_images.max() == 255


def test_sample_split_depends_only_on_seed():
  a, b = datasets.load("sample", seed=1), datasets.load("sample", seed=1)
  c = datasets.load("sample", seed=2)
  np.testing.assert_array_equal(a.test_images, b.test_images)
  assert not np.array_equal(a.test_labels, c.test_labels)
  # A different seed re-splits the same 5000 digits.
  all_a = np.concatenate([a.train_images, a.test_images]).reshape(5000, -1)
  all_c = np.concatenate([c.train_images, c.test_images]).reshape(5000, -1)
  np.testing.assert_array_equal(
    np.sort(all_a.sum(axis=1)), np.sort(all_c.sum(axis=1))
  )


def test_sample_has_no_fashion_mnist():
  with pytest.raises(ValueError, match="only has MNIST"):
    datasets.load("sample", name="fashion_mnist")


# Pixel scaling.


def test_to_float_scales():
  pixels = np.array([[0, 255], [51, 102]], np.uint8)
  unit = datasets.to_float(pixels)
  assert unit.dtype == np.float32
  np.testing.assert_allclose(unit, [[0, 1], [0.2, 0.4]], rtol=1e-6)
  raw = datasets.to_float(pixels, scale="raw")
  np.testing.assert_array_equal(raw, pixels.astype(np.float32))


def test_to_float_rejects_bad_input():
  with pytest.raises(ValueError, match="scale must be one of"):
    datasets.to_float(np.zeros(3, np.uint8), scale="minus_one_to_one")
  with pytest.raises(TypeError, match="uint8"):
    datasets.to_float(np.zeros(3, np.float32))


# Argument checking and auto.


def test_load_rejects_unknown_source_and_name():
  with pytest.raises(ValueError, match="source must be one of"):
    datasets.load("kaggle")
  with pytest.raises(ValueError, match="name must be one of"):
    datasets.load("sample", name="cifar10")


def test_auto_falls_back_to_sample():
  assert datasets.load("auto").source == "sample"


def test_auto_prefers_idx_files_in_data_dir(tmp_path):
  write_idx_dir(tmp_path)
  data = datasets.load("auto", tmp_path)
  assert data.source == "idx"
  assert len(data.train_labels) == 6


def test_auto_without_fashion_mnist_says_what_it_looked_for(tmp_path):
  with pytest.raises(FileNotFoundError, match="No fashion_mnist data found"):
    datasets.load("auto", tmp_path, name="fashion_mnist")


# TFDS, mocked: no download, no TensorFlow.


@pytest.fixture(name="tfds")
def tfds_fixture():
  return pytest.importorskip("tensorflow_datasets")


def prepare_tfds_metadata(tfds, data_dir, name="mnist"):
  """Writes the metadata of a prepared array_record dataset, no records.

  With it, TFDS considers the dataset prepared, and ``tfds.testing.mock_data``
  (policy USE_FILES) serves examples instead of the missing records.
  """
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  os.makedirs(builder.data_path)
  splits = [
    tfds.core.SplitInfo(
      name=split,
      shard_lengths=[n],
      num_bytes=0,
      filename_template=tfds.core.ShardedFileTemplate(
        data_dir=builder.data_path,
        dataset_name=name,
        split=split,
        filetype_suffix="array_record",
      ),
    )
    for split, n in (("train", 5), ("test", 5))
  ]
  builder.info.set_splits(tfds.core.SplitDict(splits))
  builder.info.write_to_directory(builder.data_path)


def mock_tfds(tfds, data_dir, **kwargs):
  return tfds.testing.mock_data(
    num_examples=5,
    data_dir=str(data_dir),
    policy=tfds.testing.MockPolicy.USE_FILES,
    **kwargs,
  )


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_source_with_mock_data(tfds, tmp_path, name):
  prepare_tfds_metadata(tfds, tmp_path, name)
  with mock_tfds(tfds, tmp_path):
    data = datasets.load("tfds", tmp_path, name=name)
  assert data.source == "tfds"
  assert data.name == name
  assert data.train_images.shape == (5, 28, 28, 1)
  assert data.test_images.shape == (5, 28, 28, 1)
  assert data.train_images.dtype == np.uint8
  assert data.train_labels.dtype == np.int32
  assert set(data.train_labels) <= set(range(10))
  assert "tensorflow_datasets" in data.description


def test_auto_uses_a_prepared_tfds_dataset(tfds, tmp_path):
  prepare_tfds_metadata(tfds, tmp_path)
  write_idx_dir(tmp_path)  # TFDS wins over IDX files
  with mock_tfds(tfds, tmp_path):
    data = datasets.load("auto", tmp_path)
  assert data.source == "tfds"


def test_tfds_examples_are_stacked_in_order(tfds, tmp_path):
  prepare_tfds_metadata(tfds, tmp_path)
  rng = np.random.default_rng(0)
  examples = {
    split: [
      {
        "image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8),
        "label": np.int64(rng.integers(0, 10)),
      }
      for _ in range(n)
    ]
    for split, n in (("train", 7), ("test", 3))
  }

  def as_data_source(self, split, **kwargs):
    del self, kwargs
    return [examples[s] for s in split]

  with mock_tfds(tfds, tmp_path, as_data_source_fn=as_data_source):
    data = datasets.load("tfds", tmp_path)
  np.testing.assert_array_equal(
    data.train_images, np.stack([e["image"] for e in examples["train"]])
  )
  np.testing.assert_array_equal(
    data.test_labels, [e["label"] for e in examples["test"]]
  )


@pytest.mark.skipif(_HAS_TENSORFLOW, reason="TensorFlow would prepare it")
def test_tfds_unprepared_without_tensorflow_fails_before_downloading(
  tfds, tmp_path
):
  del tfds  # only skips the test when TFDS is missing
  with pytest.raises(ImportError, match=r"needs TensorFlow.*\[tfds\]"):
    datasets.load("tfds", tmp_path)
