"""Backbones by name: features [batch, channels, n_mels, frames] -> embedding [batch, dim].

- `mobilefacenet`: the STgram-MFN network (train/mobilefacenet.py), the default.
- `mobilenetv2`, `mobilenetv3`: MobileNetV2-1.0 and MobileNetV3-Large-1.0
  (train/mobilenets.py; architecturally timm's mobilenetv2_100 and mobilenetv3_large_100)
  with random initial weights (pretrained weights cannot be downloaded on the build
  machines), their last linear layer sized to the embedding.
"""

from __future__ import annotations

from torch import nn

from train.mobilefacenet import MobileFaceNet
from train.mobilenets import MobileNetV2, MobileNetV3

MOBILENETS: dict[str, type[nn.Module]] = {"mobilenetv2": MobileNetV2, "mobilenetv3": MobileNetV3}
BACKBONES = ("mobilefacenet", *MOBILENETS)


def build_backbone(
    name: str, in_channels: int, height: int, width: int, embedding_dim: int
) -> nn.Module:
    """The backbone `name` (one of BACKBONES); raises ValueError for another name.

    `height` and `width` size MobileFaceNet's global depthwise conv; the MobileNets pool
    globally and take any input size.
    """
    if name == "mobilefacenet":
        return MobileFaceNet(in_channels, height, width, embedding_dim)
    if name in MOBILENETS:
        return MOBILENETS[name](in_channels, embedding_dim)
    raise ValueError(f"backbone must be one of {BACKBONES}, not {name!r}")
