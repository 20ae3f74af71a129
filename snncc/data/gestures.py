"""A synthetic event-camera gesture set, generated on the fly (no downloads, deterministic by seed).

Why synthetic: the real DVS gesture sets are gigabytes behind a licence click, and the examples and
tests need a few hundred event-frame samples in a second. Each sample is a bright pattern moving
over a dim background, rendered with anti-aliased edges, and turned into events the way a DVS
pixel produces them: an ON event where the log intensity rises by more than a contrast threshold
between two sub-steps, an OFF event where it falls. Events are binned into ``T`` frames
(``substeps`` sub-steps per frame, so a frame pixel holds a count in ``0 … substeps``), then
corrupted with sensor noise: random background events (rate ``noise`` per pixel, polarity and
frame) and dropped events (probability ``drop`` each).

Classes (:data:`CLASSES`): a bar sweeping right / left / up / down, a bar rotating clockwise /
counter-clockwise about a point near the centre, and a ring expanding / contracting. Per-sample
randomness covers position, size, thickness, speed, tilt, start angle, brightness and contrast.
Directions are in image coordinates: "up" means towards row 0; "clockwise" as seen on screen.

Output layout: ``x`` float32 ``[n, T, 2, size, size]`` (channel 0 = ON, 1 = OFF), ``y`` int64;
exactly ``n_per_class`` samples per class, in a seeded random order.
"""

from __future__ import annotations

import numpy as np

from snncc.diagnostics import SnnccError

CLASSES = (
    "bar_right",
    "bar_left",
    "bar_up",
    "bar_down",
    "rotate_cw",
    "rotate_ccw",
    "ring_expand",
    "ring_contract",
)
SPLITS = ("train", "test")
_CONTRAST_THRESHOLD = 0.15  # log-intensity change that triggers an event (typical DVS: 0.1-0.3)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in ``[-1, 1]``: ``u`` grows to the right, ``v`` grows downwards."""
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    v, u = np.meshgrid(c, c, indexing="ij")
    return u, v


def _soft(dist: np.ndarray, half_width: float, px: float) -> np.ndarray:
    """Anti-aliased band indicator: ~1 where ``|dist| < half_width``, a one-pixel ramp at edges."""
    return 1.0 / (1.0 + np.exp((np.abs(dist) - half_width) / (0.5 * px)))


def _bar_sweep(cls: int, tau: np.ndarray, u, v, px, rng: np.random.Generator) -> np.ndarray:
    """A straight bar moving perpendicular to itself (right, left, up or down)."""
    direction = (0.0, np.pi, -np.pi / 2, np.pi / 2)[cls] + rng.uniform(-0.2, 0.2)
    du, dv = np.cos(direction), np.sin(direction)  # motion direction in (u, v)
    start, travel = rng.uniform(-0.75, -0.35), rng.uniform(0.8, 1.2)
    lateral, half_len = rng.uniform(-0.3, 0.3), rng.uniform(0.35, 0.9)
    half_w = rng.uniform(0.08, 0.16)
    along = u * du + v * dv  # coordinate along the motion
    across = -u * dv + v * du  # coordinate along the bar
    pos = (start + travel * tau)[:, None, None]
    return _soft(along[None] - pos, half_w, px) * _soft(across - lateral, half_len, px)[None]


def _bar_rotate(cls: int, tau: np.ndarray, u, v, px, rng: np.random.Generator) -> np.ndarray:
    """A bar rotating about its centre; on screen (v downwards) +angle is clockwise."""
    sign = 1.0 if cls == 4 else -1.0
    cu, cv = rng.uniform(-0.25, 0.25, size=2)
    half_len, half_w = rng.uniform(0.45, 0.8), rng.uniform(0.07, 0.14)
    angle = rng.uniform(0, np.pi) + sign * rng.uniform(0.7, 1.3) * tau
    ca, sa = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    x, y = (u - cu)[None], (v - cv)[None]
    along = x * ca + y * sa
    across = -x * sa + y * ca
    return _soft(across, half_w, px) * _soft(along, half_len, px)


def _ring(cls: int, tau: np.ndarray, u, v, px, rng: np.random.Generator) -> np.ndarray:
    """A ring whose radius grows (expand) or shrinks (contract) linearly in time."""
    cu, cv = rng.uniform(-0.2, 0.2, size=2)
    small, big = rng.uniform(0.12, 0.3), rng.uniform(0.55, 0.8)
    r0, r1 = (small, big) if cls == 6 else (big, small)
    radius = (r0 + (r1 - r0) * tau)[:, None, None]
    half_w = rng.uniform(0.06, 0.12)
    dist = np.sqrt((u - cu) ** 2 + (v - cv) ** 2)[None]
    return _soft(dist - radius, half_w, px)


_RENDER = (_bar_sweep,) * 4 + (_bar_rotate,) * 2 + (_ring,) * 2


def _events(frames: np.ndarray, T: int, substeps: int) -> np.ndarray:
    """Log-intensity frames ``[T*substeps + 1, H, W]`` -> event counts ``[T, 2, H, W]``."""
    diff = np.diff(frames, axis=0)
    on = (diff > _CONTRAST_THRESHOLD).astype(np.float32)
    off = (diff < -_CONTRAST_THRESHOLD).astype(np.float32)
    h, w = frames.shape[1:]
    ev = np.stack([on, off], axis=1).reshape(T, substeps, 2, h, w)
    return ev.sum(axis=1)


def _sample(cls: int, T: int, size: int, substeps: int, rng: np.random.Generator) -> np.ndarray:
    u, v = _grid(size)
    tau = np.linspace(0.0, 1.0, T * substeps + 1)
    shape = _RENDER[cls](cls, tau, u, v, 2.0 / size, rng)
    background, contrast = rng.uniform(0.15, 0.35), rng.uniform(0.5, 0.9)
    return _events(np.log(background + contrast * shape), T, substeps)


def _corrupt(ev: np.ndarray, noise: float, drop: float, rng: np.random.Generator) -> np.ndarray:
    """Drop each event with probability ``drop``; add background events at rate ``noise``."""
    kept = rng.binomial(ev.astype(np.int64), 1.0 - drop)
    return (kept + rng.binomial(1, noise, size=ev.shape)).astype(np.float32)


def gestures(
    n_per_class: int = 64,
    T: int = 4,
    size: int = 32,
    seed: int = 0,
    *,
    split: str = "train",
    noise: float = 0.02,
    drop: float = 0.1,
    substeps: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_per_class`` samples of each of the :data:`CLASSES` as ``(x, y)``.

    ``x`` is float32 ``[n, T, 2, size, size]`` (ON, OFF event counts per frame), ``y`` int64.
    The same ``(seed, split)`` always gives identical arrays; ``"train"`` and ``"test"`` draw from
    independent random streams of the same seed, so they share no sample.
    """
    if split not in SPLITS:
        raise SnnccError(f"unknown gestures split {split!r}", code="DA001", hint="train or test")
    if n_per_class < 1 or T < 1 or size < 8 or substeps < 1:
        raise SnnccError(
            f"gestures needs n_per_class >= 1, T >= 1, size >= 8, substeps >= 1; got "
            f"{n_per_class}, {T}, {size}, {substeps}",
            code="DA002",
        )
    if not (0.0 <= noise <= 1.0 and 0.0 <= drop <= 1.0):
        raise SnnccError(f"noise and drop are probabilities, got {noise}, {drop}", code="DA002")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), n_per_class)
    labels = labels[rng.permutation(len(labels))]
    x = np.stack([_sample(int(c), T, size, substeps, rng) for c in labels])
    return _corrupt(x, noise, drop, rng), labels
