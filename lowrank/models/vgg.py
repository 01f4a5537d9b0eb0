"""VGG-16 with batch norm and a single fc layer, as in the authors' models/vgg.py."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import RankLayer, check_positive, matrices

# VGG-16 channel plan at width 64; "M" = 2x2 max-pool after the previous conv
CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class ConvBN(nn.Module):
    """conv3x3 (bias) -> BN -> ReLU, optionally followed by a 2x2 max-pool."""

    def __init__(self, c_in: int, c_out: int, size: int, pool: bool):
        super().__init__()
        self.size = size  # side of the conv's output map: m = size**2
        self.pool = pool
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.conv(x)))
        # ceil_mode keeps a 1x1 map 1x1, so images smaller than 32x32 survive all 5 pools (no-op for 32x32)
        return F.max_pool2d(x, 2, ceil_mode=True) if self.pool else x


class VGG16BN(nn.Module):
    """13 x [conv3x3 -> BN -> ReLU] with 5 max-pools -> global average pool -> fc; no dropout.

    `width` is the first stage's channel count; every stage is scaled by width/64 (the paper's net: 64).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, *, width: int = 64):
        super().__init__()
        check_positive(width=width)
        layers, c_in, size = [], in_channels, image_size
        for i, c in enumerate(CFG):
            if c == "M":
                continue
            pool = CFG[i + 1] == "M"
            layers.append(ConvBN(c_in, c * width // 64, size, pool))
            c_in, size = c * width // 64, (size + 1) // 2 if pool else size
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)  # the map is already 1x1 at 32x32
        return self.fc(x)

    def rank_layers(self) -> list[RankLayer]:
        """The 13 convs; fc excluded, as the authors."""
        return matrices(self, [(layer.conv, layer.size**2) for layer in self.features])
