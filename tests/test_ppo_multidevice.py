"""PPO on a 4-device CPU mesh (env batch sharded, params replicated) equals the 1-device run,
in one process and across two processes joined by jax.distributed.

Runs in a subprocess because the forced device count must be set before JAX starts.
"""

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrl_suite.agents.ppo import PPOConfig, make_ppo
from jaxrl_suite.envs import make
from jaxrl_suite.parallel import make_mesh
from jaxrl_suite.runner import RunConfig, read_metrics, train
from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.run_dir import CHECKPOINT_DIR
from tests.conftest import cpu_devices_env

# Trains one PPO case without a mesh and on `mesh`, and prints how far metrics, evaluation and
# params after 3 updates of 2 vmapped seeds drift apart (the scripts below set `mesh` first).
COMPARE_CASE = textwrap.dedent(
    """
    import json
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jaxrl_suite.agents.ppo import PPOConfig, make_ppo
    from jaxrl_suite.envs import make
    from jaxrl_suite.parallel import ENV_AXIS, make_mesh
    from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn

    def compare(env_id, mesh):
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
        for one_mesh in (None, mesh):
            learner = make_ppo(config, make(env_id), mesh=one_mesh)
            state, metrics = make_chunk_fn(learner, 3)(init_seeds(learner, 0, 2))
            eval_keys = jnp.stack([jax.random.PRNGKey(9)] * 2)
            evaluation = jax.jit(jax.vmap(learner.evaluate))(state, eval_keys)
            leaves = jax.tree.leaves((metrics, evaluation, state.params))
            results.append([np.asarray(leaf, np.float64) for leaf in leaves])
            if one_mesh is not None:
                spec = state.env_state.obs.sharding.spec
                assert spec[1] == ENV_AXIS, spec  # [num_seeds, num_envs, ...]: envs split over devices
                assert len(state.env_state.obs.sharding.device_set) == mesh.size
                eval_program = jax.jit(jax.vmap(learner.evaluate)).lower(state, eval_keys).as_text()
                assert '{"envs"}' in eval_program, "evaluation envs are not split over the mesh"
        diffs = [float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a)))) if a.size else 0.0
                 for a, b in zip(*results)]
        report = {"max_relative_diff": max(diffs), "num_compared_leaves": len(diffs),
                  "process": jax.process_index(), "global_devices": jax.device_count()}
        print("REPORT" + json.dumps(report))
    """
)
COMPARE_SCRIPT = COMPARE_CASE + textwrap.dedent(
    """
    assert jax.device_count() == 4, jax.devices()
    compare(sys.argv[1], make_mesh(4))
    """
)
# One of two processes (argv: process id, coordinator port), each with 2 CPU devices: the mesh
# spans all 4 devices of both processes, as on two hosts joined by jax.distributed.
MULTIPROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{sys.argv[2]}", num_processes=2,
                               process_id=int(sys.argv[1]))
    assert jax.device_count() == 4 and jax.local_device_count() == 2, jax.devices()
    """
) + COMPARE_CASE + 'compare("gymnax/CartPole-v1", make_mesh())\n'


# The same, calling the runner: argv adds the run directory both processes train into.
MULTIPROCESS_TRAIN_SCRIPT = MULTIPROCESS_SCRIPT.split("import json", 1)[0] + textwrap.dedent(
    """
    from jaxrl_suite.agents.ppo import make_ppo
    from jaxrl_suite.envs import make
    from jaxrl_suite.parallel import make_mesh
    from jaxrl_suite.runner import RunConfig, train
    from tests.test_ppo_multidevice import SMALL_RUN, SMALL_RUN_CONFIG

    learner = make_ppo(SMALL_RUN_CONFIG, make("gymnax/CartPole-v1"), mesh=make_mesh())
    train(learner, SMALL_RUN, sys.argv[3], algo="ppo", env_id="gymnax/CartPole-v1")
    """
)
SMALL_RUN_CONFIG = PPOConfig(num_envs=8, rollout_length=16, num_minibatches=4, num_epochs=2, hidden_sizes=(16, 16),
                             normalize_observations=True, num_eval_envs=8, total_steps=8 * 16 * 4)
SMALL_RUN = RunConfig(total_steps=8 * 16 * 4, num_seeds=2, log_every=8 * 16 * 2, eval_every=8 * 16 * 2,
                      progress=False, tensorboard=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


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
    env = cpu_devices_env(4)
    result = subprocess.run(
        [sys.executable, "-c", COMPARE_SCRIPT, env_id], env=env, cwd=Path(__file__).resolve().parents[1],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    assert report["max_relative_diff"] < 1e-4, report


def run_two_processes(script: str, *args: str) -> list[str]:
    """Runs `script` as processes 0 and 1 of a jax.distributed job on this machine (2 CPU devices
    each); returns their stdout once both succeeded."""
    env = cpu_devices_env(2)
    port = str(free_port())
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(process), port, *args], env=env,
                         cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for process in (0, 1)
    ]
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-4000:]
    return [stdout for stdout, _ in outputs]


@pytest.mark.slow  # 92 s on the 2-core CI machine; the runner test below trains over the same two processes
def test_two_processes_over_jax_distributed_match_single_device():
    """Two processes joined by jax.distributed (gloo collectives on CPU, 2 devices each) train
    one PPO program whose env batch spans both; each gets the 1-device numbers within 1e-4."""
    reports = [json.loads(stdout.split("REPORT", 1)[1]) for stdout in run_two_processes(MULTIPROCESS_SCRIPT)]
    assert [report["process"] for report in reports] == [0, 1]
    for report in reports:
        assert report["global_devices"] == 4
        assert report["max_relative_diff"] < 1e-4, report


def test_runner_over_two_processes_writes_one_run_that_matches_single_device(tmp_path):
    """`train` in two jax.distributed processes: process 0 alone writes config, metrics and plot,
    both save the checkpoints together; the logged numbers equal a 1-device run's within 1e-4,
    and the last checkpoint restores on one device to that run's final params."""
    distributed_dir, single_dir = tmp_path / "two_processes", tmp_path / "one_device"
    run_two_processes(MULTIPROCESS_TRAIN_SCRIPT, str(distributed_dir))
    learner = make_ppo(SMALL_RUN_CONFIG, make("gymnax/CartPole-v1"))
    single = train(learner, SMALL_RUN, single_dir, algo="ppo", env_id="gymnax/CartPole-v1")
    assert sorted(path.name for path in distributed_dir.iterdir()) == sorted(path.name for path in single_dir.iterdir())
    logged, expected = read_metrics(distributed_dir), read_metrics(single_dir)
    assert [record["env_steps"] for record in logged] == [record["env_steps"] for record in expected]
    for record, reference in zip(logged, expected, strict=True):
        for name, value in reference.items():
            if isinstance(value, float) and name not in ("wall_time", "sps"):
                np.testing.assert_allclose(record[name], value, rtol=1e-4, atol=1e-4, err_msg=name)
    restored, metadata = Checkpointer(distributed_dir / CHECKPOINT_DIR).restore(single.state)
    assert metadata["updates"] == SMALL_RUN.total_steps // SMALL_RUN_CONFIG.batch_size
    for leaf, reference in zip(jax.tree.leaves(restored.params), jax.tree.leaves(single.state.params), strict=True):
        np.testing.assert_allclose(leaf, reference, rtol=1e-4, atol=1e-4)


def test_num_envs_must_divide_over_devices():
    devices = jax.devices() * 4  # the same device four times is enough to build the mesh shape
    with pytest.raises(ValueError, match=r"num_envs=6 must be divisible by the number of devices"):
        make_ppo(PPOConfig(num_envs=6, num_minibatches=2), make("gymnax/CartPole-v1"),
                 mesh=make_mesh(devices=devices))
