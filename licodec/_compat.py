"""Import compressai's pieces that licodec uses quickly and on a CPU-only torch.

Two problems, two remedies:

1. PyPI's torchvision wheels that match recent torch releases are CUDA builds whose
   ``_C.so`` cannot load against a CPU torch; torchvision then fails at import with
   ``operator torchvision::nms does not exist``, and so does compressai, which imports
   it. Remedy: before torchvision is imported, if its extension cannot be loaded, define
   the ``torchvision::nms`` and ``torchvision::qnms`` schemas ourselves. licodec needs no
   torchvision kernel (image I/O goes through Pillow).
2. ``import compressai`` runs a package ``__init__`` that imports every sub-package,
   point-cloud datasets and torch-geometric included: about 1.5 s on this machine,
   more than decoding a Kodak image. Remedy: when compressai is not imported yet,
   register a package module that resolves its sub-packages lazily (PEP 562) and offers
   the entropy-coder functions of the real ``__init__``; then import only the
   sub-modules licodec uses. ``compressai.models`` and the rest still import on demand.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_torchvision_checked = False
_keep_alive = []


def _torchvision_extension_loads() -> bool:
    import glob
    import os

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision: nothing to patch
    for location in spec.submodule_search_locations:
        for path in glob.glob(os.path.join(location, "_C*.so")):
            try:
                torch.ops.load_library(path)
                return True
            except (OSError, RuntimeError):
                return False
    return False


def patch_torchvision() -> None:
    """Define ``torchvision::nms``/``qnms`` schemas when torchvision's ``_C.so`` can't load."""
    global _torchvision_checked
    if _torchvision_checked or "torchvision" in sys.modules:
        _torchvision_checked = True
        return
    _torchvision_checked = True
    if _torchvision_extension_loads():
        return
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        try:
            lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined
    _keep_alive.append(lib)


def _lazy_compressai_package() -> None:
    spec = importlib.util.find_spec("compressai")
    if spec is None:
        raise ImportError("compressai is not installed: pip install compressai")
    pkg = types.ModuleType("compressai")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    pkg.__spec__ = spec
    pkg.__package__ = "compressai"
    state = {"coder": "ans", "available": ["ans"]}

    def get_entropy_coder():
        return state["coder"]

    def set_entropy_coder(name):
        if name not in state["available"]:
            raise ValueError(f"Invalid entropy coder {name!r}, choose from {state['available']}")
        state["coder"] = name

    def available_entropy_coders():
        return state["available"]

    def __getattr__(name):
        if name == "__version__":
            return importlib.import_module("compressai.version").__version__
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return importlib.import_module(f"compressai.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'compressai' has no attribute {name!r}") from None

    pkg.get_entropy_coder = get_entropy_coder
    pkg.set_entropy_coder = set_entropy_coder
    pkg.available_entropy_coders = available_entropy_coders
    pkg.__getattr__ = __getattr__
    sys.modules["compressai"] = pkg


def compressai_core() -> types.SimpleNamespace:
    """The compressai pieces licodec uses: ``ans``, ``EntropyBottleneck``, ``GaussianConditional``, ``GDN``."""
    patch_torchvision()
    if "compressai" not in sys.modules:
        _lazy_compressai_package()
    ans = importlib.import_module("compressai.ans")
    em = importlib.import_module("compressai.entropy_models")
    gdn = importlib.import_module("compressai.layers.gdn")
    return types.SimpleNamespace(ans=ans, EntropyBottleneck=em.EntropyBottleneck,
                                 GaussianConditional=em.GaussianConditional, GDN=gdn.GDN)
