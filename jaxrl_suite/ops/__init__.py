"""Fused sequence ops: Forgetting Attention (FoX, arXiv 2503.02130) with ACP (arXiv 2504.06949).

`forgetting_attention` dispatches to a dense reference, a blockwise plain-JAX kernel or a Pallas GPU kernel.
"""

from jaxrl_suite.ops.acp import ACPStats, acp_stats
from jaxrl_suite.ops.forgetting_attention import IMPLEMENTATIONS, forgetting_attention

__all__ = ["ACPStats", "IMPLEMENTATIONS", "acp_stats", "forgetting_attention"]
