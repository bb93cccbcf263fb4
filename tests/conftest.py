"""Shared pytest fixtures and settings for the jaxrl_suite test suite.

Tests run on CPU; slow learning/scale tests are marked `slow` and excluded by default.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA:CPU's multi-threaded Eigen pool can wedge when pytest-xdist workers share two cores.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
