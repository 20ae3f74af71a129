"""Graph-to-graph passes and the manager that runs them (see ``pipeline.py`` for the order).

Each pass is a plain function ``(Graph, PassContext) -> Graph`` in its own module; the manager
(:func:`snncc.passes.manager.run_pipeline`) lints between passes and records a ``PassRecord`` per
pass. Importing this package needs numpy and networkx only.
"""

from __future__ import annotations

from snncc.passes.manager import PassContext, PassRecord, run_pipeline

__all__ = ["PassContext", "PassRecord", "run_pipeline"]
