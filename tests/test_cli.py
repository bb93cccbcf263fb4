"""The `jaxrl` command's entry: the multi-host switch and clear refusals of bad commands."""

import jax
import pytest

from jaxrl_suite.cli import main


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
