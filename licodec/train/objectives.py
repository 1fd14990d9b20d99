"""The seam between the trainer and what a codec is trained for.

:func:`objective_for` gives the trainer an object with this interface:

* ``supports_ddp``: whether it may run under torchrun with several processes.
* ``qualities(quality)``: the qualities ``(B,)`` to train this batch at, from the ones drawn
  uniformly in the codec's range.
* ``loss(model, out, x, quality, step)``: a dict of scalar tensors with ``"loss"`` (to
  backpropagate), ``"bpp"`` and ``"mse"`` (255 scale; the progress bar's PSNR) and any other
  terms to log.
* ``after_step(step, x, out, lr)``: work after the codec's optimizer step (a discriminator's
  own step); returns more terms to log.
* ``aux_loss(model)``: the entropy bottleneck's auxiliary loss, or None.
* ``log_record(current)``: the extra entries of a ``log.jsonl`` line from the current terms.
* ``state_dict()`` / ``load_state_dict(state)``: its own training state for the checkpoint
  (``None`` when it has none), never exported with the codec.

The rate-distortion codecs get :class:`RDObjective` (``lambda(q) * 255^2 * MSE + bpp``); codecs
whose ``objective`` attribute is ``"vq"`` get :class:`~licodec.train.vq_objective.VQObjective`, generative
decoders (``"flow"``) :class:`~licodec.train.flow_objective.FlowObjective`, video codecs
(``"video"``) :class:`~licodec.train.video_objective.VideoObjective`.
"""

from __future__ import annotations

import torch

from licodec.errors import LicodecError


class RDObjective:
    """Rate-distortion training of the variable-rate codecs (:func:`licodec.train.trainer.rd_loss`)."""

    supports_ddp = True

    def qualities(self, quality: torch.Tensor) -> torch.Tensor:
        return quality

    def loss(self, model, out, x: torch.Tensor, quality: torch.Tensor, step: int) -> dict:
        from licodec.train.trainer import rd_loss

        return rd_loss(model, out, x, quality)

    def after_step(self, step: int, x: torch.Tensor, out, lr: float) -> dict:
        return {}

    def aux_loss(self, model):
        return model.latent.z_model.loss()

    def log_record(self, current: dict) -> dict:
        return {}

    def state_dict(self):
        return None

    def load_state_dict(self, state) -> None:
        pass


def objective_for(model, cfg, device: torch.device = torch.device("cpu")):
    """The objective that trains ``model`` under the run config ``cfg``."""
    if getattr(model, "objective", "rd") == "flow":
        from licodec.train.flow_objective import FlowObjective

        return FlowObjective(model, cfg, device)
    if getattr(model, "objective", "rd") == "video":
        from licodec.train.video_objective import VideoObjective

        return VideoObjective(model, cfg, device)
    if getattr(model, "objective", "rd") == "vq":
        from licodec.train.vq_objective import VQObjective

        return VQObjective(model, cfg, device)
    if getattr(cfg, "rung", 0) or getattr(cfg, "adv_start", -1) >= 0:
        raise LicodecError(f"--rung and --adv-start are for codebook codecs (vqgan), not {cfg.model!r}")
    return RDObjective()
