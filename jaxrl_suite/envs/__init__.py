"""One functional environment interface over gymnax, Brax and MuJoCo Playground (DMC).

`make("gymnax/CartPole-v1")` returns a fully wrapped single env; vmap reset/step for batches.
"""

from jaxrl_suite.envs.core import Env, State, Wrapper
from jaxrl_suite.envs.registry import env_spec, list_env_ids, make, make_raw
from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.envs.wrappers import ActionRescale, AutoReset, EpisodeStats, TimeLimit, wrap

__all__ = [
    "ActionRescale",
    "AutoReset",
    "Box",
    "Discrete",
    "Env",
    "EpisodeStats",
    "State",
    "TimeLimit",
    "Wrapper",
    "env_spec",
    "list_env_ids",
    "make",
    "make_raw",
    "wrap",
]
