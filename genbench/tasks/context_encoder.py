"""The Context Encoder (Pathak, Krähenbühl, Donahue, Darrell, Efros; CVPR 2016), the "CE" column of the multi-grid
paper's prior table: an encoder–decoder trained to fill the missing pixels of training images from the observed ones.

    encoder: k × (conv 4×4 / 2, BN, leaky ReLU 0.2) down to 4×4, conv 4×4 → a ``bottleneck``-wide code;
    code → BN, leaky ReLU 0.2 → decoder: convT 4×4 → 4×4, k × (BN, ReLU, convT 4×4 / 2), tanh (DCGAN's layers);
    loss  λ_rec · mean over the missing pixels of (F(x̄) − x)² + λ_adv · (−log D(x̂)),  x̄ = x with the missing
    pixels set to 0 (mid-grey), x̂ = x̄'s observed pixels with F's missing ones; D (DCGAN's discriminator) learns
    real x against x̂; λ_rec = 0.999, λ_adv = 0.001, Adam 2e-4 / β1 0.5 (the paper's settings).

It trains on the training images with masks of the corruption it will fill (fresh masks each iteration), once per
(data, corruption, settings); its weights are kept under ``runs/<data>/context-encoder/<hash>/`` and reused.
Where it differs from the paper's central-region network: the decoder draws the whole image and D judges the whole
composite (the paper's random-region variant; its central variant draws and judges the centre only), the missing
pixels enter as 0 rather than the data set's mean colour, and there is no 10× weight on a band around the hole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genbench.config import config_hash
from genbench.data.corruption import Corruption
from genbench.errors import GenbenchError
from genbench.files import write_via_temp
from genbench.models.completion import fill
from genbench.models.nets import ConvDiscriminator, ConvGenerator


@dataclass
class ContextEncoderSettings:
    """Args: width (the encoder's first conv; doubled per layer, the decoder mirrors it), bottleneck (the code's
    width; the paper's 4000), iterations, batch_size, lr, beta1, reconstruction_weight / adversarial_weight (λ_rec,
    λ_adv), seed (weights, batches and training masks)."""

    width: int = 64
    bottleneck: int = 4000
    iterations: int = 20000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    reconstruction_weight: float = 0.999
    adversarial_weight: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.width, self.bottleneck, self.iterations, self.batch_size) < 1 or self.lr <= 0:
            raise GenbenchError(f"context_encoder width, bottleneck, iterations, batch_size and lr must be positive, "
                                f"got {asdict(self)}")


class ContextEncoder(nn.Module):
    """F(x̄): the encoder–decoder above, images in [-1, 1]."""

    def __init__(self, image_size: int, channels: int, width: int, bottleneck: int) -> None:
        super().__init__()
        self.encoder = ConvDiscriminator(image_size, channels, width, out_features=bottleneck, init_std=0.02)
        self.code = nn.Sequential(nn.BatchNorm1d(bottleneck), nn.LeakyReLU(0.2))
        self.decoder = ConvGenerator(bottleneck, image_size, channels, width, kernel_size=4, act="relu", init_std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.code(self.encoder(x)))


def blanked(images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """x̄: the missing pixels set to 0 (mid-grey)."""
    return images.masked_fill(holes.expand_as(images), 0.0)


def train_context_encoder(images: torch.Tensor, corruption: Corruption, s: ContextEncoderSettings,
                          log) -> ContextEncoder:
    """A Context Encoder trained on ``images`` (n, c, H, W) in [-1, 1] to fill ``corruption``'s missing pixels."""
    torch.manual_seed(s.seed)
    net = ContextEncoder(images.shape[-1], images.shape[1], s.width, s.bottleneck)
    critic = ConvDiscriminator(images.shape[-1], images.shape[1], s.width, out_features=1, init_std=0.02)
    opt_net = torch.optim.Adam(net.parameters(), lr=s.lr, betas=(s.beta1, 0.999))
    opt_critic = torch.optim.Adam(critic.parameters(), lr=s.lr, betas=(s.beta1, 0.999))
    generator = torch.Generator().manual_seed(s.seed)
    for step in range(s.iterations):
        x = images[torch.randint(0, images.shape[0], (s.batch_size,), generator=generator)]
        _, holes = corruption.apply(x, seed=s.seed * 1_000_003 + step + 1)  # never the tables' mask seed alone
        hole = holes.expand_as(x).to(x.dtype)
        out = net(blanked(x, holes))
        completed = x * (1 - hole) + out * hole
        real, fake = critic(x), critic(completed.detach())
        critic_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                       + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()
        reconstruction = ((out - x) ** 2 * hole).sum() / hole.sum().clamp(min=1)
        judged = critic(completed)
        adversarial = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        loss = s.reconstruction_weight * reconstruction + s.adversarial_weight * adversarial
        if not torch.isfinite(loss):
            raise GenbenchError(f"the context encoder diverged at iteration {step} (loss {loss.item()}); lower "
                                f"context_encoder.lr")
        opt_net.zero_grad()
        loss.backward()
        opt_net.step()
        if step % max(1, s.iterations // 5) == 0 or step == s.iterations - 1:
            log(f"    context encoder ({corruption.name}) iteration {step + 1}/{s.iterations}: reconstruction "
                f"{reconstruction.item():.4f}, adversarial {adversarial.item():.3f}, critic {critic_loss.item():.3f}")
    return net.eval()


@dataclass
class TrainedContextEncoder:
    net: ContextEncoder
    folder: Path
    reused: bool
    record: dict = field(default_factory=dict)

    def complete(self, images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return fill(images, holes, self.net(blanked(images, holes)))


def context_encoder(images: torch.Tensor, corruption: Corruption, s: ContextEncoderSettings, data: str,
                    data_fingerprint: str, runs: Path, log) -> TrainedContextEncoder:
    """The Context Encoder of (data, corruption, settings): its kept weights, or trained now and kept."""
    record = {"data": data, "data_fingerprint": data_fingerprint, "corruption": corruption.name,
              "image_size": int(images.shape[-1]), "n_train": int(images.shape[0]), "settings": asdict(s)}
    folder = runs / data / "context-encoder" / config_hash(record)
    weights = folder / "weights.pt"
    net = ContextEncoder(images.shape[-1], images.shape[1], s.width, s.bottleneck)
    if weights.is_file():
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        log(f"  context encoder ({corruption.name}): reusing {folder}")
        return TrainedContextEncoder(net.eval(), folder, True, {**record, "run_dir": str(folder), "reused_run": True})
    log(f"  context encoder ({corruption.name}): training {s.iterations} iterations on {images.shape[0]} images ...")
    net = train_context_encoder(images, corruption, s, log)
    folder.mkdir(parents=True, exist_ok=True)
    write_via_temp(weights, lambda tmp: torch.save(net.state_dict(), tmp))
    return TrainedContextEncoder(net, folder, False, {**record, "run_dir": str(folder), "reused_run": False})
