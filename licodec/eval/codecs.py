"""What the RD runner evaluates: licodec codecs from the registry and classic anchors, behind one interface.

An :class:`EvalCodec` turns an ``(H, W, 3)`` uint8 image into the real bytes a user
would store at one quality setting, and those bytes back into an image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError


@dataclass(frozen=True)
class EvalCodec:
    name: str  # as typed on the command line: a registry name, an anchor name, or the LABEL of LABEL=DIR
    label: str  # the curve's name in results and plots
    kind: str  # "licodec" or "classic"
    qualities: tuple[float, ...]  # default sweep
    model: str = ""  # licodec: the registry name
    weights_dir: str = ""  # licodec: weights other than the shipped ones (a training run's export)
    effort: int = 0  # licodec: encode-time refinement level (NAME:eN)
    realism: float = 0.0  # licodec generative decoders: the decode's realism (NAME:rX; 1 by default)

    def _codec(self):
        from licodec import api

        return api.load(self.model, self.weights_dir or None)

    def version(self) -> str:
        """Identifies the exact encoder: weights hash for licodec, library versions for anchors."""
        if self.kind == "licodec":
            codec = self._codec()
            decode = getattr(codec, "decode_settings", "") if self.realism else ""  # a generative decoder's sampler
            return (f"weights {codec.weights_sha256}" + (f" effort {self.effort}" if self.effort else "")
                    + (f" realism {self.realism:g}" if self.realism else "") + (f" {decode}" if decode else ""))
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).version()

    def encoder_key(self) -> tuple:
        """Equal for codecs that write the same file (a generative decoder's realism settings):
        the runner encodes once for all of them."""
        if self.kind == "licodec":
            return (self.kind, self.model, self.weights_dir, self.effort)
        return (self.kind, self.name)

    def check_quality(self, quality: float) -> None:
        if self.kind == "licodec":
            self._codec().check_quality(quality)
        else:
            from licodec.eval.anchors import get_anchor

            get_anchor(self.name).check_quality(quality)

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        if self.kind == "licodec":
            from licodec import api
            from licodec.image_io import SourceImage

            return api.compress_bitstream(SourceImage(rgb, channels=3, bit_depth=8), quality, self.model,
                                          self.weights_dir or None, effort=self.effort).to_bytes()
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).encode(rgb, quality)

    def decode(self, data: bytes) -> np.ndarray:
        if self.kind == "licodec":
            from licodec import api
            from licodec.entropy.container import Bitstream

            bitstream = Bitstream.from_bytes(data)
            codec = self._codec()
            if getattr(codec, "objective", "") == "flow":  # a generative decoder (maybe a run's export)
                import torch

                x_hat = codec.decompress(bitstream, realism=self.realism)
                return (x_hat[0] * 255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            return api.decompress_rgb(bitstream, self.weights_dir or None)
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).decode(data)


_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_EFFORT = re.compile(r"^(.+):e(\d+)$")
_REALISM = re.compile(r"^(.+):r([0-9.]+)$")


def split_effort(spec: str) -> tuple[str, int] | None:
    """``(NAME, N)`` for an eval spec ``NAME:eN`` (image or video), else None; the caller checks
    that NAME is a licodec codec and N at most :data:`licodec.codec.refine.MAX_EFFORT`."""
    match = _EFFORT.match(spec)
    return (match.group(1), int(match.group(2))) if match else None


def is_valid_label(label: str) -> bool:
    """Whether ``label`` may name a ``LABEL=DIR`` weights folder in results: 1-64 letters,
    digits, '.', '_' or '-'."""
    return bool(_LABEL.match(label))


def resolve_codec(name: str) -> EvalCodec:
    """A licodec codec (``licodec models``), a classic anchor (jpeg420, jpeg444, webp, avif, avif444,
    jpeg2000), or ``LABEL=DIR``: the licodec weights in folder DIR (a ``licodec export`` output,
    e.g. of a training run), named LABEL in results. A licodec name may end in ``:eN``: encoded
    at effort N (0-9). A generative decoder (``hyperprior-vr-flow``) decodes at realism 1, or at X
    in [0, 1] with the suffix ``:rX``."""
    from licodec.eval.anchors import ANCHORS
    from licodec.zoo import list_models

    realism_spec = _REALISM.match(name)
    if realism_spec:
        from licodec.codec.flow import check_realism

        base = resolve_codec(realism_spec.group(1))
        if not base.realism:
            raise LicodecError(f"{name!r}: ':rX' takes a generative decoder (e.g. hyperprior-vr-flow)")
        realism = check_realism(float(realism_spec.group(2)))
        return replace(base, name=f"{base.name}:r{realism:g}", label=f"{base.label} realism {realism:g}",
                       realism=realism)
    effort_spec = split_effort(name)
    if effort_spec:
        from licodec.codec.refine import MAX_EFFORT

        base, effort = resolve_codec(effort_spec[0]), effort_spec[1]
        if base.kind != "licodec" or effort > MAX_EFFORT:
            raise LicodecError(f"{name!r}: ':eN' takes a licodec codec and an effort from 0 to {MAX_EFFORT}")
        return replace(base, name=f"{base.name}:e{effort}", label=f"{base.label} effort {effort}", effort=effort)

    if "=" in name:
        from licodec import api
        from licodec.zoo.registry import read_weights_config

        label, weights_dir = name.split("=", 1)
        if not is_valid_label(label):
            raise LicodecError(f"{name!r}: the label before '=' must be 1-64 letters, digits, '.', '_' or '-'")
        if not Path(weights_dir).is_dir():
            raise LicodecError(f"{name!r}: {weights_dir} is not a weights folder")
        model = read_weights_config(Path(weights_dir))["codec"]
        codec = api.load(model, weights_dir)
        lo, hi = codec.quality_range
        return EvalCodec(label, f"licodec {model} ({label})", "licodec",
                         tuple(float(q) for q in range(int(lo), int(hi) + 1)), model, weights_dir,
                         realism=1.0 if getattr(codec, "objective", "") == "flow" else 0.0)
    if name in list_models():
        from licodec import api

        codec = api.load(name)
        lo, hi = codec.quality_range
        return EvalCodec(name, f"licodec {name}", "licodec", tuple(float(q) for q in range(int(lo), int(hi) + 1)),
                         name, realism=1.0 if getattr(codec, "objective", "") == "flow" else 0.0)
    if name in ANCHORS:
        anchor = ANCHORS[name]
        if not anchor.available():
            raise LicodecError(f"{name}: this Pillow build has no {anchor.pil_feature} support")
        return EvalCodec(name, anchor.label, "classic", tuple(float(q) for q in anchor.qualities))
    raise LicodecError(f"unknown codec {name!r} (licodec: {', '.join(list_models())}; "
                       f"classic: {', '.join(ANCHORS)})")
