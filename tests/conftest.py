"""Shared pytest fixtures and settings for the jaxrl_suite test suite.

Tests run on CPU; slow learning/scale tests are marked `slow` and excluded by default.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
