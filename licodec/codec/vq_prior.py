"""A learned prior over the codebook indices of :class:`~licodec.codec.vq.VQCodec`.

Mao et al. 2024 code every index of the VQGAN grid in ``log2(K)`` bits. Neighbouring 16x16
blocks of a photo are far from independent, so this module gives the indices a learned
distribution that the rANS coder uses instead: a small bidirectional transformer over the
index grid with a [MASK] token, as MaskGIT's (Chang et al. 2022, "MaskGIT: Masked Generative
Image Transformer", CVPR), used as an entropy model with a fixed decoding schedule, as M2T
does for latents (Mentzer et al. 2023, "M2T: Masking Transformers Twice for Faster Decoding of
Neural Images", ICCV).

Schedule (:func:`pass_map`): the positions of an ``h x w`` grid fall into :data:`PASSES` = 6
groups by their phase ``(i mod 4, j mod 4)``, coarse to fine::

    pass 0: i, j = 0 mod 4           1/16 of the grid, coded from nothing (the rung's marginal)
    pass 1: i, j = 2 mod 4           1/16
    pass 2: the rest of i, j even    1/8
    pass 3: i, j odd                 1/4   (all four diagonal neighbours known)
    pass 4: i even, j odd            1/4   (all four direct neighbours known)
    pass 5: i odd, j even            1/4   (all eight neighbours known)

Pass ``p`` codes the positions of group ``p`` given the values of every earlier group. The
schedule depends on the grid's size only, never on the content, so the encoder and the
decoder compute the same distributions; the decoder needs 6 forward passes (fewer on grids
too small to have every group).

Windows (:func:`windows`): attention costs the square of the grid's size, so the prior sees
windows of at most ``window x window`` indices (``VQConfig.prior_window``, 48: a Kodak grid,
48 x 32, is one window; a 2048 x 2048 tile, 128 x 128 indices, nine), each coded with the
schedule on its own and given no context from the others. Windows of the same shape run as
one batch. The coding order is pass by pass; within a pass, window shape by shape (in the
order they first occur row-major), window by window, position by position (row-major).

Network (:class:`IndexPrior`): the sequence of pass ``p`` holds the tokens of groups ``0..p``
only (later groups are absent, not masked: pass ``p`` costs as much as its share of the grid):
a per-rung embedding of each known index, the shared [MASK] vector at the positions of group
``p``, plus a per-rung and a per-pass vector; pre-norm transformer blocks whose attention
rotates queries and keys by their 2-D grid coordinates (rotary embeddings, Su et al. 2021,
"RoFormer", with half of each head's pairs turned by the row and half by the column), so
attention sees relative offsets and any grid size works; a per-rung linear head of ``K``
logits. Arbitrary masks (the whole grid with some positions [MASK], pass id :data:`FREE`) are
what lost-index restoration predicts (:func:`restore`); training uses both.

Coding: the network runs in float64 (a cached copy of the weights) and each coded position's
probabilities become a 16-bit CDF table of its own (:func:`quantize_cdfs`: every symbol at
least frequency 1, the rANS escape symbol exactly 1, the rest to the most probable symbol),
so a table does not change with the thread count or the CPU's kernels. The tables are made
pass by pass; :func:`encode` writes one rANS stream, :func:`decode` reads it back in the
same passes and re-encodes the result to check that it was consumed whole (like
:class:`licodec.entropy.rans.StreamDecoder`, with tables made per pass). Every stream holds
:data:`PAD_SYMBOLS` extra zeros first when the grid has fewer than 8 positions (CompressAI's
encoder buffer has one 32-bit word per symbol and its final state takes two).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy import rans
from licodec.errors import BitstreamError

SCHEDULE_VERSION = 1  # stored in the weights (IndexPrior.spec): a future schedule cannot mis-read old streams
PASSES = 6
FREE = PASSES  # pass id of an arbitrary mask (restoration)
PRECISION = 16
MIN_SYMBOLS = 8  # rANS streams of fewer symbols are padded with zeros of a one-symbol table
RESTORE_STEPS = 8  # MaskGIT-style iterations of lost-index restoration
ROPE_BASE = 64.0
DEFAULT_WINDOW = 48

# pass of the position (i, j) by (i mod 4, j mod 4)
_PHASES = np.array([[0, 4, 2, 4],
                    [5, 3, 5, 3],
                    [2, 4, 1, 4],
                    [5, 3, 5, 3]], dtype=np.int64)


def pass_map(h: int, w: int) -> np.ndarray:
    """``(h, w)`` int64: the pass that codes each position (module docstring)."""
    return _PHASES[np.arange(h)[:, None] % 4, np.arange(w)[None, :] % 4]


def schedule(h: int, w: int) -> list[tuple[int, np.ndarray]]:
    """The coding order of an ``h x w`` grid: ``(pass, flat row-major positions)`` for every
    pass that has positions, in order."""
    flat = pass_map(h, w).reshape(-1)
    return [(p, np.flatnonzero(flat == p)) for p in range(PASSES) if (flat == p).any()]


def pass_sizes(h: int, w: int) -> np.ndarray:
    """``(PASSES,)`` number of positions of each pass."""
    return np.bincount(pass_map(h, w).reshape(-1), minlength=PASSES)


def windows(h: int, w: int, size: int) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
    """The windows of an ``h x w`` grid (``size x size``, smaller at the bottom and right edges)
    grouped by shape: ``[((wh, ww), [(top, left), ...]), ...]``, shapes in the order they first
    occur row-major, corners row-major."""
    groups: dict = {}
    for top in range(0, h, size):
        for left in range(0, w, size):
            groups.setdefault((min(size, h - top), min(size, w - left)), []).append((top, left))
    return list(groups.items())


# -- the network ------------------------------------------------------------------------------
def rope_tables(coords: Tensor, head_dim: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``cos, sin`` ``(S, head_dim // 2)`` of the rotary angles of grid coordinates ``coords``
    ``(S, 2)``: the first half of each head's pairs turn with the row, the second with the column."""
    quarter = head_dim // 4
    freqs = ROPE_BASE ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    c = coords.to(torch.float64)
    angles = torch.cat([c[:, :1] * freqs, c[:, 1:] * freqs], dim=1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate consecutive pairs of the last dimension of ``x`` ``(..., S, head_dim)``."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


class PriorBlock(nn.Module):
    """Pre-norm transformer block: rotary multi-head self-attention, then a 4x GELU MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(width), nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, d))
        return x + self.mlp(self.norm2(x))


class IndexPrior(nn.Module):
    """The masked transformer over index grids (module docstring); one per codec, shared by
    the rungs (``rungs``: their codebook sizes), each with its own embedding and head.

    ``window``: the side of the windows it codes (module docstring). ``spec`` (a buffer, stored
    with the weights): layers, width, heads, :data:`SCHEDULE_VERSION` and window, checked against
    the codec's config when weights are loaded."""

    def __init__(self, rungs: tuple, width: int = 128, layers: int = 4, heads: int = 4,
                 window: int = DEFAULT_WINDOW) -> None:
        super().__init__()
        if width % heads or (width // heads) % 4:
            raise ValueError(f"prior width {width} must split into {heads} heads of a multiple of 4")
        if window < 4 or window % 4:
            raise ValueError(f"the prior's window must be a positive multiple of 4, got {window}")
        self.rung_sizes = tuple(int(k) for k in rungs)
        self.width, self.heads, self.window = width, heads, int(window)
        self.embed = nn.ModuleDict({f"k{k}": nn.Embedding(k, width) for k in self.rung_sizes})
        self.mask = nn.Parameter(torch.zeros(width))
        self.rung_bias = nn.Parameter(torch.zeros(len(self.rung_sizes), width))
        self.pass_embed = nn.Embedding(PASSES + 1, width)
        self.blocks = nn.ModuleList(PriorBlock(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.ModuleDict({f"k{k}": nn.Linear(width, k) for k in self.rung_sizes})
        for emb in self.embed.values():
            nn.init.normal_(emb.weight, std=0.02)
        nn.init.normal_(self.mask, std=0.02)
        nn.init.normal_(self.pass_embed.weight, std=0.02)
        for lin in self.head.values():  # uniform at start: an untrained prior codes at log2(K) bits
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.register_buffer("spec", torch.tensor([layers, width, heads, SCHEDULE_VERSION, window], dtype=torch.int64))

    def logits(self, size: int, tokens: Tensor, masked: Tensor, coords: Tensor, pass_id: int,
               out: Tensor | None = None) -> Tensor:
        """Logits ``(B, Q, K)`` for rung ``size`` (K).

        tokens ``(B, S)`` int64 indices (ignored where masked); masked ``(S,)`` or ``(B, S)``
        bool, the [MASK] positions; coords ``(S, 2)`` their grid coordinates; pass_id the pass
        (:data:`FREE` for an arbitrary mask); out ``(Q,)`` the sequence positions whose logits
        are returned (default all)."""
        r = self.rung_sizes.index(size)
        dtype = self.mask.dtype
        x = self.embed[f"k{size}"](tokens.clamp(0, size - 1))
        x = torch.where(masked[..., None], self.mask.to(x.dtype), x)
        x = x + self.rung_bias[r] + self.pass_embed.weight[pass_id]
        cos, sin = rope_tables(coords, self.width // self.heads, x.dtype if x.dtype.is_floating_point else dtype)
        for block in self.blocks:
            x = block(x, cos, sin)
        if out is not None:
            x = x[:, out]
        return self.head[f"k{size}"](self.norm(x))

    def scheduled_logits(self, size: int, indices: Tensor, p: int) -> tuple[Tensor, np.ndarray]:
        """Pass ``p`` on index grids ``indices`` ``(B, h, w)`` (values of later passes are not
        read): logits ``(B, Q, K)`` of the positions of group ``p`` given groups ``< p``, and
        those positions (flat, row-major, ``(Q,)``)."""
        b, h, w = indices.shape
        groups = pass_map(h, w).reshape(-1)
        seq = np.flatnonzero(groups <= p)
        is_query = groups[seq] == p
        dev = indices.device
        seq_t = torch.from_numpy(seq).to(dev)
        coords = torch.stack([seq_t // w, seq_t % w], dim=1)
        tokens = indices.reshape(b, -1).index_select(1, seq_t)
        out = torch.from_numpy(np.flatnonzero(is_query)).to(dev)
        return self.logits(size, tokens, torch.from_numpy(is_query).to(dev), coords, p, out), seq[is_query]

    def masked_logits(self, size: int, indices: Tensor, masked: Tensor) -> Tensor:
        """Logits ``(B, h*w, K)`` of every position of ``indices`` ``(B, h, w)`` given the
        positions not ``masked`` (``(B, h, w)`` bool): the restoration task (pass :data:`FREE`)."""
        b, h, w = indices.shape
        pos = torch.arange(h * w, device=indices.device)
        coords = torch.stack([pos // w, pos % w], dim=1)
        return self.logits(size, indices.reshape(b, -1), masked.reshape(b, -1), coords, FREE)


def _window_log_probs(prior: IndexPrior, size: int, indices: Tensor) -> Tensor:
    """``(B, h, w)`` log-probabilities of one window shape's grids under the schedule."""
    b, h, w = indices.shape
    flat = indices.reshape(b, -1)
    out = torch.zeros(b, h * w, dtype=torch.float32, device=indices.device)
    for p, _ in schedule(h, w):
        logits, pos = prior.scheduled_logits(size, indices, p)
        pos_t = torch.from_numpy(pos).to(indices.device)
        lp = torch.log_softmax(logits.float(), dim=-1)
        out = out.index_copy(1, pos_t, lp.gather(2, flat.index_select(1, pos_t)[..., None])[..., 0])
    return out.view(b, h, w)


def scheduled_log_probs(prior: IndexPrior, size: int, indices: Tensor) -> Tensor:
    """``(B, h, w)`` natural-log probability of each index of ``indices`` ``(B, h, w)`` under the
    schedule, window by window as it is coded (teacher forcing: pass ``p`` sees the true values
    of earlier groups)."""
    b, h, w = indices.shape
    groups = windows(h, w, prior.window)
    if len(groups) == 1 and len(groups[0][1]) == 1:
        return _window_log_probs(prior, size, indices)
    out = torch.zeros(b, h, w, dtype=torch.float32, device=indices.device)
    for (wh, ww), corners in groups:
        batch = torch.cat([indices[:, t : t + wh, c : c + ww] for t, c in corners])
        lp = _window_log_probs(prior, size, batch)
        for i, (t, c) in enumerate(corners):
            out[:, t : t + wh, c : c + ww] = lp[i * b : (i + 1) * b]
    return out


# -- coding -----------------------------------------------------------------------------------
def quantize_cdfs(probs: np.ndarray) -> np.ndarray:
    """Integer CDF tables ``(N, K + 2)`` int32 of probabilities ``(N, K)`` (float64, rows summing
    to about 1), CompressAI's layout: ``cdf[0] = 0``, symbol ``s`` has frequency
    ``cdf[s + 1] - cdf[s]``, the escape symbol ``K`` frequency 1 and ``cdf[K + 1] = 2**16``.

    Each symbol gets ``floor(p * (2**16 - 1 - K)) + 1`` (at least 1); what is left of
    ``2**16 - 1`` goes to the most probable symbol (the first one on ties). Everything is exact
    integer arithmetic on the float64 input, so equal inputs give equal tables."""
    p = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
    n, k = p.shape
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1), 1.0 / k)
    budget = (1 << PRECISION) - 1 - k
    if budget < k:
        raise ValueError(f"{k} symbols do not fit {PRECISION}-bit tables")
    freq = np.floor(p * budget).astype(np.int64) + 1
    left = (1 << PRECISION) - 1 - freq.sum(axis=1)  # >= -1 when the rows sum to 1 + rounding
    freq[np.arange(n), p.argmax(axis=1)] += left
    cdf = np.zeros((n, k + 2), dtype=np.int64)
    np.cumsum(freq, axis=1, out=cdf[:, 1 : k + 1])
    cdf[:, k + 1] = 1 << PRECISION
    return cdf.astype(np.int32)


def table_bits(cdf: np.ndarray, symbols: np.ndarray) -> float:
    """Bits that the tables ``cdf`` ``(N, K + 2)`` charge for ``symbols`` ``(N,)``: the code length
    rANS achieves up to its final state (and the padding of tiny streams)."""
    rows = np.arange(len(symbols))
    freq = cdf[rows, symbols + 1].astype(np.int64) - cdf[rows, symbols]
    return float(np.sum(PRECISION - np.log2(freq)))


def pad_count(n: int) -> int:
    """Zeros coded before ``n`` indices (none from :data:`MIN_SYMBOLS` indices on)."""
    return max(MIN_SYMBOLS - n, 0) if n else 0


_PAD_CDF = [0, (1 << PRECISION) - 1, 1 << PRECISION]  # the zeros of tiny streams: ~0 bits each


def stream_symbols(n: int) -> int:
    """Symbols of the rANS stream of an ``n``-index grid (the pad included)."""
    return n + pad_count(n)


def coding_prior(prior: IndexPrior, cache: dict) -> IndexPrior:
    """A float64 copy of ``prior`` in eval mode, cached in ``cache`` while the weights are unchanged
    (keyed by the parameters' identities and in-place version counters)."""
    key = tuple((id(t), t._version) for t in [*prior.parameters(), *prior.buffers()])
    if cache.get("key") != key:
        cache["prior"] = copy.deepcopy(prior).double().eval().requires_grad_(False)
        cache["key"] = key
    return cache["prior"]


@torch.no_grad()
def walk(prior64: IndexPrior, size: int, grid: Tensor, step) -> None:
    """Go through the coding order of index grid ``grid`` ``(1, h, w)`` int64 (module docstring):
    for every (pass, window shape) the float64 prior makes the CDF tables ``(N, K + 2)`` of those
    windows' positions of the pass, and ``step(cdf, positions)`` (flat, row-major ``(N,)``) codes
    them, or decodes them and returns their values, which are written into ``grid``."""
    h, w = grid.shape[1:]
    flat = grid.view(-1)
    groups = windows(h, w, prior64.window)
    for p in range(PASSES):
        for (wh, ww), corners in groups:
            if not (pass_map(wh, ww) == p).any():
                continue
            batch = torch.stack([grid[0, t : t + wh, c : c + ww] for t, c in corners])
            logits, pos = prior64.scheduled_logits(size, batch, p)
            probs = torch.softmax(logits.double(), dim=-1).reshape(-1, size).numpy()
            rows, cols = pos // ww, pos % ww
            positions = np.concatenate([(t + rows) * w + c + cols for t, c in corners])
            values = step(quantize_cdfs(probs), positions)
            if values is not None:
                flat[torch.from_numpy(positions)] = torch.from_numpy(np.asarray(values, dtype=np.int64))


def _tables(cdfs: list[np.ndarray], pad: int) -> rans.RansTables:
    """One table per symbol: ``pad`` zeros' table first, then the CDF rows in coding order."""
    rows = [_PAD_CDF] * pad + [row for c in cdfs for row in c.tolist()]
    return rans.RansTables(cdfs=rows, cdf_lengths=[len(r) for r in rows], offsets=[0] * len(rows))


def _grid(indices: np.ndarray) -> Tensor:
    h, w = indices.shape
    return torch.from_numpy(np.array(indices, dtype=np.int64, copy=True)).view(1, h, w)


def encode(prior64: IndexPrior, size: int, indices: np.ndarray) -> tuple[bytes, float]:
    """rANS bytes of an index grid ``(h, w)`` under the float64 prior, and the tables' bits."""
    n = indices.size
    if not n:
        return b"", 0.0
    grid = _grid(indices)
    flat = grid.view(-1).numpy().copy()
    cdfs, symbols = [], []

    def step(cdf, positions):
        cdfs.append(cdf)
        symbols.append(flat[positions])

    walk(prior64, size, grid, step)
    pad = pad_count(n)
    sym = np.concatenate([np.zeros(pad, dtype=np.int64), *symbols])
    bits = sum(table_bits(c, s) for c, s in zip(cdfs, symbols))
    return rans.encode(sym, np.arange(len(sym)), _tables(cdfs, pad)), bits


def estimate_bits(prior64: IndexPrior, size: int, indices: np.ndarray) -> float:
    """The bits the tables charge for an index grid ``(h, w)`` (what :func:`encode` writes, up to
    rANS's final state of 32 to 64 bits and the rounding to whole 32-bit words)."""
    grid = _grid(indices)
    flat = grid.view(-1).numpy().copy()
    bits = []
    walk(prior64, size, grid, lambda cdf, positions: bits.append(table_bits(cdf, flat[positions])))
    return float(sum(bits))


def decode(prior64: IndexPrior, size: int, data: bytes, h: int, w: int, name: str = "idx") -> np.ndarray:
    """Inverse of :func:`encode`: the ``(h, w)`` int64 grid. :class:`BitstreamError` for a stream
    that is too short or long, decodes to an out-of-range value, or is not consumed whole."""
    n = h * w
    if not n:
        if data:
            raise BitstreamError(f"sub-stream {name} holds {len(data)} bytes for an empty grid")
        return np.zeros((h, w), dtype=np.int64)
    total = stream_symbols(n)
    rans.check_length(len(data), total, f"sub-stream {name}")
    decoder = rans.ans.RansDecoder()
    # zero padding keeps a damaged stream's over-reads inside our buffer (as rans.StreamDecoder)
    decoder.set_stream(data + bytes(rans._padding(data, total)))
    pad = pad_count(n)
    if pad and any(decoder.decode_stream([0] * pad, [_PAD_CDF], [3], [0])):
        raise BitstreamError(f"sub-stream {name} is corrupted (its padding does not decode to zeros)")
    cdfs, symbols = [], []

    def step(cdf, positions):
        rows = cdf.tolist()
        values = np.asarray(decoder.decode_stream(list(range(len(rows))), rows, [size + 2] * len(rows),
                                                  [0] * len(rows)), dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() >= size):
            raise BitstreamError(f"sub-stream {name} is corrupted (decodes to an index outside [0, {size}))")
        cdfs.append(cdf)
        symbols.append(values)
        return values

    grid = torch.zeros(1, h, w, dtype=torch.int64)
    walk(prior64, size, grid, step)
    # consumed whole? re-encode and compare byte for byte (as rans.decode does)
    sym = np.concatenate([np.zeros(pad, dtype=np.int64), *symbols])
    if rans.encode(sym, np.arange(len(sym)), _tables(cdfs, pad)) != data:
        raise BitstreamError(f"sub-stream {name} is corrupted or was not consumed whole")
    return grid[0].numpy().copy()


# -- lost indices -----------------------------------------------------------------------------
@torch.no_grad()
def restore(prior64: IndexPrior, size: int, indices: np.ndarray, lost: np.ndarray,
            steps: int = RESTORE_STEPS) -> np.ndarray:
    """Fill the ``lost`` positions (``(h, w)`` bool) of ``indices`` ``(h, w)`` with the prior's
    most probable values given the others, MaskGIT-style, window by window (the windows of the
    coding, batched by shape): at step ``t`` of ``steps`` every lost position of a window is
    predicted, and the most confident ones (largest top probability; the first row-major
    position on ties) are fixed, so that ``floor(n * cos(pi/2 * (t+1)/steps))`` of the window's
    ``n`` stay unknown. Deterministic (float64 network, no sampling). Returns a new array."""
    h, w = indices.shape
    out = np.array(indices, dtype=np.int64, copy=True)
    unknown = np.array(lost, dtype=bool, copy=True).reshape(h, w)
    out[unknown] = 0
    for (wh, ww), corners in windows(h, w, prior64.window):
        corners = [(t, c) for t, c in corners if unknown[t : t + wh, c : c + ww].any()]
        counts = [int(unknown[t : t + wh, c : c + ww].sum()) for t, c in corners]
        for step in range(steps):
            masks = np.stack([unknown[t : t + wh, c : c + ww] for t, c in corners]) if corners else None
            if masks is None or not masks.any():
                break
            batch = torch.from_numpy(np.stack([out[t : t + wh, c : c + ww] for t, c in corners]))
            logits = prior64.masked_logits(size, batch, torch.from_numpy(masks))
            for i, ((t, c), n) in enumerate(zip(corners, counts)):
                pos = np.flatnonzero(masks[i].reshape(-1))
                if not pos.size:
                    continue
                probs = torch.softmax(logits[i, torch.from_numpy(pos)].double(), dim=-1).numpy()
                best, conf = probs.argmax(axis=1), probs.max(axis=1)
                stay = int(math.floor(n * math.cos(math.pi / 2 * (step + 1) / steps))) if step < steps - 1 else 0
                order = np.lexsort((pos, -conf))[: max(len(pos) - stay, 1)]
                rows, cols = t + pos[order] // ww, c + pos[order] % ww
                out[rows, cols] = best[order]
                unknown[rows, cols] = False
    return out


def restore_from_neighbours(indices: np.ndarray, lost: np.ndarray, fallback: int = 0) -> np.ndarray:
    """The prior-free restoration: every lost position takes the most frequent index among its
    known 8-neighbours (the smallest index on ties), in waves from the known positions inwards
    (positions filled in one wave count as known in the next); a grid with nothing known takes
    ``fallback`` everywhere. Returns a new array."""
    h, w = indices.shape
    out = np.array(indices, dtype=np.int64, copy=True)
    unknown = np.array(lost, dtype=bool, copy=True).reshape(h, w)
    if unknown.all():
        out[:] = fallback
        return out
    offsets = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
    while unknown.any():
        vals = np.full((8, h, w), -1, dtype=np.int64)  # neighbour values, -1: unknown or outside
        for s, (di, dj) in enumerate(offsets):
            src = np.where(unknown, -1, out)
            vals[s, max(-di, 0) : h - max(di, 0), max(-dj, 0) : w - max(dj, 0)] = \
                src[max(di, 0) : h + min(di, 0), max(dj, 0) : w + min(dj, 0)]
        counts = (vals[:, None] == vals[None, :]).sum(axis=1)  # (8, h, w): how often each slot's value occurs
        counts = np.where(vals >= 0, counts, 0)
        key = counts * (1 << 20) - np.where(vals >= 0, vals, 0)  # most frequent, then smallest
        slot = key.argmax(axis=0)
        best = np.take_along_axis(vals, slot[None], axis=0)[0]
        fill = unknown & (best >= 0)
        out[fill] = best[fill]
        unknown &= ~fill
    return out


def loss_mask(h: int, w: int, fraction: float, seed: int = 0, rows: bool = False, salt: int = 0) -> np.ndarray:
    """A simulated loss: ``(h, w)`` bool with ``round(fraction * h * w)`` positions (``rows``:
    ``round(fraction * h)`` whole rows, what a lost chunk of a row-major stream removes) chosen
    by ``numpy.random.default_rng([seed, salt])`` (``salt``: e.g. the tile index)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"the lost fraction must lie in [0, 1], got {fraction}")
    rng = np.random.default_rng([int(seed), int(salt)])
    mask = np.zeros((h, w), dtype=bool)
    if rows:
        mask[rng.permutation(h)[: int(round(fraction * h))]] = True
    else:
        mask.reshape(-1)[rng.permutation(h * w)[: int(round(fraction * h * w))]] = True
    return mask
