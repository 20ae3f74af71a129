"""Datasets for the examples and tests, all available offline.

* :func:`digits` — sklearn's bundled 8×8 digits, upsampled (static images, ``[n, 1, s, s]``).
* :func:`gestures` — synthetic event-camera gestures (event frames, ``[n, T, 2, s, s]``).

Both return ``(x, y)`` numpy arrays (float32 inputs, int64 labels) and are deterministic.
Users' own data files (``energy --data`` / ``compile --eval`` ``FILE.npz``) are read and validated
by :func:`snncc.data.files.read_npz`; weights and data are checked for NaN / Inf by
:func:`snncc.data.files.check_finite`.
"""

from __future__ import annotations

from snncc.data.digits import digits, digits_indices
from snncc.data.gestures import CLASSES as GESTURE_CLASSES
from snncc.data.gestures import gestures

__all__ = ["GESTURE_CLASSES", "digits", "digits_indices", "gestures"]
