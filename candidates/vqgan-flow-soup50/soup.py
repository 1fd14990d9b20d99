"""Average two vqgan-flow weight sets that share their initial weights (a model soup); export float16.

    python soup.py WEIGHTS_A WEIGHTS_B ALPHA OUT     # OUT = (1 - ALPHA) * A + ALPHA * B
"""
import json
import sys
from pathlib import Path
from safetensors.torch import load_file
from licodec.zoo.registry import create_model, export_weights
a, b, alpha, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
model = create_model("vqgan-flow", weights_dir=a)
sa, sb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
state = {k: ((1 - alpha) * sa[k].float() + alpha * sb[k].float()).to(sa[k].dtype) if sa[k].is_floating_point() else sa[k] for k in sa}
model.load_state_dict(state, strict=True)
meta = json.loads((Path(a) / "config.json").read_text())
export_weights(model, "vqgan-flow", out, training={**meta["training"], "soup": [a, b, alpha]}, half=True)
print(json.loads((Path(out) / "config.json").read_text())["sha256"][:16])
