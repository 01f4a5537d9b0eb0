"""ResNet-18 for 32x32 images (kuangliu CIFAR style), as in the authors' models/resnet.py."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import RankLayer, check_positive, get_activation, matrices


def conv_out(size: int, stride: int) -> int:
    """Side of the output map of a 3x3 (padding 1) or 1x1 conv with this stride."""
    return (size - 1) // stride + 1


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> act -> conv3x3 -> BN, plus the (1x1 conv + BN when the shape changes) shortcut, -> act."""

    def __init__(self, c_in: int, c_out: int, stride: int, in_size: int, act: str):
        super().__init__()
        self.out_size = conv_out(in_size, stride)  # side of the output map: m = out_size**2 for both convs
        self.act = get_activation(act)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        return self.act(out)


class ResNet18(nn.Module):
    """3x3 stem (no max-pool) -> BN -> act -> 4 stages x 2 BasicBlocks -> global average pool -> fc.

    `width` is the stem's channel count; the stages have width x 1, 2, 4, 8 channels (the paper's net: 64).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, *, activation: str = "relu",
                 width: int = 64):
        super().__init__()
        check_positive(width=width)
        self.image_size = image_size
        self.act = get_activation(activation)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c_in, size = width, image_size
        for stage, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2), (8, 2)], start=1):
            first = BasicBlock(c_in, width * mult, stride, size, activation)
            second = BasicBlock(width * mult, width * mult, 1, first.out_size, activation)
            setattr(self, f"layer{stage}", nn.Sequential(first, second))
            c_in, size = width * mult, first.out_size
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # = avg_pool2d(4) at 32x32
        return self.fc(out)

    def rank_layers(self) -> list[RankLayer]:
        """The stem and both convs of the 8 blocks (17 matrices); shortcuts and fc excluded, as the authors."""
        blocks = [*self.layer1, *self.layer2, *self.layer3, *self.layer4]
        convs = [(self.conv1, self.image_size**2)]
        convs += [(conv, block.out_size**2) for block in blocks for conv in (block.conv1, block.conv2)]
        return matrices(self, convs)
