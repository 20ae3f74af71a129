"""Lowering of quantized graphs to plain-data programs, and a numpy executor for them.

``snncc.backends.lower`` holds what every backend shares: the program spec
(:mod:`~snncc.backends.lower.spec`), the lowering pass (:mod:`~snncc.backends.lower.lower`),
latency balancing (:mod:`~snncc.backends.lower.balance`), the per-connection integer arithmetic
(:mod:`~snncc.backends.lower.kernels`), the numpy executor (:mod:`~snncc.backends.lower.simulate`)
and the host's encoding and readout (:mod:`~snncc.backends.lower.host`). It imports numpy and
the snncc core only (no torch, no Lava), so it runs on Python 3.10 and 3.11.
"""
