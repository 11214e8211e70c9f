"""Our MobileNetV2 / V3-Large are the published architectures, sized to our features."""

from __future__ import annotations

import pytest
import torch

from edge_asd.audio import EMBEDDING_DIM, N_MELS, WINDOW_FRAMES
from train.backbones import build_backbone
from train.mobilenets import (
    V2_HEAD_CHANNELS,
    V3_HEAD_CHANNELS,
    V3_LAST_CONV_CHANNELS,
    InvertedResidual,
    MobileNetV2,
    MobileNetV3,
    SqueezeExcite,
    make_divisible,
)

# Reference sizes on 3-channel images: torchvision's (and timm's) ImageNet models have
# 3,504,872 (MobileNetV2-1.0) and 5,483,032 (MobileNetV3-Large-1.0) parameters, of which
# the 1000-class classifier on the 1280-d vector takes 1280 * 1000 + 1000.
IMAGENET_CLASSIFIER_PARAMS = V2_HEAD_CHANNELS * 1000 + 1000
V2_WITHOUT_CLASSIFIER = 3_504_872 - IMAGENET_CLASSIFIER_PARAMS  # 2,223,872: "2.2 M"
V3_WITHOUT_CLASSIFIER = 5_483_032 - IMAGENET_CLASSIFIER_PARAMS  # 4,202,032
# without the 1280-d layer too (960 -> 1280 with bias): 2,971,952, the paper's "3.0 M" body
V3_BODY = V3_WITHOUT_CLASSIFIER - (V3_LAST_CONV_CHANNELS * V3_HEAD_CHANNELS + V3_HEAD_CHANNELS)
TOTAL_STRIDE = 32


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_mobilenetv2_has_the_imagenet_models_parameter_count_before_the_classifier():
    net = MobileNetV2(in_channels=3, embedding_dim=EMBEDDING_DIM)
    trunk = n_params(net) - n_params(net.embedding)
    assert trunk == V2_WITHOUT_CLASSIFIER
    assert trunk == pytest.approx(2.2e6, rel=0.03)


def test_mobilenetv3_large_has_the_imagenet_models_parameter_count_before_the_classifier():
    net = MobileNetV3(in_channels=3, embedding_dim=EMBEDDING_DIM)
    trunk = n_params(net) - n_params(net.embedding)
    assert trunk == V3_WITHOUT_CLASSIFIER
    body = trunk - n_params(net.head)
    assert body == V3_BODY
    assert body == pytest.approx(3.0e6, rel=0.03)


@pytest.mark.parametrize("name", ["mobilenetv2", "mobilenetv3"])
@pytest.mark.parametrize("in_channels", [2, 1])  # ST-gram, log-mel alone
def test_a_feature_batch_maps_to_one_embedding_per_clip(name, in_channels):
    net = build_backbone(name, in_channels, N_MELS, WINDOW_FRAMES, EMBEDDING_DIM).eval()
    with torch.no_grad():
        embedding = net(torch.randn(3, in_channels, N_MELS, WINDOW_FRAMES))
    assert embedding.shape == (3, EMBEDDING_DIM)
    assert torch.isfinite(embedding).all()


@pytest.mark.parametrize("net_class", [MobileNetV2, MobileNetV3])
def test_feature_maps_shrink_32_times_before_the_global_pool(net_class):
    net = net_class(2, EMBEDDING_DIM).eval()
    with torch.no_grad():
        maps = net.features(torch.zeros(1, 2, N_MELS, WINDOW_FRAMES))
    expected = tuple(-(-size // TOTAL_STRIDE) for size in (N_MELS, WINDOW_FRAMES))
    assert tuple(maps.shape[2:]) == expected  # (4, 10)


@pytest.mark.parametrize("net_class", [MobileNetV2, MobileNetV3])
def test_ten_blocks_keep_their_shape_and_add_a_skip_connection(net_class):
    blocks = [m for m in net_class(2, EMBEDDING_DIM).modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == {MobileNetV2: 17, MobileNetV3: 15}[net_class]
    assert sum(block.skip for block in blocks) == 10


def test_squeeze_excite_sits_in_the_papers_eight_bnecks_with_widths_rounded_to_eight():
    gates = [m for m in MobileNetV3(2, EMBEDDING_DIM).modules() if isinstance(m, SqueezeExcite)]
    squeezed = [gate.reduce.out_channels for gate in gates]
    assert squeezed == [24, 32, 32, 120, 168, 168, 240, 240]  # quarter of 72, 120, ... 960
    assert [make_divisible(c) for c in (18, 30, 120, 168, 240)] == [24, 32, 120, 168, 240]
