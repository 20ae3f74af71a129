"""snncc.data.digits: offline, deterministic, stratified, disjoint, normalised."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from snncc.data import digits, digits_indices
from snncc.diagnostics import SnnccError


def test_shapes_types_and_split_sizes() -> None:
    x, y = digits("train", 16)
    xt, yt = digits("test", 16)
    assert x.shape == (len(y), 1, 16, 16) and xt.shape == (len(yt), 1, 16, 16)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert len(y) + len(yt) == 1797
    assert len(yt) == pytest.approx(0.25 * 1797, abs=1)


def test_split_is_disjoint_and_covers_the_data() -> None:
    tr, te = digits_indices()
    assert not set(tr) & set(te)
    assert sorted(set(tr) | set(te)) == list(range(1797))
    labels = load_digits().target
    _, y = digits("train")
    _, yt = digits("test")
    assert np.array_equal(y, labels[tr]) and np.array_equal(yt, labels[te])


def test_split_is_stratified() -> None:
    _, y = digits("train")
    _, yt = digits("test")
    frac = np.bincount(yt, minlength=10) / (np.bincount(y, minlength=10) + np.bincount(yt))
    assert np.all(np.abs(frac - 0.25) < 0.02)


def test_deterministic_and_seed_dependent() -> None:
    a, ya = digits("train", 16, seed=0)
    b, yb = digits("train", 16, seed=0)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    _, yc = digits("train", 16, seed=1)
    assert not np.array_equal(digits_indices(seed=1)[0], digits_indices(seed=0)[0])
    assert len(yc) == len(ya)


def test_normalised_with_training_statistics_and_upsampled_faithfully() -> None:
    x, _ = digits("train", 16)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1.0) < 1e-4
    # At size 8 the upsampling is the identity: the images are the raw digits, standardised.
    x8, _ = digits("train", 8)
    raw = load_digits().images[digits_indices()[0]] / 16.0
    std = (raw - raw.mean()) / raw.std()
    assert np.allclose(x8[:, 0], std, atol=1e-5)
    # Upsampling by 2 keeps the per-image mean of a smooth image close to the original's.
    x16, _ = digits("train", 16)
    assert np.allclose(x16[:, 0].mean(axis=(1, 2)), x8[:, 0].mean(axis=(1, 2)), atol=0.15)


def test_bad_arguments_are_snncc_errors() -> None:
    with pytest.raises(SnnccError):
        digits("validation")
    with pytest.raises(SnnccError):
        digits("train", size=4)
