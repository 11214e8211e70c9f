"""The network's sizes come from the window, and ArcFace behaves as the method needs."""

from __future__ import annotations

import math

import pytest
import torch

from edge_asd.audio import EMBEDDING_DIM, N_MELS, SAMPLE_RATE, WINDOW_FRAMES
from train.arcface import ArcFace
from train.mobilefacenet import MobileFaceNet
from train.model import ASDModel, ModelConfig


def test_global_depthwise_kernel_covers_the_whole_feature_map():
    net = MobileFaceNet(2, N_MELS, WINDOW_FRAMES, EMBEDDING_DIM)
    assert net.pooled_size == (8, 20)  # 128 x 313 after four stride-2 stages
    x = net.expand(net.blocks(net.stem(torch.zeros(1, 2, N_MELS, WINDOW_FRAMES))))
    assert tuple(x.shape[2:]) == net.pooled_size


def test_a_five_second_window_builds_and_runs():
    config = ModelConfig(window_samples=5 * SAMPLE_RATE)
    model = ASDModel(config, n_labels=4).eval()
    with torch.no_grad():
        embedding, logits, logmel = model(torch.randn(2, config.window_samples))
    assert embedding.shape == (2, EMBEDDING_DIM)
    assert logits.shape == (2, 4)
    assert logmel.shape == (2, N_MELS, config.frames)


def test_inference_logits_are_scaled_cosines_without_margin():
    head = ArcFace(8, 3, margin=0.7, scale=30.0)
    embedding = head.weight.detach()[1:2] * 5.0  # points exactly at class 1
    logits = head(embedding)
    assert logits[0, 1].item() == pytest.approx(30.0, abs=1e-4)
    assert logits.abs().max().item() <= 30.0 + 1e-4


def test_margin_lowers_only_the_target_logit():
    head = ArcFace(8, 3, margin=0.5, scale=10.0)
    cosine = torch.tensor([[0.6, 0.2, -0.1]])
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    logits = head.margin_logits(cosine, targets)
    assert logits[0, 0].item() == pytest.approx(10.0 * math.cos(math.acos(0.6) + 0.5), abs=1e-5)
    torch.testing.assert_close(logits[0, 1:], 10.0 * cosine[0, 1:])


def test_mixed_targets_interpolate_between_margin_and_plain_cosine():
    head = ArcFace(8, 2, margin=0.5, scale=10.0)
    cosine = torch.tensor([[0.6, 0.2]])
    hard_a = head.margin_logits(cosine, torch.tensor([[1.0, 0.0]]))
    hard_b = head.margin_logits(cosine, torch.tensor([[0.0, 1.0]]))
    mixed = head.margin_logits(cosine, torch.tensor([[0.3, 0.7]]))
    torch.testing.assert_close(mixed, 0.3 * hard_a + 0.7 * hard_b)


def test_unknown_backbone_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="mobilefacenet"):
        ModelConfig(backbone="resnet")
