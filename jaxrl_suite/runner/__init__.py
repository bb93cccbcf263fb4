"""The chunked run loop and everything a run directory holds (logs, checkpoints, plots).

Learners plug in through the `Learner` protocol; see docs/architecture.md.
"""

from jaxrl_suite.runner.checkpoints import Checkpointer, CheckpointError
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn, reduce_chunk_metrics, scan_updates
from jaxrl_suite.runner.config import RunConfig
from jaxrl_suite.runner.learner import Learner
from jaxrl_suite.runner.loop import RunResult, train, train_or_continue
from jaxrl_suite.runner.metrics_log import read_metrics
from jaxrl_suite.runner.plots import plot_runs
from jaxrl_suite.runner.run_dir import RunDirectoryError, read_config, records_same_run

__all__ = [
    "CheckpointError", "Checkpointer", "Learner", "RunConfig", "RunDirectoryError", "RunResult",
    "init_seeds", "make_chunk_fn", "plot_runs", "read_config", "read_metrics", "reduce_chunk_metrics",
    "scan_updates", "train", "train_or_continue",
    "records_same_run",
]
