"""licodec: learned image compression that runs on a plain CPU.

>>> import licodec
>>> data = licodec.compress("photo.png", quality=4)   # bytes of a .lic file
>>> image = licodec.decompress(data)                    # PIL.Image.Image
>>> codec = licodec.load("hyperprior-vr")               # the codec module itself
"""

__version__ = "0.1.0"

from licodec.errors import BitstreamError, LicodecError, WeightsError  # noqa: E402,F401
from licodec import pillow_plugin  # noqa: E402,F401  (registers .lic with Pillow: Image.open / Image.save)

_API = ("compress", "decompress", "load")


def __getattr__(name: str):
    """``compress``, ``decompress`` and ``load`` import the codec API (and torch) on first use,
    so that ``import licodec`` and the commands that need no network (info, bdrate, plot) stay light."""
    if name in _API:
        from licodec import api

        return getattr(api, name)
    raise AttributeError(f"module 'licodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
