"""Building blocks of the larger transforms: residual blocks and Swin-Transformer-V2 stages.

Both start as the identity (their last layer's weights are zero), so a block can be
inserted into a trained transform without changing what it computes; training then
moves it away from the identity.
"""

from __future__ import annotations

from torch import Tensor, nn

from licodec._compat import patch_torchvision


class ResidualBlock(nn.Module):
    """``x + conv3x3(leaky_relu(conv3x3(x)))`` on ``(B, C, H, W)``; identity at initialisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def _swin_v2_block_cls():
    patch_torchvision()  # timm imports torchvision
    from timm.models.swin_transformer_v2 import SwinTransformerV2Block

    return SwinTransformerV2Block


class SwinV2Stage(nn.Module):
    """``depth`` Swin-Transformer-V2 blocks from timm on a ``(B, C, H, W)`` feature map.

    Liu et al. 2022, "Swin Transformer V2: Scaling Up Capacity and Resolution" (CVPR):
    scaled cosine attention, log-spaced continuous relative position bias, residual
    post-norm. Windows of ``window`` x ``window`` tokens; odd blocks shift by half a
    window. Any ``H, W``: timm pads each map to whole windows inside the block (and
    builds the shift mask for the padded size) and crops back. The post-norm weights
    start at zero, so a new stage is the identity.
    """

    def __init__(self, channels: int, depth: int = 2, heads: int | None = None, window: int = 8,
                 mlp_ratio: float = 2.0) -> None:
        super().__init__()
        block = _swin_v2_block_cls()
        heads = heads or max(1, channels // 32)
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.blocks = nn.ModuleList(
            block(channels, input_resolution=(window, window), num_heads=heads, window_size=window,
                  shift_size=(window // 2 if i % 2 else 0), always_partition=True, dynamic_mask=True,
                  mlp_ratio=mlp_ratio)
            for i in range(depth)
        )
        for blk in self.blocks:
            for norm in (blk.norm1, blk.norm2):
                nn.init.zeros_(norm.weight)
                nn.init.zeros_(norm.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = x.permute(0, 2, 3, 1)
        for blk in self.blocks:
            h = blk(h)
        return h.permute(0, 3, 1, 2)  # channels-last strides, which the next convolution takes as is
