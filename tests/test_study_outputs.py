"""The studies in experiments/ never replace results a user already has without being asked, and
they share a compilation cache that a user may move.

Runner-level reuse/resume is tested in test_runner.py; these check each script's own guard.
"""

import sys

import pytest

from tests.conftest import load_experiment


@pytest.fixture(scope="module")
def cchain_study():
    yield from load_experiment("cchain_continual")


def test_cchain_study_refuses_an_out_dir_with_results(cchain_study, tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.json"
    summary.write_text('{"kept": true}\n')
    monkeypatch.setattr(sys, "argv", ["cchain_continual.py", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        cchain_study.main()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "already holds results (summary.json)" in error and "--overwrite" in error
    assert summary.read_text() == '{"kept": true}\n'


def test_compilation_cache_defaults_to_the_given_directory_keeps_a_chosen_one_and_can_be_off(tmp_path, capsys,
                                                                                             monkeypatch):
    import jax

    from experiments.common import use_compilation_cache

    before = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert use_compilation_cache(str(tmp_path / "xla")) == str(tmp_path / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        assert str(tmp_path / "xla") in capsys.readouterr().out
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "chosen"))  # as $JAX_COMPILATION_CACHE_DIR sets it
        assert use_compilation_cache(str(tmp_path / "xla")) == str(tmp_path / "chosen")
        jax.config.update("jax_compilation_cache_dir", None)
        monkeypatch.setenv("JAXRL_COMPILATION_CACHE", "off")
        assert use_compilation_cache(str(tmp_path / "xla")) == ""
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
