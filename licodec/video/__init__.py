"""Learned video: :func:`compress` and :func:`decompress` code frame iterators to and from the
``.lic`` video container in bounded memory (:mod:`licodec.video.coding`); :mod:`licodec.video.io`
reads y4m, raw yuv420p, PNG folders and ffmpeg-readable files and writes y4m or PNG frames."""

from licodec.video.coding import DecodedFrame, compress, decompress

__all__ = ["DecodedFrame", "compress", "decompress"]
