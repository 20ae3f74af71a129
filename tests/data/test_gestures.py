"""snncc.data.gestures: synthetic ON/OFF event frames, deterministic by seed, balanced."""

from __future__ import annotations

import numpy as np
import pytest

from snncc.data import GESTURE_CLASSES, gestures
from snncc.diagnostics import SnnccError


def test_shapes_types_and_balance() -> None:
    x, y = gestures(5, T=4, size=32, seed=0)
    assert len(GESTURE_CLASSES) >= 6
    assert x.shape == (5 * len(GESTURE_CLASSES), 4, 2, 32, 32)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(np.bincount(y), [5] * len(GESTURE_CLASSES))
    assert len(set(y[:8].tolist())) > 1  # shuffled, not sorted by class
    # Event counts: non-negative integers, at most substeps (2) events + 1 noise event.
    assert np.array_equal(x, np.round(x)) and x.min() >= 0 and x.max() <= 3


def test_other_sizes_and_lengths() -> None:
    x, _ = gestures(1, T=6, size=20, seed=3, substeps=1)
    assert x.shape == (len(GESTURE_CLASSES), 6, 2, 20, 20)
    assert x.max() <= 2


def test_deterministic_by_seed_and_split() -> None:
    a, ya = gestures(3, seed=7)
    b, yb = gestures(3, seed=7)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    c, _ = gestures(3, seed=8)
    t, _ = gestures(3, seed=7, split="test")
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, t)


def _centroid(frame: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(frame)
    return np.array([cols.mean(), rows.mean()])  # (u, v): v grows downwards


def test_on_events_lead_and_off_events_trail_the_motion() -> None:
    x, y = gestures(4, T=4, size=32, seed=1, noise=0.0, drop=0.0)
    lead = {"bar_right": (0, 1), "bar_left": (0, -1), "bar_down": (1, 1), "bar_up": (1, -1)}
    for name, (axis, sign) in lead.items():
        for sample in x[y == GESTURE_CLASSES.index(name)]:
            for frame in sample:
                on, off = _centroid(frame[0]), _centroid(frame[1])
                assert sign * (on[axis] - off[axis]) > 0, name


def test_rings_grow_and_shrink() -> None:
    x, y = gestures(4, T=4, size=32, seed=2, noise=0.0, drop=0.0)
    for name, sign in (("ring_expand", 1), ("ring_contract", -1)):
        for sample in x[y == GESTURE_CLASSES.index(name)]:
            spread = []
            for frame in sample:
                events = frame.sum(0)
                rows, cols = np.nonzero(events)
                spread.append(np.hypot(cols - cols.mean(), rows - rows.mean()).mean())
            assert sign * (spread[-1] - spread[0]) > 0, name


def test_rotation_direction_is_visible_in_the_polarities() -> None:
    # Clockwise on screen: ON events lie clockwise of OFF events about the rotation centre,
    # so the mean cross product (OFF -> ON, about the centre of all events) is positive.
    x, y = gestures(6, T=4, size=32, seed=4, noise=0.0, drop=0.0)
    for name, sign in (("rotate_cw", 1), ("rotate_ccw", -1)):
        votes = []
        for sample in x[y == GESTURE_CLASSES.index(name)]:
            for frame in sample:
                centre = _centroid(frame.sum(0))
                on, off = (np.argwhere(frame[p])[:, ::-1] - centre for p in (0, 1))
                ang_on = np.arctan2(on[:, 1], on[:, 0])
                ang_off = np.arctan2(off[:, 1], off[:, 0])
                # double-angle mean: a bar is symmetric under rotation by pi
                d = np.angle(np.exp(2j * ang_on).mean() / np.exp(2j * ang_off).mean()) / 2
                votes.append(np.sign(d))
        assert sign * np.mean(votes) > 0.5, name


def test_noise_and_drop_change_event_counts_in_the_expected_direction() -> None:
    clean, _ = gestures(2, seed=5, noise=0.0, drop=0.0)
    noisy, _ = gestures(2, seed=5, noise=0.05, drop=0.0)
    dropped, _ = gestures(2, seed=5, noise=0.0, drop=0.5)
    assert noisy.sum() > clean.sum() * 1.2
    assert 0.35 < dropped.sum() / clean.sum() < 0.65


def test_bad_arguments_are_snncc_errors() -> None:
    with pytest.raises(SnnccError):
        gestures(2, split="val")
    with pytest.raises(SnnccError):
        gestures(0)
    with pytest.raises(SnnccError):
        gestures(2, noise=1.5)
