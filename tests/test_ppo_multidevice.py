"""PPO on a 4-device CPU mesh (env batch sharded, params replicated) equals the 1-device run.

Runs in a subprocess because the forced device count must be set before JAX starts.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

from jaxrl_suite.agents.ppo import PPOConfig, make_ppo
from jaxrl_suite.envs import make
from jaxrl_suite.parallel import make_mesh

COMPARE_SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jaxrl_suite.agents.ppo import PPOConfig, make_ppo
    from jaxrl_suite.envs import make
    from jaxrl_suite.parallel import ENV_AXIS, make_mesh
    from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn

    assert jax.device_count() == 4, jax.devices()
    env_id = sys.argv[1]
    cases = {
        "gymnax/CartPole-v1": PPOConfig(num_envs=8, rollout_length=16, num_minibatches=4, num_epochs=2,
                                        hidden_sizes=(16, 16), normalize_observations=True, target_kl=0.05,
                                        value_clip_eps=0.2, num_eval_envs=8, total_steps=8 * 16 * 3),
        "gymnax/Pendulum-v1": PPOConfig(num_envs=8, rollout_length=16, num_minibatches=2, num_epochs=2,
                                        hidden_sizes=(16,), normalize_rewards=True, action_squash="tanh",
                                        state_dependent_std=True, num_eval_envs=4, total_steps=8 * 16 * 3),
    }
    config = cases[env_id]
    results = []
    for mesh in (None, make_mesh(4)):
        learner = make_ppo(config, make(env_id), mesh=mesh)
        state, metrics = make_chunk_fn(learner, 3)(init_seeds(learner, 0, 2))
        eval_keys = jnp.stack([jax.random.PRNGKey(9)] * 2)
        evaluation = jax.jit(jax.vmap(learner.evaluate))(state, eval_keys)
        leaves = jax.tree.leaves((metrics, evaluation, state.params))
        results.append([np.asarray(leaf, np.float64) for leaf in leaves])
        if mesh is not None:
            spec = state.env_state.obs.sharding.spec
            assert spec[1] == ENV_AXIS, spec  # [num_seeds, num_envs, ...]: envs split over devices
            assert len(state.env_state.obs.sharding.device_set) == 4
            eval_program = jax.jit(jax.vmap(learner.evaluate)).lower(state, eval_keys).as_text()
            assert '{"envs"}' in eval_program, "evaluation envs are not split over the mesh"
    diffs = [float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a)))) if a.size else 0.0
             for a, b in zip(*results)]
    report = {"max_relative_diff": max(diffs), "num_compared_leaves": len(diffs)}
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.parametrize(
    "env_id",
    [
        "gymnax/CartPole-v1",  # discrete; obs normalization, KL early stop, value clipping, evaluation
        pytest.param("gymnax/Pendulum-v1", marks=pytest.mark.slow),  # tanh Gaussian, reward scaling
    ],
)
def test_four_device_mesh_matches_single_device(env_id):
    """Metrics, evaluation and params after 3 updates of 2 vmapped seeds agree within 1e-4
    (absolute below 1, relative above)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", COMPARE_SCRIPT, env_id], env=env, cwd=Path(__file__).resolve().parents[1],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    assert report["max_relative_diff"] < 1e-4, report


def test_num_envs_must_divide_over_devices():
    devices = jax.devices() * 4  # the same device four times is enough to build the mesh shape
    with pytest.raises(ValueError, match=r"num_envs=6 must be divisible by the number of devices"):
        make_ppo(PPOConfig(num_envs=6, num_minibatches=2), make("gymnax/CartPole-v1"),
                 mesh=make_mesh(devices=devices))
