"""Backbones by name: features [batch, channels, n_mels, frames] -> embedding [batch, dim].

- `mobilefacenet`: the STgram-MFN network (train/mobilefacenet.py), the default.
- `mobilenetv2`, `mobilenetv3`: timm's mobilenetv2_100 and mobilenetv3_large_100, built with
  random weights (pretrained weights cannot be downloaded on the build machines), their
  classifier sized to the embedding.
"""

from __future__ import annotations

from torch import nn

from train.mobilefacenet import MobileFaceNet

TIMM_NAMES = {"mobilenetv2": "mobilenetv2_100", "mobilenetv3": "mobilenetv3_large_100"}
BACKBONES = ("mobilefacenet", *TIMM_NAMES)


def build_backbone(
    name: str, in_channels: int, height: int, width: int, embedding_dim: int
) -> nn.Module:
    """The backbone `name` (one of BACKBONES); raises ValueError for another name."""
    if name == "mobilefacenet":
        return MobileFaceNet(in_channels, height, width, embedding_dim)
    if name in TIMM_NAMES:
        import timm  # imported here: only these rows need it

        return timm.create_model(
            TIMM_NAMES[name], pretrained=False, in_chans=in_channels, num_classes=embedding_dim
        )
    raise ValueError(f"backbone must be one of {BACKBONES}, not {name!r}")
