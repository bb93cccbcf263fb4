"""Sweep tests: grid parsing and planning, and that a vmapped (setting, seed) member equals the
same setting trained alone."""

import dataclasses

import chex
import jax
import pytest

from jaxrl_suite.agents.ppo import make_ppo
from jaxrl_suite.algorithms import default_config
from jaxrl_suite.envs import make
from jaxrl_suite.runner import RunConfig, init_seeds, make_chunk_fn, read_metrics
from jaxrl_suite.runner.sweep import TracedHyperparameterLearner, parse_grid, plan, run_sweep

SMALL = dict(num_envs=4, rollout_length=16, num_minibatches=2, num_epochs=2, total_steps=64 * 3)


def test_parse_grid_types_and_errors():
    config = default_config("ppo", "gymnax/CartPole-v1")
    grid = parse_grid(["num_envs=4,8", "learning-rate=1e-3,3e-4", "anneal_lr=true,false"], config)
    assert grid == {"num_envs": [4, 8], "learning_rate": [1e-3, 3e-4], "anneal_lr": [True, False]}
    assert parse_grid(["hidden_sizes=[64,64],[8]"], config) == {"hidden_sizes": [(64, 64), (8,)]}
    with pytest.raises(ValueError, match="not a field of PPOConfig"):
        parse_grid(["num_env=4"], config)
    with pytest.raises(ValueError, match="cannot read"):
        parse_grid(["num_envs=four"], config)
    with pytest.raises(ValueError, match="FIELD=V1,V2"):
        parse_grid(["num_envs"], config)


def test_plan_groups_by_shape_fields():
    programs = plan({"num_envs": [4, 8], "learning_rate": [1.0, 2.0, 3.0]}, traced_fields=["learning_rate"])
    assert [p.static_values for p in programs] == [{"num_envs": 4}, {"num_envs": 8}]
    assert all(len(p.settings) == 3 for p in programs)


def test_vmapped_member_equals_setting_alone():
    env = make("gymnax/CartPole-v1")
    base = dataclasses.replace(default_config("ppo", "gymnax/CartPole-v1"), **SMALL)
    swept = TracedHyperparameterLearner(make_ppo(base, env), ["learning_rate", "gamma"])
    hyper = {"learning_rate": jax.numpy.array([1e-3, 1e-3, 3e-4, 3e-4]), "gamma": jax.numpy.array([0.99, 0.99, 0.9, 0.9])}
    keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in (0, 1, 0, 1)])
    state, _ = make_chunk_fn(swept, 3)(swept.init_members(hyper, keys))

    alone_learner = make_ppo(dataclasses.replace(base, learning_rate=3e-4, gamma=0.9), env)
    alone, _ = make_chunk_fn(alone_learner, 3)(init_seeds(alone_learner, seed=1, num_seeds=1))
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[3], state.inner.params), jax.tree.map(lambda x: x[0], alone.params),
        rtol=1e-5, atol=1e-6,
    )
    assert not jax.numpy.allclose(
        jax.tree.leaves(state.inner.params)[0][1], jax.tree.leaves(state.inner.params)[0][3]
    )


def test_run_sweep_writes_setting_dirs_and_summary(tmp_path):
    base = dataclasses.replace(default_config("ppo", "gymnax/CartPole-v1"), **SMALL)
    run = RunConfig(total_steps=64 * 3, num_seeds=2, progress=False, tensorboard=False, eval_every=-1)
    with pytest.raises(ValueError, match="num_minibatches"):
        run_sweep("ppo", "gymnax/CartPole-v1", base, {"num_minibatches": [2, 5]}, run, tmp_path / "bad")
    rows = run_sweep("ppo", "gymnax/CartPole-v1", base, {"num_envs": [4], "clip_eps": [0.1, 0.2]}, run, tmp_path)
    assert len(rows) == 2 and [p.name for p in tmp_path.glob("program-*")] == ["program-num_envs4"]
    assert (tmp_path / "summary.md").read_text().count("\n") == 4
    setting = read_metrics(tmp_path / "num_envs=4-clip_eps=0.1")
    assert len(setting[-1]["episode_return_per_seed"]) == 2
    assert not (tmp_path / "bad").exists()
