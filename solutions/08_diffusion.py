"""Worked solutions of chapter 08_diffusion's exercises."""
import numpy as np
import torch

from mug_nb.diffusion import make_beta_schedule, schedule_buffers, snr

# 8.1: the SNR ᾱ/(1−ᾱ) falls below 1 where ᾱ falls below 1/2
first_noisy_t = int(torch.nonzero(snr(schedule_buffers(make_beta_schedule("linear"))["alphas_cumprod"]) < 1)[0])


def predict_x0(x_t, eps, alpha_bar):
    "Invert x_t = sqrt(ᾱ) x0 + sqrt(1 − ᾱ) ε."
    a = torch.as_tensor(alpha_bar)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def trailing_timesteps(steps: int, T: int = 1000):
    "T/steps − 1, 2T/steps − 1, …, T − 1."
    return np.arange(1, steps + 1) * (T // steps) - 1


SOLUTIONS = {"8.1": first_noisy_t, "8.2": predict_x0, "8.3": trailing_timesteps}
