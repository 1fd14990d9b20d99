"""Entropy models with tables frozen at export time.

:class:`FrozenEntropyBottleneck` and :class:`FrozenGaussianConditional` are CompressAI's
``EntropyBottleneck`` (Ballé et al. 2018, "Variational image compression with a scale
hyperprior") and ``GaussianConditional`` with three changes:

* ``freeze()`` builds the quantized CDF tables and records a SHA-256 fingerprint of
  every parameter that determines them. Tables and fingerprint are buffers, so they
  travel in the exported weights; loading never rebuilds them.
* ``compress``/``decompress`` refuse tables that are missing or stale (parameters
  changed since ``freeze()``), with a :class:`~licodec.errors.LicodecError`.
* Coding goes through :mod:`licodec.entropy.rans` (per-instance coder, int32 arrays,
  whole-stream check) for one image (batch size 1) at a time.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from licodec._compat import compressai_core
from licodec.entropy import rans
from licodec.errors import LicodecError

EntropyBottleneck = compressai_core().EntropyBottleneck
GaussianConditional = compressai_core().GaussianConditional

TABLE_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length")
# buffers that freeze() derives from the parameters and the config; training state can drop them
DERIVED_BUFFERS = TABLE_BUFFERS + ("tables_fingerprint", "scale_table")


def load_trainable_state(model, state: dict) -> None:
    """Load a training checkpoint's state into ``model``, ignoring derived entropy-table buffers
    (they are rebuilt by ``freeze()`` and may come from another table layout)."""
    state = {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")


def default_scale_table(min_scale: float = 0.11, max_scale: float = 256.0, levels: int = 64) -> list[float]:
    """Log-spaced Gaussian scales, one CDF table each (as in CompressAI's models)."""
    import math

    step = (math.log(max_scale) - math.log(min_scale)) / (levels - 1)
    return [math.exp(math.log(min_scale) + i * step) for i in range(levels)]


def _fingerprint(tensors) -> Tensor:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return torch.frombuffer(bytearray(h.digest()), dtype=torch.uint8).clone()


class _FrozenTables:
    """Mixin: fingerprinted tables, a fresh-check, and cached coder tables."""

    def _init_frozen(self) -> None:
        self.register_buffer("tables_fingerprint", torch.zeros(32, dtype=torch.uint8))
        self._rans_cache = None

    def _table_sources(self) -> list[Tensor]:
        raise NotImplementedError

    def _build_tables(self) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def freeze(self) -> None:
        """Build the CDF tables from the current parameters and record their fingerprint."""
        self._build_tables()
        self.tables_fingerprint.copy_(_fingerprint(self._table_sources()))
        self._rans_cache = None

    def tables_are_fresh(self) -> bool:
        if self._quantized_cdf.numel() == 0 or not bool(self.tables_fingerprint.any()):
            return False
        return torch.equal(self.tables_fingerprint, _fingerprint(self._table_sources()))

    def rans_tables(self) -> rans.RansTables:
        if self._quantized_cdf.numel() == 0 or not bool(self.tables_fingerprint.any()):
            raise LicodecError(
                f"{type(self).__name__}: entropy tables were never frozen; export the weights (freeze()) first"
            )
        if not torch.equal(self.tables_fingerprint, _fingerprint(self._table_sources())):
            raise LicodecError(
                f"{type(self).__name__}: entropy tables are stale (parameters changed since freeze()); "
                "freeze() again before compressing"
            )
        key = (self._quantized_cdf.data_ptr(), self._quantized_cdf._version)
        if self._rans_cache is None or self._rans_cache[0] != key:
            tables = rans.RansTables.from_buffers(self._quantized_cdf, self._cdf_length, self._offset)
            self._rans_cache = (key, tables)
        return self._rans_cache[1]

    def resize_table_buffers(self, state_dict: dict, prefix: str) -> None:
        """Give the table buffers the shapes found in ``state_dict`` so it can be loaded."""
        for name in TABLE_BUFFERS:
            key = prefix + name
            if key in state_dict:
                getattr(self, name).resize_(state_dict[key].shape)


class FrozenEntropyBottleneck(_FrozenTables, EntropyBottleneck):
    """Factorized prior for the hyper-latent ``z`` (shape ``(1, C, h, w)``, real values)."""

    def __init__(self, channels: int, **kwargs) -> None:
        super().__init__(channels, **kwargs)
        self._init_frozen()

    def _table_sources(self) -> list[Tensor]:
        return [p for _, p in sorted(self.named_parameters())]

    def _build_tables(self) -> None:
        self.update(force=True)

    def medians(self) -> Tensor:
        """Per-channel medians, shape ``(1, C, 1, 1)``."""
        return self.quantiles[:, 0, 1].reshape(1, -1, 1, 1)

    def _indexes(self, shape) -> Tensor:
        c = shape[1]
        return torch.arange(c, dtype=torch.int32).reshape(1, c, 1, 1).expand(shape)

    def likelihood_of(self, z_hat: Tensor) -> Tensor:
        """Likelihoods of already quantized values ``z_hat`` ``(B, C, h, w)``, differentiable in
        ``z_hat`` (encode-time refinement rounds softly and needs the gradient)."""
        values = z_hat.transpose(0, 1).reshape(z_hat.shape[1], 1, -1)
        likelihood, _, _ = self._likelihood(values)
        likelihood = self.likelihood_lower_bound(likelihood)
        c, b = z_hat.shape[1], z_hat.shape[0]
        return likelihood.reshape(c, b, *z_hat.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def compress_tensor(self, z: Tensor) -> tuple[bytes, Tensor]:
        """Code ``z`` of shape ``(1, C, h, w)``; returns the rANS bytes and ``z_hat``, the
        values the decoder will get back."""
        tables = self.rans_tables()
        medians = self.medians()
        symbols = torch.round(z - medians)
        return rans.encode(symbols.to(torch.int32), self._indexes(z.shape), tables), symbols + medians

    @torch.no_grad()
    def decompress_tensor(self, data: bytes, shape, name: str = "z") -> Tensor:
        """Inverse of :meth:`compress_tensor`: returns ``z_hat`` of ``shape``."""
        tables = self.rans_tables()
        symbols = rans.decode(data, self._indexes(shape), tables, name=name)
        return torch.from_numpy(symbols).reshape(shape).to(torch.float32) + self.medians()


class FrozenGaussianConditional(_FrozenTables, GaussianConditional):
    """Conditional Gaussian model for the latent ``y`` given per-element scales and means."""

    def __init__(self, scale_table: list[float] | None = None, **kwargs) -> None:
        super().__init__(scale_table or default_scale_table(), **kwargs)
        self._init_frozen()

    def _table_sources(self) -> list[Tensor]:
        return [self.scale_table, self.scale_bound, torch.tensor([self.tail_mass])]

    def _build_tables(self) -> None:
        self.update()

    def likelihood_of(self, y_hat: Tensor, scales: Tensor, means: Tensor) -> Tensor:
        """Likelihoods of already quantized values ``y_hat`` (any shape), differentiable."""
        return self.likelihood_lower_bound(self._likelihood(y_hat, scales, means))

    def table_indexes(self, scales: Tensor) -> Tensor:
        """Index of the CDF table for each scale (the first table whose scale is >= it)."""
        scales = torch.clamp(scales, min=float(self.scale_bound))
        boundaries = self.scale_table[:-1].to(scales.dtype).contiguous()
        return torch.searchsorted(boundaries, scales.contiguous(), right=False).to(torch.int32)

    @torch.no_grad()
    def compress_tensor(self, y: Tensor, scales: Tensor, means: Tensor) -> bytes:
        tables = self.rans_tables()
        symbols = torch.round(y - means).to(torch.int32)
        return rans.encode(symbols, self.table_indexes(scales), tables)

    @torch.no_grad()
    def decompress_tensor(self, data: bytes, scales: Tensor, means: Tensor, name: str = "y") -> Tensor:
        tables = self.rans_tables()
        symbols = rans.decode(data, self.table_indexes(scales), tables, name=name)
        return torch.from_numpy(symbols).reshape(scales.shape).to(means.dtype) + means
