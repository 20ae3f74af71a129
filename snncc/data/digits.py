"""sklearn's bundled 8×8 handwritten digits, upsampled for the seed-zoo tokenizers.

``sklearn.datasets.load_digits`` ships inside scikit-learn (1,797 images, 10 classes, pixel
values 0–16), so examples and tests never download anything. The split is stratified and fixed
by a seed, so the same call gives the same arrays on every machine.
"""

from __future__ import annotations

import numpy as np

from snncc.diagnostics import SnnccError

SPLITS = ("train", "test")


def _interp_matrix(src: int, dst: int) -> np.ndarray:
    """``[dst, src]`` linear-interpolation matrix, half-pixel centres (``align_corners=False``).

    Separable bilinear upsampling is then ``M @ img @ M.T``: plain numpy, no torch needed.
    """
    centres = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    centres = np.clip(centres, 0.0, src - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    frac = centres - lo
    m = np.zeros((dst, src))
    m[np.arange(dst), lo] += 1.0 - frac
    m[np.arange(dst), hi] += frac
    return m


def digits_indices(seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices into ``load_digits()`` of the train and test splits (stratified, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train_idx), np.sort(test_idx)


def digits(
    split: str = "train",
    size: int = 16,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """The digits ``split`` as ``(x, y)``: ``x`` float32 ``[n, 1, size, size]``, ``y`` int64.

    Images are scaled to [0, 1], upsampled bilinearly to ``size``, then standardised with the
    mean and standard deviation of the *training* split (one scalar each), so train and test use
    the same normalisation. ``seed`` fixes the stratified split; train and test are disjoint.
    """
    if split not in SPLITS:
        raise SnnccError(f"unknown digits split {split!r}", code="DA001", hint="use train or test")
    if size < 8:
        raise SnnccError(f"digits size must be >= 8, got {size}", code="DA002")
    from sklearn.datasets import load_digits

    data = load_digits()
    images = data.images.astype(np.float64) / 16.0
    labels = data.target.astype(np.int64)
    train_idx, test_idx = digits_indices(seed, test_fraction)
    m = _interp_matrix(images.shape[-1], size)
    up = np.einsum("ij,njk,lk->nil", m, images, m)
    mean, std = up[train_idx].mean(), up[train_idx].std()
    chosen = train_idx if split == "train" else test_idx
    x = ((up[chosen] - mean) / std).astype(np.float32)[:, None]
    return x, labels[chosen]
