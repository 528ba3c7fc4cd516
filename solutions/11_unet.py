"""Worked solutions of the exercises of 11_unet (checked by tests/test_exercises.py)."""
import torch

from mug_nb.unet import AudioConcatBlock, timestep_embedding


def skip_channels(model_channels, channel_mult, num_res_blocks):
    "Widths pushed on the skip stack: input conv, each encoder ResBlock, each Downsample (all levels but the last)."
    widths = [model_channels]
    for level, mult in enumerate(channel_mult):
        widths += [mult * model_channels] * num_res_blocks
        if level != len(channel_mult) - 1: widths.append(mult * model_channels)
    return widths


def decoder_in_channels(model_channels, channel_mult, num_res_blocks, audio_channels):
    "Each decoder ResBlock takes h (+ the level's audio map, first block only) + a popped skip."
    skips, ch, out = skip_channels(model_channels, channel_mult, num_res_blocks), channel_mult[-1] * model_channels, []
    for level in reversed(range(len(channel_mult))):
        ch += audio_channels[level]
        for _ in range(num_res_blocks + 1):
            out.append(ch + skips.pop())
            ch = channel_mult[level] * model_channels
    return out


@torch.no_grad()
def no_decoder_audio(unet, x, t, context, audios):
    "The forward pass of UNetModel with zeros in the decoder's audio concatenations."
    audios = unet.level_audio(x, audios)
    emb = unet.time_embed(timestep_embedding(t, unet.model_channels))
    if unet.prompt_embed is not None: emb = emb + unet.prompt_embed(context.mean(-1))
    hs, h, level = [], x, 0
    for module in unet.input_blocks:
        if isinstance(module, AudioConcatBlock): h = module(h, audios[level]); level += 1
        else: h = module(h, emb, context); hs.append(h)
    h = unet.middle_block(h, emb, context)
    for module in unet.output_blocks:
        if isinstance(module, AudioConcatBlock): level -= 1; h = module(h, torch.zeros_like(audios[level]))
        else: h = module(torch.cat([h, hs.pop()], dim=1), emb, context)
    return unet.out(h)


SOLUTIONS = {"11.1": skip_channels, "11.2": decoder_in_channels, "11.3": no_decoder_audio}
