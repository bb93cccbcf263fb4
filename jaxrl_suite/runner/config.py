"""RunConfig: what the run loop does around a learner (budget, seeds, logging, checkpoints).

Frozen and validated before anything compiles; errors name the field, the value and what is valid.
"""

from __future__ import annotations

import dataclasses

from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Budget and bookkeeping of one run (all learner-independent)."""

    total_steps: int = 500_000
    """Env steps per seed to train for."""
    seed: int = 0
    """First seed; seeds seed..seed+num_seeds-1 run as one vmapped program."""
    num_seeds: int = 1
    """Number of seeds trained together in one compiled program."""
    log_every: int = 0
    """Env steps between log points (one compiled chunk each; shortened by up to half when that
    makes the chunks divide the run, so one compiled program serves it); 0 = about 50 log points."""
    eval_every: int = 0
    """Env steps between deterministic evaluations; 0 = only at the end, -1 = never."""
    checkpoint_every: int = 0
    """Env steps between checkpoints (rounded to log points); 0 = at every log point."""
    keep_checkpoints: int = 3
    """How many of the latest checkpoints to keep."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    progress: bool = True
    """Show a progress bar (terminal) or periodic lines (otherwise)."""

    def validate(self) -> RunConfig:
        require(self.total_steps > 0, "run", "total_steps", self.total_steps, "a positive number of env steps")
        require(self.num_seeds >= 1, "run", "num_seeds", self.num_seeds, "an integer >= 1")
        require(self.seed >= 0, "run", "seed", self.seed, "an integer >= 0")
        require(self.log_every >= 0, "run", "log_every", self.log_every, "0 (automatic) or a positive step count")
        require(self.eval_every >= -1, "run", "eval_every", self.eval_every, "-1 (never), 0 (at the end) or a step count")
        require(self.checkpoint_every >= 0, "run", "checkpoint_every", self.checkpoint_every,
                 "0 (every log point) or a positive step count")
        require(self.keep_checkpoints >= 1, "run", "keep_checkpoints", self.keep_checkpoints, "an integer >= 1")
        return self
