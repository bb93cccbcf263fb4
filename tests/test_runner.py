"""Run-loop tests: outputs in the run directory, overwrite protection, checkpoint round trip, exact resume.

Uses a tiny bandit learner so the loop is tested apart from any environment.
"""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl_suite.runner import (
    Checkpointer,
    CheckpointError,
    RunConfig,
    RunDirectoryError,
    init_seeds,
    loop,
    read_metrics,
    records_same_run,
    train,
    train_or_continue,
)
from jaxrl_suite.runner.chunks import AheadOfTime, make_chunk_fn
from jaxrl_suite.runner.loop import dividing_chunk_length
from tests.toy_learner import ToyConfig, ToyLearner

RUN = RunConfig(total_steps=8 * 40, num_seeds=2, log_every=8 * 5, eval_every=8 * 10, progress=False,
                tensorboard=False)
VOLATILE = {"wall_time", "sps"}


def _stable(records):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


def test_run_writes_config_metrics_plot_and_checkpoints(tmp_path):
    result = train(ToyLearner(), RUN, tmp_path / "run", algo="toy", env_id="none")
    run_dir = tmp_path / "run"
    assert result.completed
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "toy" and config["run"]["total_steps"] == 320
    records = read_metrics(run_dir)
    assert [r["env_steps"] for r in records] == list(range(40, 321, 40))
    for record in records:
        assert {"env_steps", "episode_return", "sps", "wall_time", "loss"} <= record.keys()
        assert len(record["episode_return_per_seed"]) == 2
    assert sum("eval_return" in r for r in records) == 4  # every 10 updates = every 2nd chunk
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    assert Checkpointer(run_dir / "checkpoints").latest_step() == 40
    assert records[-1]["episode_return"] > records[0]["episode_return"]  # it learns


@pytest.mark.parametrize("total_updates, target, expected", [
    (781, 15, 11),  # 781 = 11 x 71: the longest divisor in [8, 15]
    (488, 9, 8),
    (40, 5, 5),  # the target divides already
    (13, 6, 6),  # 13 is prime: no divisor in [3, 6], so the last chunk is shorter
    (10, 1, 1),
])
def test_dividing_chunk_length(total_updates, target, expected):
    assert dividing_chunk_length(total_updates, target) == expected


def test_a_run_compiles_one_chunk_program_when_a_shorter_chunk_divides_it(tmp_path, monkeypatch):
    lengths = []

    def counting_make_chunk_fn(learner, num_updates):
        lengths.append(num_updates)
        return make_chunk_fn(learner, num_updates)

    monkeypatch.setattr(loop, "make_chunk_fn", counting_make_chunk_fn)
    run = dataclasses.replace(RUN, total_steps=8 * 36)  # 36 updates; log_every asks for 5 per chunk
    result = train(ToyLearner(), run, tmp_path / "run", algo="toy", env_id="none")
    assert lengths == [4]
    assert [r["env_steps"] for r in result.records] == list(range(32, 8 * 36 + 1, 32))


def test_existing_run_is_not_overwritten_without_flag(tmp_path):
    train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none")
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RunDirectoryError, match="--resume"):
        train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none")
    assert (tmp_path / "metrics.jsonl").read_text() == before
    train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none", overwrite=True)
    assert len(read_metrics(tmp_path)) == 8


def test_resume_continues_exactly(tmp_path):
    full = train(ToyLearner(), RUN, tmp_path / "full", algo="toy", env_id="none")
    partial = train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none", max_chunks=3)
    assert not partial.completed
    resumed = train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none", resume=True)
    assert resumed.completed
    assert _stable(read_metrics(tmp_path / "cut")) == _stable(read_metrics(tmp_path / "full"))
    chex.assert_trees_all_equal(resumed.state, full.state)


def test_train_or_continue_resumes_reuses_and_refuses(tmp_path, capsys):
    """Studies re-run through train_or_continue: an interrupted run continues exactly, a finished
    one hands back its final state without training, a different config is refused untouched."""
    full = train(ToyLearner(), RUN, tmp_path / "full", algo="toy", env_id="none")
    train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none", max_chunks=3)
    continued = train_or_continue(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none")
    assert "continuing the run" in capsys.readouterr().out
    assert continued.completed and continued.records[0]["updates"] > 3 * 5
    chex.assert_trees_all_equal(continued.state, full.state)
    assert _stable(read_metrics(tmp_path / "cut")) == _stable(read_metrics(tmp_path / "full"))

    reused = train_or_continue(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none")
    assert "reusing the finished run" in capsys.readouterr().out
    assert reused.completed and reused.records == []
    chex.assert_trees_all_equal(reused.state, full.state)

    longer = dataclasses.replace(RUN, total_steps=RUN.total_steps * 2)
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        train_or_continue(ToyLearner(), longer, tmp_path / "cut", algo="toy", env_id="none")
    assert len(read_metrics(tmp_path / "cut")) == len(full.records)
    replaced = train_or_continue(ToyLearner(), longer, tmp_path / "cut", algo="toy", env_id="none", overwrite=True)
    assert replaced.records[-1]["env_steps"] == longer.total_steps


def test_resume_without_checkpoint_fails_clearly_and_changes_nothing(tmp_path):
    with pytest.raises(RunDirectoryError, match="no config.json"):
        train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none", resume=True)
    assert list(tmp_path.iterdir()) == []


def _corrupt(checkpoint_dir):
    state_files = [p for p in (checkpoint_dir / "packed").rglob("*") if p.is_file()]
    assert state_files
    for path in state_files:
        path.write_bytes(b"garbage")


def test_corrupt_checkpoints_give_one_clear_error_and_keep_files(tmp_path):
    train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none")
    for step in (30, 35, 40):
        _corrupt(tmp_path / "checkpoints" / str(step))
    metrics_before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match="none of the checkpoints 30, 35, 40 .* could be restored") as error:
        train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none", resume=True)
    assert "\n" not in str(error.value) and len(str(error.value)) < 500
    assert (tmp_path / "metrics.jsonl").read_text() == metrics_before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["30", "35", "40"]


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys):
    """The last checkpoint is unreadable: the run resumes from the one before (metrics cut back to
    it), ends as an uninterrupted run does, and keeps the unreadable one aside."""
    full = train(ToyLearner(), RUN, tmp_path / "full", algo="toy", env_id="none")
    train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none")
    _corrupt(tmp_path / "cut" / "checkpoints" / "40")
    resumed = train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none", resume=True)
    out = capsys.readouterr().out
    assert "checkpoint 40 could not be restored (" in out and "resuming from checkpoint 35" in out
    assert [r["updates"] for r in resumed.records] == [40]
    chex.assert_trees_all_equal(resumed.state, full.state)
    assert _stable(read_metrics(tmp_path / "cut")) == _stable(read_metrics(tmp_path / "full"))
    assert (tmp_path / "cut" / "unreadable_checkpoints" / "40" / "packed").is_dir()


def test_resume_without_a_committed_checkpoint_leaves_the_unfinished_one(tmp_path):
    run = dataclasses.replace(RUN, checkpoint_every=8 * 40)
    train(ToyLearner(), run, tmp_path, algo="toy", env_id="none", max_chunks=2)
    unfinished = tmp_path / "checkpoints" / "10.orbax-checkpoint-tmp"
    unfinished.mkdir(parents=True)
    with pytest.raises(RunDirectoryError, match="holds no checkpoint .*10.orbax-checkpoint-tmp is left as it is.*--overwrite"):
        train(ToyLearner(), run, tmp_path, algo="toy", env_id="none", resume=True)
    assert unfinished.is_dir() and len(read_metrics(tmp_path)) == 2


def test_resume_refuses_another_config_and_extends_a_larger_budget(tmp_path):
    train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none")
    before = read_metrics(tmp_path)
    for other in (dataclasses.replace(RUN, log_every=8 * 10), dataclasses.replace(RUN, total_steps=8 * 20)):
        with pytest.raises(RunDirectoryError, match=r"cannot resume .* with another config: run\.\w+ \(stored"):
            train(ToyLearner(), other, tmp_path, algo="toy", env_id="none", resume=True)
    with pytest.raises(RunDirectoryError, match=r"learner.learning_rate \(stored 0.1, given 0.2\)"):
        train(ToyLearner(ToyConfig(learning_rate=0.2)), RUN, tmp_path, algo="toy", env_id="none", resume=True)
    assert read_metrics(tmp_path) == before
    longer = dataclasses.replace(RUN, total_steps=8 * 50)
    extended = train(ToyLearner(), longer, tmp_path, algo="toy", env_id="none", resume=True)
    assert [r["updates"] for r in extended.records] == [45, 50]
    assert read_metrics(tmp_path)[: len(before)] == before
    assert json.loads((tmp_path / "config.json").read_text())["run"]["total_steps"] == 8 * 50


def test_same_run_ignores_the_recorded_machine(tmp_path):
    train(ToyLearner(), RUN, tmp_path, algo="toy", env_id="none", max_chunks=1)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["machine"]["backend"] == "cpu"
    config["machine"] = {"backend": "another machine"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert records_same_run(tmp_path, "toy", "none", RUN, ToyLearner().config)
    assert not records_same_run(tmp_path, "toy", "none", dataclasses.replace(RUN, seed=1), ToyLearner().config)


def test_checkpoint_round_trip(tmp_path):
    learner = ToyLearner()
    state = init_seeds(learner, seed=5, num_seeds=3)
    checkpointer = Checkpointer(tmp_path / "ckpt", keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, state, {"updates": step, "wall_time": 0.5})
    checkpointer.close()
    assert sorted(int(p.name) for p in (tmp_path / "ckpt").iterdir() if p.name.isdigit()) == [2, 3]
    restored, metadata = Checkpointer(tmp_path / "ckpt").restore(init_seeds(learner, seed=0, num_seeds=3))
    chex.assert_trees_all_equal(restored, state)
    assert metadata == {"updates": 3, "wall_time": 0.5}


def test_checkpoint_round_trip_with_zero_size_arrays(tmp_path):
    # MuJoCo states of models without actuator dynamics hold [num_seeds, 0] arrays
    state = {"act": jnp.zeros((3, 0), jnp.float32), "qpos": jnp.arange(6.0).reshape(3, 2)}
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.save(1, state, {"updates": 1})
    checkpointer.close()
    restored, _ = Checkpointer(tmp_path / "ckpt").restore(jax.tree.map(jnp.zeros_like, state))
    chex.assert_trees_all_equal_shapes_and_dtypes(restored, state)
    chex.assert_trees_all_equal(restored, state)


def test_seeds_in_a_batch_equal_seeds_alone():
    learner = ToyLearner()
    batch = init_seeds(learner, seed=3, num_seeds=3)
    alone = init_seeds(learner, seed=4, num_seeds=1)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], batch), jax.tree.map(lambda x: x[0], alone))
    assert not np.allclose(batch.params[0], batch.params[1])


@pytest.mark.parametrize("field,value", [("total_steps", 0), ("num_seeds", 0), ("keep_checkpoints", 0)])
def test_bad_run_config_names_field(field, value, tmp_path):
    import dataclasses

    with pytest.raises(ValueError, match=f"run.{field}={value}"):
        train(ToyLearner(), dataclasses.replace(RUN, **{field: value}), tmp_path, algo="toy", env_id="none")
    assert list(tmp_path.iterdir()) == []


def test_budget_smaller_than_one_update_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 8"):
        train(ToyLearner(), RunConfig(total_steps=4), tmp_path, algo="toy", env_id="none")


# ------------------------------------------------------- ahead-of-time programs, background saves


def test_ahead_of_time_programs_match_the_jitted_path_bit_for_bit(tmp_path):
    """`train` compiles its chunk and evaluation programs ahead of time (the evaluation on a
    background thread); the states and eval returns equal plain jit calls of the same functions."""
    learner, run = ToyLearner(), dataclasses.replace(RUN, eval_every=8 * 5)
    result = train(learner, run, tmp_path / "run", algo="toy", env_id="none")
    state = init_seeds(learner, run.seed, run.num_seeds)
    chunk, evaluate = make_chunk_fn(learner, 5), jax.jit(jax.vmap(learner.evaluate))
    keys = jnp.stack([jax.random.PRNGKey(seed) for seed in range(run.num_seeds)])
    for record in result.records:
        state, _ = chunk(state)
        expected = np.asarray(evaluate(state, loop.eval_keys(keys, record["updates"]))["eval_return"])
        np.testing.assert_array_equal(np.asarray(record["eval_return_per_seed"], np.float32), expected)
    chex.assert_trees_all_equal(result.state, state)


def test_ahead_of_time_falls_back_to_jit_for_other_arguments():
    jitted = jax.jit(lambda x: x * 2.0)
    program = AheadOfTime(jitted, jnp.zeros((3,), jnp.float32))
    assert program.compiled is None and float(program(jnp.ones((3,)))[0]) == 2.0  # not compiled yet: jit
    program.compile()
    np.testing.assert_array_equal(program(jnp.arange(3.0)), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(program(jnp.ones((2,), jnp.float32)), [2.0, 2.0])  # other shape: jit
    np.testing.assert_array_equal(program(jnp.ones((3,), jnp.int32)), [2.0, 2.0, 2.0])  # other dtype: jit


@struct.dataclass
class _WithConstants:
    x: jax.Array
    constants: np.ndarray = struct.field(pytree_node=False, default=None)  # like an MJX model's arrays


def test_ahead_of_time_accepts_states_with_static_array_fields():
    """A physics env state carries numpy constants as static fields; calls must not compare them."""
    state = _WithConstants(jnp.ones(2), np.zeros((0, 3)))
    program = AheadOfTime(jax.jit(lambda s: s.replace(x=s.x + 1.0)), state).compile()
    np.testing.assert_array_equal(program(program(state)).x, [3.0, 3.0])


KILLED_RUN = """
import os, pathlib, signal, sys
from jaxrl_suite.runner import checkpoints, loop
from tests.toy_learner import ToyLearner
from tests.test_runner import RUN

kill_at = int(sys.argv[2])
save = checkpoints.Checkpointer.save

def save_then_die(self, step, state, metadata):
    save(self, step, state, metadata)  # returns while Orbax writes in the background
    if step == kill_at:
        unfinished = any(self.directory.glob("*.orbax-checkpoint-tmp*"))
        pathlib.Path(sys.argv[3]).write_text("mid-save" if unfinished else "after-save")
        os.kill(os.getpid(), signal.SIGKILL)

checkpoints.Checkpointer.save = save_then_die
loop.train(ToyLearner(), RUN, sys.argv[1], algo="toy", env_id="none")
"""


def test_sigkill_during_a_background_save_resumes_from_an_intact_checkpoint(tmp_path):
    """The process is killed right after `save` hands checkpoint 25 to the background writer:
    the resumed run starts from the newest committed checkpoint (25 if it was finished, else 20)
    and ends bit for bit like an uninterrupted run."""
    import os
    import pathlib
    import subprocess
    import sys

    full = train(ToyLearner(), RUN, tmp_path / "full", algo="toy", env_id="none")
    script, marker = tmp_path / "killed_run.py", tmp_path / "killed_when"
    script.write_text(KILLED_RUN)
    root = pathlib.Path(__file__).resolve().parents[1]
    completed = subprocess.run([sys.executable, str(script), str(tmp_path / "cut"), "25", str(marker)], cwd=root,
                               env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)
    assert completed.returncode == -9, completed.stderr[-2000:]
    assert marker.read_text() in ("mid-save", "after-save")
    committed = Checkpointer(tmp_path / "cut" / "checkpoints").all_steps()
    assert committed and committed[-1] in (20, 25)
    resumed = train(ToyLearner(), RUN, tmp_path / "cut", algo="toy", env_id="none", resume=True)
    assert resumed.records[0]["updates"] == committed[-1] + 5
    chex.assert_trees_all_equal(resumed.state, full.state)
    assert _stable(read_metrics(tmp_path / "cut")) == _stable(read_metrics(tmp_path / "full"))
