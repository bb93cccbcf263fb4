"""Offline byte-level corpus: the Python standard library's own source files, split by file, streamed in packed rows.

Token ids are bytes 0..255 plus END_OF_DOCUMENT; nothing is downloaded and nothing is loaded all at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import sysconfig
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

END_OF_DOCUMENT = 256
VOCAB_SIZE = 257
EXCLUDED_PARTS = frozenset({"site-packages", "dist-packages", "__pycache__"})


def encode(text: str | bytes) -> np.ndarray:
    """Bytes of `text` (UTF-8) as int32 token ids [len]."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


def decode(tokens: Sequence[int] | np.ndarray) -> str:
    """Token ids back to text; END_OF_DOCUMENT becomes a blank line, invalid UTF-8 a replacement char."""
    pieces = bytearray()
    for token in np.asarray(tokens).tolist():
        pieces.extend(b"\n\n" if token == END_OF_DOCUMENT else bytes([token]))
    return pieces.decode("utf-8", errors="replace")


def stdlib_root() -> pathlib.Path:
    return pathlib.Path(sysconfig.get_paths()["stdlib"])


def validation_score(relative_path: str) -> float:
    """A stable pseudo-random number in [0, 1) per file path: the split never depends on order or machine."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Files under `root`, split into disjoint train and validation lists (relative POSIX paths, sorted)."""

    root: pathlib.Path
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]

    @classmethod
    def from_directory(cls, root: str | pathlib.Path, validation_fraction: float = 0.05,
                       pattern: str = "*.py") -> Corpus:
        """Every `pattern` file under root (skipping site-packages and caches); a file is in validation
        when validation_score(path) < validation_fraction."""
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"invalid data.validation_fraction={validation_fraction!r}: expected a number in (0, 1)")
        root = pathlib.Path(root)
        if not root.is_dir():
            raise ValueError(f"invalid data.corpus={str(root)!r}: expected a directory of {pattern} files")
        relative = sorted(
            path.relative_to(root).as_posix() for path in root.rglob(pattern)
            if path.is_file() and not EXCLUDED_PARTS.intersection(path.relative_to(root).parts)
            and path.stat().st_size > 0
        )
        validation = tuple(p for p in relative if validation_score(p) < validation_fraction)
        train = tuple(p for p in relative if validation_score(p) >= validation_fraction)
        if not train or not validation:
            raise ValueError(
                f"corpus {root} has {len(relative)} non-empty {pattern} files: too few to give both a train and "
                f"a validation file at validation_fraction={validation_fraction}")
        return cls(root, train, validation)

    @classmethod
    def python_stdlib(cls, validation_fraction: float = 0.05) -> Corpus:
        """The source of the running Python's standard library (found through sysconfig)."""
        return cls.from_directory(stdlib_root(), validation_fraction)

    def document(self, relative_path: str) -> np.ndarray:
        """One file's bytes followed by END_OF_DOCUMENT: int32 [file_size + 1]."""
        data = (self.root / relative_path).read_bytes()
        return np.append(encode(data), np.int32(END_OF_DOCUMENT))

    def describe(self) -> dict[str, Any]:
        def size(files: tuple[str, ...]) -> int:
            return sum((self.root / f).stat().st_size for f in files)

        return {"root": str(self.root), "train_files": len(self.train_files),
                "validation_files": len(self.validation_files), "train_bytes": size(self.train_files),
                "validation_bytes": size(self.validation_files)}


@dataclasses.dataclass
class RowCursor:
    """Where one batch row is in its own endless stream: epoch, index in that epoch's file order, token offset."""

    epoch: int = 0
    file_index: int = 0
    offset: int = 0


class PackedStream:
    """Endless [batch_size, sequence_length + 1] int32 batches of packed documents from `files`.

    Every row reads its own stream: the files in a fresh seeded order each epoch, each document followed
    by END_OF_DOCUMENT, cut into consecutive windows that overlap by one token (so every token is a
    target exactly once). Only the current document of each row is in memory. `state()`/`restore()`
    are plain JSON, so a checkpointed run continues with exactly the batches it would have seen.
    """

    def __init__(self, corpus: Corpus, files: Sequence[str], batch_size: int, sequence_length: int, seed: int):
        if not files:
            raise ValueError("PackedStream needs at least one file")
        self.corpus = corpus
        self.files = tuple(files)
        self.batch_size = batch_size
        self.sequence_length = sequence_length
        self.seed = seed
        self.cursors = [RowCursor() for _ in range(batch_size)]
        self._orders: dict[tuple[int, int], np.ndarray] = {}
        self._documents: dict[int, tuple[str, np.ndarray]] = {}

    def _file_order(self, row: int, epoch: int) -> np.ndarray:
        key = (row, epoch)
        if key not in self._orders:
            if len(self._orders) > 4 * self.batch_size:
                self._orders.clear()
            self._orders[key] = np.random.default_rng([self.seed, row, epoch]).permutation(len(self.files))
        return self._orders[key]

    def _document(self, row: int, cursor: RowCursor) -> np.ndarray:
        name = self.files[self._file_order(row, cursor.epoch)[cursor.file_index]]
        cached = self._documents.get(row)
        if cached is None or cached[0] != name:
            cached = (name, self.corpus.document(name))
            self._documents[row] = cached
        return cached[1]

    def _take(self, row: int, cursor: RowCursor, count: int) -> tuple[list[np.ndarray], RowCursor]:
        """count tokens from `cursor` on, and the cursor after them (the input cursor is not changed)."""
        cursor = dataclasses.replace(cursor)
        pieces: list[np.ndarray] = []
        while count > 0:
            document = self._document(row, cursor)
            piece = document[cursor.offset:cursor.offset + count]
            pieces.append(piece)
            count -= piece.size
            cursor.offset += piece.size
            if cursor.offset >= document.size:
                cursor.offset = 0
                cursor.file_index += 1
                if cursor.file_index == len(self.files):
                    cursor.file_index, cursor.epoch = 0, cursor.epoch + 1
        return pieces, cursor

    def next_batch(self) -> np.ndarray:
        batch = np.empty((self.batch_size, self.sequence_length + 1), np.int32)
        for row in range(self.batch_size):
            window, advanced = self._take(row, self.cursors[row], self.sequence_length)
            last, _ = self._take(row, advanced, 1)
            batch[row] = np.concatenate(window + last)
            self.cursors[row] = advanced
        return batch

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_batch()

    def state(self) -> list[list[int]]:
        return [[c.epoch, c.file_index, c.offset] for c in self.cursors]

    def restore(self, state: list[list[int]]) -> None:
        if len(state) != self.batch_size:
            raise ValueError(f"data stream state has {len(state)} rows but batch_size is {self.batch_size}")
        self.cursors = [RowCursor(*row) for row in state]


def packed_windows(corpus: Corpus, files: Sequence[str], length: int, count: int) -> np.ndarray:
    """Up to `count` consecutive non-overlapping [length + 1] windows of the files concatenated in order.

    The fixed validation set: int32 [num_windows, length + 1]; raises if the files hold none.
    """
    windows: list[np.ndarray] = []
    buffer = np.zeros((0,), np.int32)
    for name in files:
        buffer = np.concatenate([buffer, corpus.document(name)])
        while buffer.size >= length + 1 and len(windows) < count:
            windows.append(buffer[:length + 1])
            buffer = buffer[length + 1:]
        if len(windows) == count:
            break
    if not windows:
        raise ValueError(f"the {len(files)} files hold fewer than {length + 1} tokens: no evaluation window")
    return np.stack(windows)


def document_windows(corpus: Corpus, files: Sequence[str], length: int, count: int) -> np.ndarray:
    """The first length + 1 tokens of up to `count` documents at least that long: int32 [n, length + 1].

    Position p of a window is position p of a real file, as in the paper's per-position loss curves.
    """
    windows = []
    for name in files:
        if (corpus.root / name).stat().st_size + 1 >= length + 1:
            windows.append(corpus.document(name)[:length + 1])
            if len(windows) == count:
                break
    if not windows:
        raise ValueError(f"none of the {len(files)} files holds {length + 1} tokens")
    return np.stack(windows)
