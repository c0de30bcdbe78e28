"""Networks shared by every model: the DCGAN-style generator g(h; α), the DCGAN discriminator (also the
VAE encoder / critic body), the CoopNets descriptor f(X; θ), and small MLPs for low-dimensional tests.

Sizes: a side s is written s = b·2^k with 4 ≤ b < 8 (64 = 4·2⁴, 32 = 4·2³, 28 = 7·2², 8 = 4·2¹); the
generator starts at b×b and doubles k times, the discriminator halves k times. 28×28 generators and
descriptors follow the official MNIST code instead (jianwen-xie/CoopNets, model.py, the mnist nets):
generator 4×4×512 → 7×7×256 → 14×14×128 → 28×28, kernel 4; descriptor three 4×4 stride-2 convs 64/128/256
with TensorFlow "SAME" padding (28 → 14 → 7 → 4), then a full 4×4 conv.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genbench.config import instantiate, signature_defaults
from genbench.errors import GenbenchError

Activation = Literal["lrelu", "relu", "swish", "elu", "softplus"]


def activation(name: str, slope: float = 0.2) -> nn.Module:
    table = {
        "lrelu": lambda: nn.LeakyReLU(slope),
        "relu": nn.ReLU,
        "swish": nn.SiLU,
        "elu": nn.ELU,
        "softplus": nn.Softplus,
    }
    if name not in table:
        raise GenbenchError(f"unknown activation {name!r}; known: {', '.join(table)}")
    return table[name]()


def size_ladder(size: int) -> tuple[int, int]:
    """(b, k) with size = b·2^k and b the smallest base ≥ 4 reachable by halving."""
    if size < 4:
        raise GenbenchError(f"image size {size} is too small for the conv nets (need ≥ 4; use arch: mlp)")
    base, k = size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        k += 1
    return base, k


def init_normal_(module: nn.Module, std: float | None) -> None:
    """Official init: conv/linear weights N(0, std²), biases 0 (BatchNorm γ ~ N(1, 0.02²)). None keeps torch's."""
    if std is None:
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class GaussianNoise(nn.Module):
    """x + std·N(0, I), in training and in sampling alike (Kim & Bengio's generator adds it before every batch
    norm, so each normalised unit keeps a spread across the batch)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x)


class ConvGenerator(nn.Module):
    """g(h): h (d) → 1×1 → convT b×b → k × (convT stride 2, BN, act) → tanh image in [-1, 1].

    The official scene generator is kernel 5, leaky ReLU 0.2, widths 512→256→128→64, init N(0, 0.005²);
    DCGAN is kernel 4, ReLU, init N(0, 0.02²). ``bn_noise``: N(0, bn_noise²) added before every batch norm.
    """

    #: arguments added after rows were recorded, left out of the resolved net options at these defaults
    added_at_neutral_default = {"bn_noise": 0.0}

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        channels: int = 3,
        base_width: int = 64,
        kernel_size: int = 5,
        act: Activation = "lrelu",
        batch_norm: bool = True,
        init_std: float | None = 0.005,
        bn_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size not in (4, 5):
            raise GenbenchError(f"generator kernel_size must be 4 or 5, got {kernel_size}")
        self.latent_dim = latent_dim
        self.out_shape = (channels, image_size, image_size)
        if image_size == 28:  # the official MNIST generator: 4 → 7 → 14 → 28, kernel 4, 8·64 = 512 wide at 4×4
            base, k, kernel_size = 4, 3, 4
            width = base_width * 8
            # (padding, output_padding): 4→7, 7→14, 14→28. TF's "SAME" 4→7 trims 1 pixel before and 2 after;
            # PyTorch's (2, 1) trims 2 before and 1 after: the same map, shifted by one pixel.
            paddings = [(2, 1), (1, 0), (1, 0)]
        else:
            base, k = size_ladder(image_size)
            width = base_width * 2 ** max(k - 1, 0)
            paddings = [(2, 1) if kernel_size == 5 else (1, 0)] * k
        if bn_noise < 0:
            raise GenbenchError(f"generator bn_noise must be ≥ 0, got {bn_noise}")

        def normalised(width: int) -> list[nn.Module]:  # [N(0, bn_noise²) added,] BN
            norm = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
            return [GaussianNoise(bn_noise), norm] if bn_noise > 0 else [norm]

        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, width, base, 1, 0, bias=not batch_norm)]
        for i, (pad, out_pad) in enumerate(paddings):
            layers += [*normalised(width), activation(act)]
            last = i == k - 1
            out = channels if last else width // 2
            layers.append(nn.ConvTranspose2d(width, out, kernel_size, 2, pad, out_pad, bias=last or not batch_norm))
            width = out
        if k == 0:
            layers += [*normalised(width), activation(act), nn.Conv2d(width, channels, 3, 1, 1)]
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        init_normal_(self, init_std)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h.view(h.shape[0], self.latent_dim, 1, 1))


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: k × (conv 4×4 stride 2, [BN], leaky ReLU 0.2) → conv b×b → ``out_features``.

    Used as the GAN discriminator (1 logit), the WGAN critic (no BN), and the VAE encoder (2d outputs).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        base_width: int = 64,
        out_features: int = 1,
        batch_norm: bool = True,
        spectral_norm: bool = False,
        init_std: float | None = 0.02,
    ) -> None:
        super().__init__()
        base, k = size_ladder(image_size)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        width_in, width = channels, base_width
        for i in range(k):
            layers.append(sn(nn.Conv2d(width_in, width, 4, 2, 1, bias=i == 0 or not batch_norm)))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            width_in, width = width, width * 2
        if k == 0:
            layers += [sn(nn.Conv2d(width_in, width, 3, 1, 1)), nn.LeakyReLU(0.2)]
            width_in = width
        layers.append(sn(nn.Conv2d(width_in, out_features, base, 1, 0)))
        self.net = nn.Sequential(*layers)
        self.out_features = out_features
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one side: output ceil(size/stride), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


PADDINGS = {"zeros": nn.ZeroPad2d, "circular": nn.CircularPad2d}


def same_conv(width_in: int, width: int, kernel: int, stride: int, size: int, wrap=lambda m: m,
              padding: str = "zeros") -> list[nn.Module]:
    """A conv whose output side is ceil(size/stride) ("SAME"): symmetric padding (k−1)//2 where that gives it,
    TensorFlow's asymmetric padding (odd pixel after) where it does not (4×4/2 on 7 → 4, not 3). ``padding``: the
    border filled with zeros, or ``circular``: the image wrapped around (a torus, for stationary textures)."""
    if padding not in PADDINGS:
        raise GenbenchError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    pad = (kernel - 1) // 2
    if (size + 2 * pad - kernel) // stride + 1 == -(-size // stride):
        return [wrap(nn.Conv2d(width_in, width, kernel, stride, pad, padding_mode=padding))]
    before, after = same_padding(size, kernel, stride)
    return [PADDINGS[padding]((before, after, before, after)), wrap(nn.Conv2d(width_in, width, kernel, stride))]


class DescriptorNet(nn.Module):
    """f(X; θ) of the CoopNets descriptor: convs (official scene: 5×5/2 → 64, 3×3/2 → 128, 3×3/1 → 256;
    official MNIST, the default at 28×28: three 4×4/2 → 64, 128, 256; leaky ReLU 0.2, no BN, "SAME"
    padding) then a conv whose kernel covers the whole map → ``n_out`` outputs, summed:
    f(X) = Σ_k f_k(X). ``stationary=True`` (textures) uses a 1×1 last conv and sums over positions too,
    so f is translation invariant as in the descriptor paper's texture model; with ``padding: circular`` the image
    wraps around, so no position is a border (f is then invariant to cyclic shifts by the nets' total stride).
    """

    #: arguments added after rows were recorded, left out of the resolved net options at these defaults
    added_at_neutral_default = {"padding": "zeros"}

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        widths: tuple[int, ...] = (64, 128, 256),
        kernels: tuple[int, ...] | None = None,
        strides: tuple[int, ...] | None = None,
        n_out: int = 100,
        act: Activation = "lrelu",
        spectral_norm: bool = False,
        stationary: bool = False,
        init_std: float | None = 0.01,
        padding: str = "zeros",
    ) -> None:
        super().__init__()
        mnist = image_size == 28
        kernels = kernels or ((4, 4, 4) if mnist else (5, 3, 3))
        strides = strides or ((2, 2, 2) if mnist else (2, 2, 1))
        if not len(widths) == len(kernels) == len(strides):
            raise GenbenchError("descriptor widths, kernels and strides must have the same length")
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        width_in, size = channels, image_size
        for width, kernel, stride in zip(widths, kernels, strides):
            layers += [*same_conv(width_in, width, kernel, stride, size, sn, padding), activation(act)]
            size = -(-size // stride)
            width_in = width
        if size < 1:
            raise GenbenchError(f"descriptor layers shrink a {image_size}px image below 1px")
        layers.append(sn(nn.Conv2d(width_in, n_out, 1 if stationary else size)))
        self.net = nn.Sequential(*layers)
        init_normal_(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).sum(dim=1)


class MLP(nn.Module):
    """A small MLP between flat vectors, reshaped to ``out_shape`` (for 2-D toy data and tests)."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], hidden: int = 64, depth: int = 2,
                 act: Activation = "softplus", spectral_norm: bool = False) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [sn(nn.Linear(width, hidden)), activation(act)]
            width = hidden
        layers.append(sn(nn.Linear(width, math.prod(out_shape))))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).view(x.shape[0], *self.out_shape)


class MLPGenerator(MLP):
    """g(h) as an MLP (no output squashing: toy data are unbounded)."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], hidden: int = 64, depth: int = 2, act: Activation = "softplus") -> None:
        super().__init__(latent_dim, out_shape, hidden, depth, act)
        self.latent_dim = latent_dim
        self.out_shape = tuple(out_shape)


class MLPEnergy(MLP):
    """f(X) as an MLP with one scalar output."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int = 64, depth: int = 2, act: Activation = "softplus", spectral_norm: bool = False) -> None:
        super().__init__(math.prod(in_shape), (1,), hidden, depth, act, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).view(x.shape[0])


#: the arguments a net takes from the model (its image shape), not from the ``net`` / ``generator_net`` options
SHAPE_ARGUMENTS = ("image_size", "channels", "in_shape", "out_shape", "latent_dim")


def resolve_net_options(kind: str, arch: str, options: dict | None, cls: type | None = None) -> dict:
    """``options`` of an energy net (``kind="energy"``) or a generator with every other argument at its default
    (``cls``: a model's own net class instead of the arch's)."""
    if arch not in ("conv", "mlp"):
        raise GenbenchError(f"model.arch must be 'conv' or 'mlp', got {arch!r}")
    cls = cls or {("energy", "mlp"): MLPEnergy, ("energy", "conv"): DescriptorNet,
                  ("generator", "mlp"): MLPGenerator, ("generator", "conv"): ConvGenerator}[(kind, arch)]
    defaults = {k: v for k, v in signature_defaults(cls).items() if k not in SHAPE_ARGUMENTS}
    resolved = {**defaults, **(options or {})}
    for key, neutral in getattr(cls, "added_at_neutral_default", {}).items():
        if resolved.get(key) == neutral:
            del resolved[key]
    return resolved


def build_energy_net(arch: str, image_size: int, channels: int, options: dict | None = None,
                     cls: type | None = None) -> nn.Module:
    """f(X; θ): the CoopNets descriptor net (``conv``), an MLP (``mlp``) or a model's own net class ``cls`` (taking
    ``image_size`` and ``channels``), from ``model.net`` options."""
    options = dict(options or {})
    if arch == "mlp" and cls is None:
        return instantiate(MLPEnergy, {"in_shape": (channels, image_size, image_size), **options}, "model.net")
    return instantiate(cls or DescriptorNet, {"image_size": image_size, "channels": channels, **options}, "model.net")


def build_generator(arch: str, latent_dim: int, image_size: int, channels: int, options: dict | None = None) -> nn.Module:
    """g(h; α): the official CoopNets generator (``conv``: kernel 5, leaky ReLU, init N(0, 0.005²)) or an MLP."""
    options = dict(options or {})
    if arch == "mlp":
        return instantiate(MLPGenerator, {"latent_dim": latent_dim, "out_shape": (channels, image_size, image_size), **options},
                           "model.generator_net")
    return instantiate(ConvGenerator, {"latent_dim": latent_dim, "image_size": image_size, "channels": channels, **options},
                       "model.generator_net")
