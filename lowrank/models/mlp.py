"""MLP-BN-L-H and RES-BN-L-H (paper App. B.1): fully-connected nets with batch norm."""

from __future__ import annotations

from torch import Tensor, nn

from .common import RankLayer, check_positive, get_activation, matrices


class DenseBN(nn.Module):
    """Linear (bias) -> BatchNorm1d -> act: one hidden layer of MLP-BN."""

    def __init__(self, d_in: int, d_out: int, activation: str):
        super().__init__()
        self.act = get_activation(activation)
        self.linear = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.linear(x)))


class MLPBN(nn.Module):
    """MLP-BN-L-H: flatten -> depth x [Linear -> BN -> act] of `width` units -> Linear(width, classes)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, *, depth: int = 10, width: int = 100,
                 activation: str = "relu"):
        super().__init__()
        check_positive(depth=depth, width=width)
        d_in = in_channels * image_size**2
        self.layers = nn.ModuleList(DenseBN(d_in if i == 0 else width, width, activation) for i in range(depth))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)

    def rank_layers(self) -> list[RankLayer]:
        """The `depth` hidden Linear weights; fc excluded, as the authors."""
        return matrices(self, [(layer.linear, 1) for layer in self.layers])


class ResidualBlock(nn.Module):
    """z + act(BN2(W2 act(BN1(W1 z)))): the paper's block, including the outer act the authors' FCBlock lacks."""

    def __init__(self, width: int, activation: str):
        super().__init__()
        self.act = get_activation(activation)
        self.fc1 = nn.Linear(width, width)
        self.bn1 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, width)
        self.bn2 = nn.BatchNorm1d(width)

    def forward(self, z: Tensor) -> Tensor:
        return z + self.act(self.bn2(self.fc2(self.act(self.bn1(self.fc1(z))))))


class ResBN(nn.Module):
    """RES-BN-L-H: flatten -> Linear(in, width) -> BN -> depth residual blocks -> Linear(width, classes).

    The input Linear is followed by BatchNorm1d and no activation, as in the authors' (unrunnable)
    models/mlp_residual.py. Like there (num_matrices = 2·depth), the rank layers are the 2·depth block
    matrices only: the input Linear and the classifier are excluded (spec §2).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, *, depth: int = 5, width: int = 500,
                 activation: str = "relu"):
        super().__init__()
        check_positive(depth=depth, width=width)
        self.embed = nn.Linear(in_channels * image_size**2, width)
        self.embed_bn = nn.BatchNorm1d(width)
        self.blocks = nn.ModuleList(ResidualBlock(width, activation) for _ in range(depth))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        z = self.embed_bn(self.embed(x.flatten(1)))
        for block in self.blocks:
            z = block(z)
        return self.fc(z)

    def rank_layers(self) -> list[RankLayer]:
        """W1 and W2 of every block (2·depth matrices)."""
        return matrices(self, [(fc, 1) for block in self.blocks for fc in (block.fc1, block.fc2)])
