"Worked solutions to the exercises of 19_generate."


def splice(original, generated, start_ms: float, end_ms: float) -> list:
    """19.3: taps only. `splice_notes` also drops a generated note that would start inside a kept long note of its
    column, and turns a generated long note that would end past the range into a tap."""
    keep = [n for n in original if not start_ms <= n.time < end_ms]
    new = [n for n in generated if start_ms <= n.time < end_ms]
    return sorted(keep + new, key=lambda n: (n.time, n.column))


SOLUTIONS = {
    "19.1": 4095,   # z_len = (int(n / 64 / 32) + 1) * 32 is 64 while int(n / 2048) == 1: 2048 <= n <= 4095
    "19.2": 9,      # the third variant is i = 2: seed 7 + 2
    "19.3": splice,
}
