"""Tables beyond sampling (the papers' completion, recovery and reconstruction tables): corruptions fixed by
a seed, region scores, and the completers and reconstructors they compare."""

from genbench.data.corruption import Corruption, occlusion_masks, parse_corruption, salt_and_pepper
from genbench.tasks.inpaint import COMPLETERS, completer
from genbench.tasks.scores import region_error, region_psnr

__all__ = ["COMPLETERS", "Corruption", "completer", "occlusion_masks", "parse_corruption", "region_error",
           "region_psnr", "salt_and_pepper"]
