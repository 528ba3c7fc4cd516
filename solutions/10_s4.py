"""Worked solutions of the exercises of 10_s4 (checked by tests/test_exercises.py)."""
import torch
import torch.nn.functional as F

from mug_nb.s4 import _conj


def discretize_zoh(w, P, B, dt):
    "Zero-order hold: dA = exp(Δ A), dB = A^-1 (dA - I) B, on the conjugate-extended state."
    w2, P2, B2 = _conj(w), _conj(P), _conj(B)
    A = torch.diag_embed(w2) - P2[:, :, None] * P2.conj()[:, None, :]
    dA = torch.linalg.matrix_exp(dt[:, None, None].to(A.dtype) * A)
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    dB = torch.linalg.solve(A, (dA - eye) @ B2[..., None])[..., 0]
    return dA, dB


def causal_conv(u, k):
    "y_t = sum_{l<=t} k_l u_{t-l}: pad L-1 zeros on the left and correlate with the flipped kernel."
    H, L = k.shape
    return F.conv1d(F.pad(u, (L - 1, 0)), k.flip(-1)[:, None], groups=H)


def bidirectional(fwd, bwd, u):
    "The forward S4 on u plus the backward S4 on the reversed u, reversed back."
    return fwd(u)[0] + bwd(u.flip(-1))[0].flip(-1)


SOLUTIONS = {"10.1": discretize_zoh, "10.2": causal_conv, "10.3": bidirectional}
