"""licodec: learned image compression that runs on a plain CPU.

>>> import licodec
>>> data = licodec.compress("photo.png", quality=4)   # bytes of a .lic file
>>> image = licodec.decompress(data)                    # PIL.Image.Image
>>> codec = licodec.load("hyperprior-vr")               # the codec module itself
"""

__version__ = "0.1.0"

from licodec.api import compress, decompress, load  # noqa: E402,F401
from licodec.errors import BitstreamError, LicodecError, WeightsError  # noqa: E402,F401
