"""Running compiled builds: open and verify a build, feed it inputs, run it on a simulator in
the runtime environment, and compare its spikes with the bit-accurate reference.

Imports numpy and the snncc core only at module level (torch is needed just to re-trace the
float model for drift, imported there).
"""
