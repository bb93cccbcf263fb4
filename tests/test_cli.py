"""The `jaxrl` command's entry: the multi-host switch, clear refusals of bad commands, and the
compilation cache the installed command turns on."""

import sys

import jax
import pytest

from jaxrl_suite.cli import console_main, main


def test_distributed_flag_joins_the_job_before_the_command(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert main(["--distributed", "envs", "--family", "gymnax"]) == 0
    assert calls == [((), {})]
    assert "gymnax/CartPole-v1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fly"], "unknown command 'fly'; valid: train, sweep"),
        (["train", "ppo", "--env", "gymnax/CartPole-v2"], "gymnax/CartPole-v1"),
    ],
)
def test_bad_commands_are_refused_with_the_valid_choices(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "cached"),
    [(["train", "ppo", "--env", "gymnax/CartPole-v2"], True),
     (["--distributed", "train", "ppo", "--env", "gymnax/CartPole-v2"], True),
     (["envs", "--family", "gymnax"], False)],
)
def test_installed_command_turns_the_compilation_cache_on_for_compiling_commands(argv, cached, monkeypatch, capsys):
    from jaxrl_suite.runner import compilation_cache

    calls = []
    monkeypatch.setattr(compilation_cache, "use_compilation_cache", lambda: calls.append("on"))
    monkeypatch.setattr(jax.distributed, "initialize", lambda *args, **kwargs: None)
    monkeypatch.setattr(sys, "argv", ["jaxrl", *argv])
    console_main()  # the train commands then fail on the unknown env id
    assert calls == (["on"] if cached else [])


def test_closing_line_takes_each_seeds_latest_finished_episodes():
    from jaxrl_suite.cli import latest_per_seed

    records = [{"episode_return_per_seed": [1.0, 2.0, None]}, {"other": 1.0},
               {"episode_return_per_seed": [None, 5.0, None]}, {"episode_return_per_seed": [None, None, None]}]
    assert latest_per_seed(records, "episode_return_per_seed") == [1.0, 5.0, None]
    assert latest_per_seed([], "episode_return_per_seed") == []
