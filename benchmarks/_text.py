"""Debian's fortunes as a byte-level language-modelling corpus.

The ``fortunes`` package installs about 2.6 MB of English quotes, jokes and
prose under ``/usr/share/games/fortunes/``: text files whose records are
separated by lines holding a single ``%``, each with a ``.dat`` index (and a
``.u8`` link to itself) beside it. A record goes to the validation split when
the CRC-32 of its bytes is divisible by ``VALIDATION_MODULUS``: the split is
fixed by the text alone, whatever the order of the files or the Python run.
"""

import dataclasses
import os
import zlib

import numpy as np

DEBIAN_FORTUNES = "/usr/share/games/fortunes"
VALIDATION_MODULUS = 10  # about one record in ten is held out
SEPARATOR = b"%\n"  # put back between records, as in the files


@dataclasses.dataclass(frozen=True)
class Corpus:
  """The corpus as two byte streams, records joined by ``SEPARATOR``.

  Attributes:
    train: bytes of the training records, uint8 [N].
    validation: bytes of the held-out records, uint8 [M].
    label: where the text came from, for results pages.
  """

  train: np.ndarray
  validation: np.ndarray
  label: str


def fortune_files(directory: str = DEBIAN_FORTUNES) -> list[str]:
  """The paths of the fortune text files in ``directory``, sorted.

  Raises:
    FileNotFoundError: if ``directory`` holds no fortune files (install
      Debian's ``fortunes`` package: ``apt-get install -y fortunes``).
  """
  names = []
  if os.path.isdir(directory):
    names = sorted(
      name
      for name in os.listdir(directory)
      if not name.endswith((".dat", ".u8"))
      and os.path.isfile(os.path.join(directory, name))
    )
  if not names:
    raise FileNotFoundError(
      f"No fortune files in {directory}: install Debian's fortunes package"
      " (apt-get install -y fortunes)."
    )
  return [os.path.join(directory, name) for name in names]


def records(path: str) -> list[bytes]:
  """The non-empty records of one fortune file, each ending in a newline."""
  with open(path, "rb") as f:
    text = f.read()
  parts = text.replace(b"\r\n", b"\n").split(b"\n%\n")
  return [p.strip(b"\n") + b"\n" for p in parts if p.strip(b"\n%")]


def is_validation(record: bytes) -> bool:
  """Whether ``record`` is held out (a function of its bytes alone)."""
  return zlib.crc32(record) % VALIDATION_MODULUS == 0


def load(directory: str = DEBIAN_FORTUNES) -> Corpus:
  """Loads every fortune file of ``directory`` and splits it by record."""
  train, validation = [], []
  files = fortune_files(directory)
  for path in files:
    for record in records(path):
      (validation if is_validation(record) else train).append(record)

  def stream(parts):
    return np.frombuffer(SEPARATOR.join(parts), np.uint8)

  train_bytes, validation_bytes = stream(train), stream(validation)
  label = (
    f"Debian fortunes ({len(files)} files in {directory}): {len(train)}"
    f" training records ({len(train_bytes)} bytes), {len(validation)}"
    f" held-out records ({len(validation_bytes)} bytes)"
  )
  return Corpus(train_bytes, validation_bytes, label)


def validation_windows(
  corpus: Corpus, length: int, max_windows: int
) -> np.ndarray:
  """Non-overlapping windows of ``length + 1`` held-out bytes, [W, length + 1].

  Each window gives ``length`` next-byte predictions. At most
  ``max_windows``, evenly spaced over the held-out stream, so that the set is
  fixed and covers all of it.
  """
  num = (len(corpus.validation) - 1) // length
  if num < 1:
    raise ValueError(
      f"The held-out text ({len(corpus.validation)} bytes) is shorter than"
      f" one window of {length + 1} bytes."
    )
  chosen = np.linspace(0, num - 1, min(num, max_windows)).astype(np.int64)
  starts = chosen * length
  return corpus.validation[starts[:, None] + np.arange(length + 1)]
