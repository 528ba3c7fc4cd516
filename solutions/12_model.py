"Worked solutions to the exercises of 12_model."
import copy


def trainable_count(model) -> int:
    "12.1: the parameters with requires_grad; the VAE (first_stage_model) is frozen, so it is left out."
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# 12.2: the audio encoder's levels are middle_channels x channel_mult = 16 x (1, 1, 1, 1, 2, 2, 2, 4, 4, 4)
# = (16, 16, 16, 16, 32, 32, 32, 64, 64, 64); each onset band adds 8 channels at level 6 (the latent rate): 32 -> 40.
# The U-Net concatenates the last four: (40, 64, 64, 64).
AUDIO_CHANNELS = (40, 64, 64, 64)


def no_s4(cfg):
    "12.3: a copy without S4 layers, attending only at the coarsest of its attention resolutions."
    out = copy.deepcopy(cfg)
    out.unet.s4_layer = False
    out.unet.attention_resolutions = (max(out.unet.attention_resolutions),)
    return out


SOLUTIONS = {"12.1": trainable_count, "12.2": AUDIO_CHANNELS, "12.3": no_s4}
