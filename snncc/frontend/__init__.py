"""PyTorch frontend: trace a module into the spike-graph IR (torch needed only here)."""

from snncc.frontend.trace import trace

__all__ = ["trace"]
