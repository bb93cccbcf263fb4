"""Shared pytest fixtures and settings for the jaxrl_suite test suite.

Tests run on CPU; slow learning/scale tests are marked `slow` and excluded by default.
"""

import importlib.util
import os
import pathlib
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA:CPU's multi-threaded Eigen pool can wedge when pytest-xdist workers share two cores.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()


def load_experiment(name: str):
    """Imports experiments/<name>.py as a module (registered in sys.modules, where dataclasses
    look their module up); a generator for module-scoped fixtures, unregistered afterwards."""
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
