"""MobileNetV2 and MobileNetV3-Large (width 1.0): features [batch, channels, H, W] -> [batch, D].

The comparison rows of Table 1. Architecturally these follow the papers (Sandler et al.
2018, "MobileNetV2"; Howard et al. 2019, "Searching for MobileNetV3") and timm's
`mobilenetv2_100` and `mobilenetv3_large_100`: same layers, same parameter count. They
are written here so that training does not need timm, whose torchvision dependency
would replace the pinned CPU torch. Weights start random (timm's initialisation):
pretrained ImageNet weights cannot be downloaded on the machines this project is built
on. Unlike the ImageNet models, `in_channels` is a parameter (2 for the ST-gram, 1 for
the log-mel) and the classifier is a linear layer to `embedding_dim`.

Every layer exports to ONNX operators TensorRT 10 imports: Conv (BatchNorm folded into it
at export), Clip (ReLU6), Relu, HardSwish, HardSigmoid, ReduceMean (global average
pooling), Gemm, Add, Mul.
"""

from __future__ import annotations

import torch
from torch import nn

CHANNEL_DIVISOR = 8  # squeeze-excite widths are rounded to multiples of this

# MobileNetV2 (Sandler et al. 2018, Table 2): (expansion t, output channels c, repeats n,
# stride s of the first repeat); all depthwise kernels are 3x3
V2_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
V2_STEM_CHANNELS = 32
V2_HEAD_CHANNELS = 1280

# MobileNetV3-Large (Howard et al. 2019, Table 1), one row per bneck: (kernel, expansion
# channels, output channels, squeeze-excite, activation RE = ReLU | HS = hard-swish, stride)
V3_BNECKS: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
V3_STEM_CHANNELS = 16
V3_LAST_CONV_CHANNELS = 960
V3_HEAD_CHANNELS = 1280
V3_ACTIVATIONS: dict[str, type[nn.Module]] = {"RE": nn.ReLU, "HS": nn.Hardswish}
SE_REDUCTION = 4  # squeeze to a quarter of the expanded channels


def make_divisible(channels: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """`channels` rounded to the nearest multiple of `divisor`, never below 90 % of it."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class ConvBN(nn.Sequential):
    """Conv2d (no bias, "same" padding) + BatchNorm, then `activation` unless None."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        activation: type[nn.Module] | None = None,
    ) -> None:
        groups = in_channels if depthwise else 1
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gate: global mean, 1x1 conv down, ReLU, 1x1 conv up, hard-sigmoid, multiply."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels / SE_REDUCTION)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.activation = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.activation(self.reduce(scale))))


class InvertedResidual(nn.Module):
    """1x1 expand, kxk depthwise, optional squeeze-excite, linear 1x1 project; a skip when
    the stride is 1 and the channels match.

    With no expansion (`mid_channels == in_channels`, the first block of both networks) the
    1x1 expand is left out, as in the papers.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        activation: type[nn.Module],
        squeeze_excite: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if mid_channels != in_channels:
            layers.append(ConvBN(in_channels, mid_channels, activation=activation))
        layers.append(
            ConvBN(
                mid_channels, mid_channels, kernel, stride, depthwise=True, activation=activation
            )
        )
        if squeeze_excite:
            layers.append(SqueezeExcite(mid_channels))
        layers.append(ConvBN(mid_channels, out_channels))
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.skip else out


def init_weights(module: nn.Module) -> None:
    """timm's initialisation: He normal (fan out) convs, unit BatchNorm, uniform linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = m.out_features**-0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class MobileNetV2(nn.Module):
    """MobileNetV2-1.0: [batch, in_channels, H, W] -> embedding [batch, embedding_dim].

    3x3 stem (32, stride 2), the inverted residuals of V2_BLOCKS, 1x1 conv to 1280, all
    with ReLU6; global average pooling, then a linear layer to the embedding.
    """

    def __init__(self, in_channels: int, embedding_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBN(in_channels, V2_STEM_CHANNELS, 3, 2, activation=nn.ReLU6)]
        channels = V2_STEM_CHANNELS
        for expansion, out_channels, repeats, first_stride in V2_BLOCKS:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                mid_channels = channels * expansion
                layers.append(
                    InvertedResidual(channels, mid_channels, out_channels, 3, stride, nn.ReLU6)
                )
                channels = out_channels
        layers.append(ConvBN(channels, V2_HEAD_CHANNELS, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Linear(V2_HEAD_CHANNELS, embedding_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(x).mean(dim=(2, 3)))


class MobileNetV3(nn.Module):
    """MobileNetV3-Large-1.0: [batch, in_channels, H, W] -> embedding [batch, embedding_dim].

    3x3 stem (16, stride 2, hard-swish), the 15 bnecks of V3_BNECKS, 1x1 conv to 960
    (hard-swish), global average pooling, linear to 1280 (hard-swish, no BatchNorm: the
    paper's 1x1 conv on the pooled map), then a linear layer to the embedding.
    """

    def __init__(self, in_channels: int, embedding_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            ConvBN(in_channels, V3_STEM_CHANNELS, 3, 2, activation=nn.Hardswish)
        ]
        channels = V3_STEM_CHANNELS
        for kernel, mid_channels, out_channels, se, activation, stride in V3_BNECKS:
            layers.append(
                InvertedResidual(
                    channels,
                    mid_channels,
                    out_channels,
                    kernel,
                    stride,
                    V3_ACTIVATIONS[activation],
                    squeeze_excite=se,
                )
            )
            channels = out_channels
        layers.append(ConvBN(channels, V3_LAST_CONV_CHANNELS, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(V3_LAST_CONV_CHANNELS, V3_HEAD_CHANNELS), nn.Hardswish()
        )
        self.embedding = nn.Linear(V3_HEAD_CHANNELS, embedding_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.head(self.features(x).mean(dim=(2, 3))))
