"""Worked solutions of chapter 07_vae's exercises."""
import math

import torch


def latent_frames(n_frames: int) -> int:
    "Three stride-2 downsamplings divide the (padded) length by 8."
    return math.ceil(n_frames / 8)


def kl_to_standard(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    "KL(N(mean, exp(logvar)) || N(0, I)), averaged over all elements as MuG logs it."
    return 0.5 * torch.mean(mean ** 2 + logvar.exp() - 1.0 - logvar)


def scale_factor(vae, arrays: dict) -> float:
    "The factor that gives the pooled latents of all charts unit standard deviation."
    from mug_nb.vae import chart_latent
    z = torch.cat([chart_latent(vae, a).flatten() for a in arrays.values()])
    return 1.0 / float(z.std())


SOLUTIONS = {"7.1": latent_frames, "7.2": kl_to_standard, "7.3": scale_factor}
