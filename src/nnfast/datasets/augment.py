"""Data augmentation for image batches (AlexNet's technique, for small images).

Every function takes a batch ``x`` of shape (N, C, H, W) and a ``numpy.random.Generator`` and
returns a new array of the same shape and dtype; the input is never modified.  They draw only
from the generator they are given, never from the global NumPy RNG, so adding augmentation to a
seeded training run does not change its batch sampling or dropout masks.

``Augmenter`` chains them with its own seeded generator and is what ``Trainer(augment=...)``
and ``nnfast train --augment`` use::

    aug = Augmenter(shift=2, noise=0.02, seed=0, image_shape=(1, 28, 28))
    x_batch = aug(x_batch)        # (N, 784) or (N, 1, 28, 28) in, same shape out
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Augmenter", "random_shift", "horizontal_flip", "gaussian_noise"]


def _check_batch(x: Any, where: str) -> npt.NDArray[Any]:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{where}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    return x


def random_shift(x: npt.NDArray[Any], max_shift: int,
                 rng: np.random.Generator) -> npt.NDArray[Any]:
    """Translate each image by whole pixels, independently in each axis, within
    ``[-max_shift, max_shift]``; vacated pixels are 0 (a random crop of the zero-padded image).
    """
    where = "random_shift"
    x = _check_batch(x, where)
    if max_shift < 0 or int(max_shift) != max_shift:
        raise ValueError(f"{where}: max_shift must be an int >= 0, got {max_shift!r}")
    s = int(max_shift)
    n, _, h, w = x.shape
    shifts = rng.integers(-s, s + 1, size=(n, 2))
    if s == 0:
        return x.copy()
    padded = np.zeros(x.shape[:2] + (h + 2 * s, w + 2 * s), dtype=x.dtype)
    padded[:, :, s:s + h, s:s + w] = x
    out = np.empty_like(x)
    for i, (dy, dx) in enumerate(shifts):
        # The image content moves by (dy, dx): read the window that starts at s - d.
        out[i] = padded[i, :, s - dy:s - dy + h, s - dx:s - dx + w]
    return out


def horizontal_flip(x: npt.NDArray[Any], probability: float,
                    rng: np.random.Generator) -> npt.NDArray[Any]:
    """Mirror each image left-right with the given probability (not for digits: a mirrored
    digit is another glyph; for natural images)."""
    where = "horizontal_flip"
    x = _check_batch(x, where)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"{where}: probability must be in [0, 1], got {probability!r}")
    flip = rng.random(x.shape[0]) < probability
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def gaussian_noise(x: npt.NDArray[Any], std: float, rng: np.random.Generator) -> npt.NDArray[Any]:
    """Add independent N(0, std**2) noise to every pixel (in x's dtype; no clipping)."""
    where = "gaussian_noise"
    x = _check_batch(x, where)
    if std < 0:
        raise ValueError(f"{where}: std must be >= 0, got {std!r}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: x must be float32 or float64, got {x.dtype}")
    return x + (std * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)


class Augmenter:
    """Random shift, then horizontal flip, then noise, with its own seeded generator.

    ``shift``: max whole-pixel translation (0: off); ``flip``: probability of a left-right
    mirror (0: off); ``noise``: std of added Gaussian noise (0: off); ``seed``: seed of the
    ``np.random.default_rng`` it draws from.  ``image_shape`` (C, H, W) lets it take flattened
    batches (N, C*H*W): they are reshaped, augmented and returned flattened.

    Calling it returns a new array of the input's shape and dtype.
    """

    def __init__(self, shift: int = 0, flip: float = 0.0, noise: float = 0.0, seed: Any = None,
                 image_shape: Optional[Sequence[int]] = None) -> None:
        if shift < 0 or int(shift) != shift:
            raise ValueError(f"Augmenter: shift must be an int >= 0, got {shift!r}")
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"Augmenter: flip must be a probability in [0, 1], got {flip!r}")
        if noise < 0:
            raise ValueError(f"Augmenter: noise must be >= 0, got {noise!r}")
        self.shift = int(shift)
        self.flip = float(flip)
        self.noise = float(noise)
        self.seed = seed
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_spec(cls, spec: Optional[str], seed: Any = None,
                  image_shape: Optional[Sequence[int]] = None) -> Augmenter:
        """Build from text such as ``"shift=2,noise=0.05"``, ``"shift,flip"`` or ``"none"``.

        A bare name takes its default strength: shift 2 pixels, flip probability 0.5,
        noise std 0.05.
        """
        defaults = {"shift": 2, "flip": 0.5, "noise": 0.05}
        kwargs: Dict[str, Any] = {}
        text = (spec or "").strip().lower()
        if text in ("", "none", "off"):
            return cls(seed=seed, image_shape=image_shape)
        for item in text.split(","):
            name, _, value = item.strip().partition("=")
            name = name.strip()
            if name not in defaults:
                raise ValueError(f"augment: unknown augmentation {name!r} in {spec!r}; "
                                 f"use shift, flip or noise, e.g. 'shift=2,noise=0.05'")
            try:
                kwargs[name] = type(defaults[name])(value) if value else defaults[name]
            except ValueError:
                raise ValueError(f"augment: {name} needs a number, got {value!r}") from None
        return cls(seed=seed, image_shape=image_shape, **kwargs)

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.noise)

    def __repr__(self) -> str:
        return (f"Augmenter(shift={self.shift}, flip={self.flip}, noise={self.noise}, "
                f"seed={self.seed})")

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[Any]:
        x = np.asarray(x)
        shape = x.shape
        if x.ndim == 2 and self.image_shape is not None:
            if int(np.prod(self.image_shape)) != shape[1]:
                raise ValueError(f"Augmenter: a flattened batch of {shape[1]} features does not "
                                 f"match image_shape {self.image_shape}")
            x = x.reshape((shape[0],) + self.image_shape)
        elif x.ndim != 4:
            raise ValueError(f"Augmenter: x must be (N, C, H, W), or (N, C*H*W) with "
                             f"image_shape given, got shape {shape}")
        out = x
        if self.shift:
            out = random_shift(out, self.shift, self.rng)
        if self.flip:
            out = horizontal_flip(out, self.flip, self.rng)
        if self.noise:
            out = gaussian_noise(out, self.noise, self.rng)
        if out is x:
            out = x.copy()
        return out.reshape(shape)
