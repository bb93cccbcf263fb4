"""jaxrl_suite: accelerated reinforcement learning and sequence models in JAX.

Environments, learners, plasticity tools and kernels; see docs/architecture.md for the map.
"""

__version__ = "0.1.0"
