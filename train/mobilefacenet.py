"""MobileFaceNet (Chen et al. 2018) as STgram-MFN uses it: a 2-D CNN to a 128-d embedding.

Layers: 3x3 conv (stride 2), 3x3 depthwise conv, inverted-residual bottlenecks (t, c, n, s),
1x1 conv to 512, a global depthwise conv whose kernel covers the whole remaining feature
map (computed from the input size, never typed), and a linear 1x1 conv to the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s): the ICASSP 2022 STgram-MFN table
BOTTLENECKS: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)
STEM_CHANNELS = 64
EXPANDED_CHANNELS = 512


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvBlock(nn.Sequential):
    """Conv2d + BatchNorm, then PReLU unless `linear`; `depthwise` groups by channel."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        depthwise: bool = False,
        linear: bool = False,
    ) -> None:
        groups = in_channels if depthwise else 1
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if not linear:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project; a skip when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            ConvBlock(in_channels, hidden, 1),
            ConvBlock(hidden, hidden, 3, stride, 1, depthwise=True),
            ConvBlock(hidden, out_channels, 1, linear=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(nn.Module):
    """Features [batch, in_channels, height, width] -> embedding [batch, embedding_dim].

    `height` x `width` (n_mels x frames) fixes the global depthwise kernel.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        embedding_dim: int,
        bottlenecks: Sequence[tuple[int, int, int, int]] = BOTTLENECKS,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBlock(in_channels, STEM_CHANNELS, 3, 2, 1),
            ConvBlock(STEM_CHANNELS, STEM_CHANNELS, 3, 1, 1, depthwise=True),
        )
        height, width = conv_out(height, 3, 2, 1), conv_out(width, 3, 2, 1)
        blocks: list[nn.Module] = []
        channels = STEM_CHANNELS
        for expansion, out_channels, repeats, first_stride in bottlenecks:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                blocks.append(Bottleneck(channels, out_channels, stride, expansion))
                height, width = conv_out(height, 3, stride, 1), conv_out(width, 3, stride, 1)
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.expand = ConvBlock(channels, EXPANDED_CHANNELS, 1)
        self.global_depthwise = ConvBlock(
            EXPANDED_CHANNELS, EXPANDED_CHANNELS, (height, width), depthwise=True, linear=True
        )
        self.project = ConvBlock(EXPANDED_CHANNELS, embedding_dim, 1, linear=True)
        self.pooled_size = (height, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(features))
        x = self.project(self.global_depthwise(self.expand(x)))
        # squeeze, not flatten: a Squeeze with constant axes, no Reshape with a -1 in the graph
        return x.squeeze(3).squeeze(2)
