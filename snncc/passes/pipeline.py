"""The pass order, written once (code-style §2.5).

The full architecture order (architecture.md, "Passes"); passes not yet written come in later
issues and are added here, in this order, and nowhere else::

    canonicalize → fold_bn → infer_types → verify_spike_driven → select_slice(budget)
        → quantize(target) → lower(target) → balance_latency → partition(target)

Why this order: ``canonicalize`` removes no-op structure so that ``fold_bn`` finds ``Linear → BN``
adjacent; ``infer_types`` runs after both because they change which values are spikes;
``verify_spike_driven`` needs the kinds; slicing, quantization and lowering need a verified graph.
"""

from __future__ import annotations

from snncc.backends.lower.passes import balance_latency, lower
from snncc.passes.canonicalize import canonicalize
from snncc.passes.fold_bn import fold_bn
from snncc.passes.infer_types import infer_types
from snncc.passes.manager import PassFn
from snncc.passes.partition import partition
from snncc.passes.quantize import quantize
from snncc.passes.verify_spike_driven import verify_spike_driven

#: Target-independent front of the pipeline: up to and including spike-driven verification.
FRONT_PIPELINE: list[PassFn] = [
    canonicalize,
    fold_bn,
    canonicalize,  # again: folding through transposes leaves inverse Permute pairs to cancel
    infer_types,
    verify_spike_driven,
]

#: What ``snncc compile`` runs on a traced graph. Slice selection happens before tracing (each
#: elastic slice is its own static network, ``snncc.resources.slices``). ``lower`` and
#: ``balance_latency`` build the target program the emitters write (snncc.backends.lower);
#: they only annotate the graph, so ``partition`` sees the quantized graph.
COMPILE_PIPELINE: list[PassFn] = [
    *FRONT_PIPELINE,
    quantize,  # needs ctx.config["target"]
    lower,  # needs the target; leaves ctx.config["program_spec"] (None if not lowerable)
    balance_latency,  # depths and delays of that spec
    partition,  # needs ctx.config["target"]; leaves ctx.config["partition_plan"]
]
