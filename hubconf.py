"""torch.hub entry points: one per codec of the licodec model zoo, generated from the registry.

    codec = torch.hub.load("/path/to/licodec", "hyperprior_vr", source="local")
    codec = torch.hub.load("<owner>/licodec", "hyperprior_ctx")     # from GitHub

An entry is the registry name with ``-`` replaced by ``_``. It returns the same codec as
``licodec.zoo.create_model(name, pretrained=True)`` (what :func:`licodec.load` caches): the
shipped weights, hash-checked, eval mode; a fresh instance on every call.
"""

import os as _os
import sys as _sys

dependencies = ["torch", "numpy", "PIL", "safetensors", "compressai"]

try:
    import licodec as _licodec  # noqa: F401
except ImportError:  # a fresh clone, not pip-installed: use the package next to this file
    _sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))
    import licodec as _licodec  # noqa: F401

from licodec.errors import LicodecError as _LicodecError  # noqa: E402
from licodec.zoo import registry as _registry  # noqa: E402


def _make_entry(name: str):
    entry = _registry.get_entry(name)

    def load(pretrained: bool = True, weights_dir=None):
        if weights_dir is not None and not pretrained:
            raise _LicodecError("weights_dir is only used with pretrained=True")
        return _registry.create_model(name, pretrained=pretrained, weights_dir=weights_dir)

    load.__name__ = load.__qualname__ = name.replace("-", "_")
    load.__module__ = __name__
    load.__doc__ = (
        f"{entry.description or name}\n\n"
        f"Returns the licodec codec {name!r} in eval mode. pretrained: load its shipped,\n"
        f"hash-checked weights (False: random weights). weights_dir: load the weights\n"
        f"exported there instead (e.g. a training run's), with pretrained=True.\n"
    )
    return load


for _name in _registry.list_models():
    globals()[_name.replace("-", "_")] = _make_entry(_name)
del _name
