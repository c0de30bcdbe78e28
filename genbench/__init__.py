"""genbench: a PyTorch Lightning benchmark suite for cooperative learning of energy-based and
latent-variable generative models (descriptor, ABP, CoopNets) and their baselines."""

from genbench.errors import GenbenchError

__version__ = "0.1.0"
__all__ = ["GenbenchError", "__version__"]
