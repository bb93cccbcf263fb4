"""Registry: id listing, specs, lazy backend imports and helpful errors for bad ids."""

import subprocess
import sys

import pytest

from jaxrl_suite.envs import env_spec, list_env_ids, make


def test_gymnax_ids_are_listed_with_their_family():
    ids = list_env_ids("gymnax")
    assert {"gymnax/CartPole-v1", "gymnax/Pendulum-v1", "gymnax/Breakout-MinAtar"} <= set(ids)
    assert all(env_id.startswith("gymnax/") for env_id in ids)


def test_env_spec_describes_shapes_and_limits():
    spec = env_spec("gymnax/CartPole-v1")
    assert spec["obs_shape"] == (4,)
    assert spec["obs_dtype"] == "float32"
    assert spec["action_space"]["type"] == "Discrete" and spec["action_space"]["n"] == 2
    assert spec["max_episode_steps"] == 500
    assert env_spec("gymnax/CartPole-v1", max_episode_steps=50)["max_episode_steps"] == 50


@pytest.mark.parametrize(
    "bad_id, close_match",
    [
        ("gymnax/Cartpole-v1", "gymnax/CartPole-v1"),
        ("gymnax/Breakout-Minatar", "gymnax/Breakout-MinAtar"),
    ],
)
def test_unknown_id_names_a_close_valid_id(bad_id, close_match):
    with pytest.raises(ValueError, match=f"unknown env id '{bad_id}'.*{close_match}"):
        make(bad_id)


def test_unknown_family_lists_families():
    with pytest.raises(ValueError, match="family in \\['brax', 'dmc', 'gymnax'\\]"):
        make("atari/Pong")


def test_importing_envs_does_not_import_physics_backends():
    code = (
        "import sys, jaxrl_suite.envs as e; e.make('gymnax/CartPole-v1');"
        "print(sorted(m for m in ('brax', 'mujoco_playground', 'mujoco') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
