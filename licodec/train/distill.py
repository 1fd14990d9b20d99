"""FEDS distillation: a student codec learns from a frozen teacher in three stages.

"FEDS: Feature and Entropy-Based Distillation Strategy for Efficient Learned Image
Compression" (2025). Every step trains the student on its own rate-distortion loss;
the stage decides what is added to it:

1. ``align`` (the first ``align_steps`` steps): feature alignment. The outputs of the
   student's first three analysis stages and first three synthesis stages pass through
   1x1-convolution adapters (student channels -> teacher channels) and are pulled
   towards the teacher's features at the same resolution:
   ``sum_l ||A_l(f_s) - f_t||^2 / ||f_t||^2``, averaged over the six layers.
2. ``channel`` (the next ``channel_steps`` steps): channel-level latent distillation.
   An adapter maps the student's quantized-domain latent ``y`` to the teacher's latent
   channels; each channel's error is weighted by that channel's entropy under the
   teacher (its bits in this batch), so the channels that carry the information
   dominate: ``sum_c w_c mse_c / sum_c w_c E[y_t,c^2]`` with ``w_c`` the channel's share
   of the teacher's bits.
3. ``finetune`` (the rest): rate-distortion only; the teacher is not run.

Both losses are 0 when the adapted student features equal the teacher's and grow with
the difference. The adapters are training state (saved in checkpoints), not part of the
exported student.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

STAGES = ("align", "channel", "finetune")
# (student feature, teacher feature) pairs aligned in stage 1; "y" is distilled in stage 2
ALIGNED = ("a0", "a1", "a2", "s0", "s1", "s2")


def stage_at(step: int, align_steps: int, channel_steps: int) -> str:
    """The distillation stage of 0-based ``step``."""
    if step < align_steps:
        return "align"
    if step < align_steps + channel_steps:
        return "channel"
    return "finetune"


def feature_alignment_loss(student: dict, teacher: dict, adapters: nn.ModuleDict, names=ALIGNED) -> Tensor:
    """Mean over ``names`` of the relative squared error between adapted student features
    ``(B, Cs, H, W)`` and teacher features ``(B, Ct, H, W)``."""
    losses = []
    for name in names:
        fs = adapters[name](student[name].float())
        ft = teacher[name].float()
        losses.append((fs - ft).pow(2).sum() / ft.pow(2).sum().clamp_min(1e-12))
    return torch.stack(losses).mean()


def channel_entropy_weights(y_likelihoods: Tensor) -> Tensor:
    """Each latent channel's share of the bits, ``(C,)`` summing to 1, from the teacher's
    likelihoods ``(B, C, h, w)``."""
    bits = -torch.log2(y_likelihoods.float().clamp_min(1e-9)).sum(dim=(0, 2, 3))
    return bits / bits.sum().clamp_min(1e-12)


def channel_distillation_loss(y_student: Tensor, y_teacher: Tensor, weights: Tensor) -> Tensor:
    """Entropy-weighted per-channel error of the adapted student latent ``(B, C, h, w)``
    against the teacher's ``(B, C, h, w)``, relative to the teacher's weighted energy."""
    mse = (y_student.float() - y_teacher.float()).pow(2).mean(dim=(0, 2, 3))
    energy = y_teacher.float().pow(2).mean(dim=(0, 2, 3))
    return (weights * mse).sum() / (weights * energy).sum().clamp_min(1e-12)


def _adapter(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


class Distiller(nn.Module):
    """Holds the frozen teacher and the trainable adapters; computes each stage's extra loss.

    ``student`` and ``teacher`` are codecs whose ``forward(..., features=True)`` returns the
    features named in :data:`ALIGNED` and ``"y"`` at matching resolutions.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, align_steps: int, channel_steps: int,
                 align_weight: float = 1.0, channel_weight: float = 1.0) -> None:
        super().__init__()
        self.teacher = [teacher.eval().requires_grad_(False)]  # a list keeps it out of state_dict/parameters
        self.align_steps, self.channel_steps = align_steps, channel_steps
        self.align_weight, self.channel_weight = align_weight, channel_weight
        probe = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            fs = student(probe, 1.0, features=True).features
            ft = teacher(probe, 1.0, features=True).features
        missing = [n for n in (*ALIGNED, "y") if n not in fs or n not in ft]
        if missing:
            raise ValueError(f"student or teacher lacks features {missing}")
        for n in (*ALIGNED, "y"):
            if fs[n].shape[-2:] != ft[n].shape[-2:]:
                raise ValueError(f"feature {n}: student {tuple(fs[n].shape)} and teacher {tuple(ft[n].shape)} differ in size")
        self.adapters = nn.ModuleDict({n: _adapter(fs[n].shape[1], ft[n].shape[1]) for n in ALIGNED})
        self.latent_adapter = _adapter(fs["y"].shape[1], ft["y"].shape[1])

    def stage(self, step: int) -> str:
        return stage_at(step, self.align_steps, self.channel_steps)

    def needs_features(self, step: int) -> bool:
        return self.stage(step) != "finetune"

    def loss(self, step: int, x: Tensor, quality: Tensor, student_out) -> dict:
        """The stage's weighted distillation loss for this batch (``{}`` in fine-tuning)."""
        stage = self.stage(step)
        if stage == "finetune":
            return {}
        teacher = self.teacher[0]
        with torch.no_grad():  # under the caller's autocast, if any
            t_out = teacher(x, quality, features=True)
        if stage == "align":
            value = feature_alignment_loss(student_out.features, t_out.features, self.adapters)
            return {"distill": self.align_weight * value, "align": value}
        weights = channel_entropy_weights(t_out.likelihoods["y"])
        value = channel_distillation_loss(self.latent_adapter(student_out.features["y"].float()),
                                          t_out.features["y"], weights)
        return {"distill": self.channel_weight * value, "channel": value}
