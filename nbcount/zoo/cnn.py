"""Convolutional networks from the seed documents and torchvision, in plain torch.nn."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "VGG",
    "AlexNet",
    "DCGANDiscriminator",
    "LeNet",
    "UNet",
    "AlexNetTorchvision",
    "alexnet",
    "alexnet_torchvision",
    "dcgan_discriminator",
    "lenet",
    "unet",
    "vgg16",
]


class LeNet(nn.Module):
    """Paddle's LeNet (seed 002): two conv-ReLU-pool stages, then three bare linears."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5, stride=1, padding=0),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Sequential(
            nn.Linear(400, 120),
            nn.Linear(120, 84),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def lenet(num_classes: int = 10) -> LeNet:
    """Paddle-style LeNet of seed 002 (61,610 parameters, input 1x1x28x28)."""
    return LeNet(num_classes)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator of seed 001: four strided 4x4 convs, a linear, a sigmoid."""

    def __init__(self, d: int = 128, input_shape: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        h16 = -(-input_shape[0] // 16)
        w16 = -(-input_shape[1] // 16)
        self.conv1 = nn.Conv2d(3, d, 4, 2, 1)
        self.conv2 = nn.Conv2d(d, d * 2, 4, 2, 1)
        self.conv2_bn = nn.BatchNorm2d(d * 2)
        self.conv3 = nn.Conv2d(d * 2, d * 4, 4, 2, 1)
        self.conv3_bn = nn.BatchNorm2d(d * 4)
        self.conv4 = nn.Conv2d(d * 4, d * 8, 4, 2, 1)
        self.conv4_bn = nn.BatchNorm2d(d * 8)
        self.linear = nn.Linear(h16 * w16 * d * 8, 1)
        self.leaky_relu = nn.LeakyReLU(negative_slope=0.2)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.leaky_relu(self.conv1(x))
        x = self.leaky_relu(self.conv2_bn(self.conv2(x)))
        x = self.leaky_relu(self.conv3_bn(self.conv3(x)))
        x = self.leaky_relu(self.conv4_bn(self.conv4(x)))
        x = torch.flatten(x, 1)
        # The seed squeezes the result; we keep (batch, 1) so batch size 1 stays 2-D.
        return self.sigmoid(self.linear(x))


def dcgan_discriminator(d: int = 128) -> DCGANDiscriminator:
    """DCGAN discriminator of seed 001 (11,038,081 parameters at d=128, 3x64x64)."""
    return DCGANDiscriminator(d)


class AlexNet(nn.Module):
    """Single-tower AlexNet of seed 003: 96/256/384/384/256 filters, 227x227, no LRN."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5,
                 widths: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256), conv1_padding: int = 0,
                 adaptive_pool: bool = False) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=conv1_padding),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6)) if adaptive_pool else None
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.avgpool is not None:
            x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def alexnet(num_classes: int = 1000) -> AlexNet:
    """AlexNet of seed 003 (62,378,344 parameters, input 1x3x227x227)."""
    return AlexNet(num_classes)


class AlexNetTorchvision(AlexNet):
    """torchvision.models.alexnet's layout: 64/192/384/256/256 filters, padding 2 on conv1, a 6x6 adaptive pool."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__(num_classes, dropout, (64, 192, 384, 256, 256), conv1_padding=2, adaptive_pool=True)


def alexnet_torchvision(num_classes: int = 1000) -> AlexNetTorchvision:
    """torchvision's AlexNet (61,100,840 parameters, input 1x3x224x224; 244,403,360 bytes of fp32 weights)."""
    return AlexNetTorchvision(num_classes)


# (output channels, number of 3x3 convs) per stage; each stage ends with a 2x2 max-pool.
_VGG16_STAGES: tuple[tuple[int, int], ...] = (
    (64, 2),
    (128, 2),
    (256, 3),
    (512, 3),
    (512, 3),
)


class VGG(nn.Module):
    """torchvision's VGG layout: ``features``, ``avgpool`` (7x7), ``classifier``."""

    def __init__(
        self,
        stages: Sequence[tuple[int, int]],
        num_classes: int = 1000,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for out_ch, n_convs in stages:
            for _ in range(n_convs):
                layers += [
                    nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
                    nn.ReLU(inplace=True),
                ]
                in_ch = out_ch
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG-16 without batch norm, torchvision layout (138,357,544 parameters)."""
    return VGG(_VGG16_STAGES, num_classes)


class UNetConv2(nn.Module):
    """Two (3x3 conv, padding 1 -> [BN] -> ReLU) blocks."""

    def __init__(self, in_ch: int, out_ch: int, bn: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNetUp(nn.Module):
    """ConvTranspose2d(k=2, s=2) up, concat with the skip, then a double conv."""

    def __init__(self, in_ch: int, out_ch: int, bn: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        self.conv = UNetConv2(out_ch * 2, out_ch, bn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """UNet of seed 000: 2x2 max-pool down, transposed conv up, 1x1 output conv."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        filters: Sequence[int] = (32, 64, 128, 256, 512),
        bn: bool = True,
    ) -> None:
        super().__init__()
        f = list(filters)
        self.downs = nn.ModuleList()
        c_in = in_channels
        for c in f:
            self.downs.append(UNetConv2(c_in, c, bn))
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(UNetUp(f[i + 1], f[i], bn) for i in reversed(range(len(f) - 1)))
        self.final = nn.Conv2d(f[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for i, down in enumerate(self.downs):
            if i > 0:
                x = self.pool(x)
            x = down(x)
            skips.append(x)
        skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.final(x)


def unet(
    bn: bool = True,
    in_channels: int = 1,
    num_classes: int = 2,
    filters: Sequence[int] = (32, 64, 128, 256, 512),
) -> UNet:
    """UNet of seed 000 (7,765,442 parameters with BN, 7,759,554 without), same H, W."""
    return UNet(in_channels, num_classes, filters, bn)
