"Worked solutions to the exercises of 13_fast."


def winograd_fraction(m: int) -> float:
    "13.1: F(m, 3) takes m + 2 multiplications for m outputs; the plain 3-tap convolution 3 per output."
    return (m + 2) / (3 * m)


def fold_break_even(heads: int, tokens: int) -> int:
    """13.2: folded 2·h·t·C < plain 2C² + 2·t·C  <=>  h·t < C + t  <=>  C > t·(h - 1);
    the smallest such whole width is t·(h - 1) + 1 (148 for 8 heads and 21 prompt tokens)."""
    return tokens * (heads - 1) + 1


def audio_only_channels(channels: int, groups: int, a0: int, a1: int) -> int:
    "13.3: groups of channels // groups; round a0 up and a1 down to group boundaries (as _block_constants does)."
    gs = channels // groups
    p0, p1 = -(-a0 // gs) * gs, (a1 // gs) * gs
    return max(0, p1 - p0)


SOLUTIONS = {"13.1": winograd_fraction, "13.2": fold_break_even, "13.3": audio_only_channels}
