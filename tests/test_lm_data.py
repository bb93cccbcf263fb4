"""Corpus tests: the train/validation split never overlaps, packed streams read only their files and resume exactly.

Uses the real stdlib corpus for the split and small hand-made directories for exact stream contents.
"""

import numpy as np
import pytest

from jaxrl_suite.lm.data import (
    END_OF_DOCUMENT,
    Corpus,
    PackedStream,
    decode,
    document_windows,
    encode,
    packed_windows,
    stdlib_root,
)


def test_stdlib_split_is_disjoint_complete_and_independent_of_order():
    corpus = Corpus.python_stdlib(validation_fraction=0.05)
    train, validation = set(corpus.train_files), set(corpus.validation_files)
    assert not train & validation
    every_file = {p.relative_to(stdlib_root()).as_posix() for p in stdlib_root().rglob("*.py")
                  if "site-packages" not in p.parts and "__pycache__" not in p.parts and p.stat().st_size > 0}
    assert train | validation == every_file
    assert len(every_file) > 500 and 0.02 < len(validation) / len(every_file) < 0.09
    bigger = Corpus.python_stdlib(validation_fraction=0.2)
    assert validation <= set(bigger.validation_files)  # a larger fraction only moves files into validation


def _write_corpus(root, contents):
    for name, text in contents.items():
        (root / name).write_text(text)
    return root


def test_stream_reads_only_its_files_and_packs_documents(tmp_path):
    files = {f"file_{i}.py": ("T" if i % 2 else "V") * (5 + 3 * i) for i in range(12)}
    corpus = Corpus(_write_corpus(tmp_path, files), tuple(n for n in sorted(files) if files[n][0] == "T"),
                    tuple(n for n in sorted(files) if files[n][0] == "V"))
    stream = PackedStream(corpus, corpus.train_files, batch_size=3, sequence_length=7, seed=0)
    batches = np.stack([stream.next_batch() for _ in range(30)])
    assert batches.shape == (30, 3, 8)
    assert set(np.unique(batches)) == {ord("T"), END_OF_DOCUMENT}
    # Consecutive windows share one token, so every token is a target exactly once.
    np.testing.assert_array_equal(batches[1:, :, 0], batches[:-1, :, -1])
    # Every row walks through all train files in an epoch: 6 documents of 5+3i bytes plus separators.
    row = np.concatenate([batches[0, 0]] + [b[0, 1:] for b in batches[1:]])
    epoch_length = sum(len(files[n]) + 1 for n in corpus.train_files)
    assert (row[:epoch_length] == END_OF_DOCUMENT).sum() == len(corpus.train_files)


def test_stream_state_resumes_the_exact_same_batches(tmp_path):
    files = {f"m{i}.py": f"def f{i}():\n    return {i}\n" * (i + 1) for i in range(9)}
    corpus = Corpus.from_directory(_write_corpus(tmp_path, files), validation_fraction=0.3)
    uninterrupted = PackedStream(corpus, corpus.train_files, 4, 16, seed=3)
    expected = [uninterrupted.next_batch() for _ in range(12)]
    first = PackedStream(corpus, corpus.train_files, 4, 16, seed=3)
    head = [first.next_batch() for _ in range(5)]
    second = PackedStream(corpus, corpus.train_files, 4, 16, seed=3)
    second.restore(first.state())
    tail = [second.next_batch() for _ in range(7)]
    np.testing.assert_array_equal(np.stack(head + tail), np.stack(expected))
    other_seed = PackedStream(corpus, corpus.train_files, 4, 16, seed=4)
    assert not np.array_equal(other_seed.next_batch(), expected[0])


def test_validation_windows_come_only_from_validation_files(tmp_path):
    files = {f"a{i}.py": chr(ord("a") + i) * 300 for i in range(10)}
    corpus = Corpus.from_directory(_write_corpus(tmp_path, files), validation_fraction=0.4)
    allowed = {ord(files[n][0]) for n in corpus.validation_files} | {END_OF_DOCUMENT}
    assert set(np.unique(packed_windows(corpus, corpus.validation_files, 50, 100))) <= allowed
    starts = document_windows(corpus, corpus.validation_files, 200, 10)
    assert starts.shape == (len(corpus.validation_files), 201)
    assert set(starts[:, 0]) == {ord(files[n][0]) for n in corpus.validation_files}


def test_bytes_round_trip_and_bad_corpora_are_refused(tmp_path):
    text = "def héllo():\n    return 'π'\n"
    assert decode(encode(text)) == text
    assert encode(text).max() < 256
    with pytest.raises(ValueError, match="data.validation_fraction=1.5"):
        Corpus.from_directory(tmp_path, validation_fraction=1.5)
    with pytest.raises(ValueError, match="data.corpus="):
        Corpus.from_directory(tmp_path / "missing")
    (tmp_path / "only.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="too few"):
        Corpus.from_directory(tmp_path)
