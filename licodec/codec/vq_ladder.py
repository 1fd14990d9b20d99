"""The codebook ladder of :class:`~licodec.codec.vq.VQCodec`: smaller codebooks by weighted
spherical k-means of the base codebook.

Mao et al. 2024 ("Extreme Image Compression using Fine-tuned VQGANs", DCC) obtain the codebooks
of the lower rates by clustering the trained VQGAN codebook with k-means and then fine-tune
each one. Here every code of the base codebook counts with its usage (how often encoder outputs
choose it), so the centroids go where the data are, and since the codes are L2-normalised the
clustering is spherical: points are assigned by cosine similarity and a centroid is the
normalised weighted sum of its members (Dhillon & Modha 2001). Initialisation is k-means++
(Arthur & Vassilvitskii 2007) with the squared chord distance ``2 - 2 cos``, drawn from a
seeded generator, and everything runs in float64: the ladder is a deterministic function of
the base codebook, its usage counts and the seed.
"""

from __future__ import annotations

import numpy as np
import torch

# a code nobody uses still counts this much (relative to the mean weight), so that a rung can
# be filled when fewer codes are in use than it has entries
_FLOOR = 1e-6


def spherical_kmeans(points: np.ndarray, weights: np.ndarray, k: int, iterations: int = 20,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster unit vectors ``points`` ``(n, d)`` with non-negative ``weights`` ``(n,)`` into ``k``
    unit centroids. Returns ``(centroids (k, d) float64, assignment (n,) int64)``.

    k-means++ seeding from ``numpy.random.default_rng([seed, k])``, then up to ``iterations``
    Lloyd steps (stopping early when the assignment no longer changes). An empty cluster keeps
    its centroid. Requires ``1 <= k <= n``."""
    x = np.asarray(points, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-300)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters of {n} points")
    w = np.asarray(weights, dtype=np.float64).clip(0)
    w = w + _FLOOR * max(w.mean(), 1e-300)
    rng = np.random.default_rng([seed, k])
    chosen = [int(rng.choice(n, p=w / w.sum()))]
    dist = np.clip(2 - 2 * x @ x[chosen[0]], 0, None)  # squared chord distance to the nearest centre
    for _ in range(1, k):
        p = w * dist
        p[chosen] = 0
        if p.sum() <= 0:  # every point coincides with a centre: any unchosen one
            p = w.copy()
            p[chosen] = 0
        c = int(rng.choice(n, p=p / p.sum()))
        chosen.append(c)
        dist = np.minimum(dist, np.clip(2 - 2 * x @ x[c], 0, None))
    centroids = x[chosen].copy()
    assign = np.argmax(x @ centroids.T, axis=1)
    for _ in range(iterations):
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, w[:, None] * x)
        norms = np.linalg.norm(sums, axis=1)
        full = norms > 1e-300
        centroids[full] = sums[full] / norms[full, None]
        new = np.argmax(x @ centroids.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
    return centroids, assign


def build_ladder(model, usage_counts: torch.Tensor | None = None, iterations: int = 20, seed: int = 0) -> None:
    """Make every rung of ``model`` (a :class:`~licodec.codec.vq.VQCodec`) smaller than the base
    from the base codebook: its codes are the usage-weighted spherical k-means centroids of the
    base codes, its usage shares the clusters' summed usage, and its 1x1 projections copies of
    the base rung's, the starting point of the per-rung fine-tuning (``licodec train --rung K``).

    ``usage_counts`` ``(K_base,)``: how often each base code is used; default the base codebook's
    moving-average usage (``ema_count``). Sets ``model.ladder_built``."""
    cfg = model.config
    base = model.rungs[f"k{cfg.codebook_size}"]
    codes = base.codebook.embed.detach().double().cpu().numpy()
    usage = base.codebook.ema_count if usage_counts is None else usage_counts
    usage = torch.as_tensor(usage).detach().double().cpu().numpy()
    if usage.shape != (cfg.codebook_size,):
        raise ValueError(f"usage_counts must have shape ({cfg.codebook_size},), got {usage.shape}")
    with torch.no_grad():
        for size in cfg.rungs[:-1]:
            centroids, assign = spherical_kmeans(codes, usage, size, iterations=iterations, seed=seed)
            mass = np.bincount(assign, weights=usage.clip(0), minlength=size) + 1e-12
            rung = model.rungs[f"k{size}"]
            rung.proj_in.load_state_dict(base.proj_in.state_dict())
            rung.proj_out.load_state_dict(base.proj_out.state_dict())
            rung.codebook.reset(torch.from_numpy(centroids), torch.from_numpy(mass))
        model.ladder_built.fill_(1)
