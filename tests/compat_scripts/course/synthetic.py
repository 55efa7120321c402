# Small seeded data sets for the chapter-style scripts (no download needed).
import numpy as np


def blobs(n, features=20, classes=4, seed=0):
    """Labels from a fixed random linear map of Gaussian features."""
    rng = np.random.RandomState(seed)
    w = rng.randn(features, classes)
    x = rng.randn(n, features)
    return x, np.argmax(x @ w + 0.5 * rng.randn(n, classes), axis=1)


def digits(n, size=28, classes=10, seed=0):
    """MNIST-shaped float32 images: noise plus a bright block whose place encodes the label."""
    rng = np.random.RandomState(seed)
    t = rng.randint(0, classes, n)
    x = (0.3 * rng.rand(n, 1, size, size)).astype(np.float32)
    step = (size - 6) // classes
    for i, label in enumerate(t):
        r = c = label * step
        x[i, 0, r:r + 6, c:c + 6] += 0.7
    return x, t
