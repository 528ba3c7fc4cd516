"Worked solutions to the exercises of 18_control."
from mug_nb.control import KNOB_RANGE, Knobs, _rows, render
from mug_nb.osu import Note


def trill(notes) -> list:
    """18.1: one tap per row, alternating columns 0 and 1. On the Insane chart of synth0011 stream and technical
    come out on top (a trill is a two-column stream), with stamina close behind; jackspeed is lowest."""
    return [Note(row[0].time, k % 2, None) for k, row in enumerate(_rows(notes))]


def density_for(draft, n: int) -> float:
    "18.2: bisection on the density knob (the note count only grows with it)."
    lo, hi = KNOB_RANGE['density']
    count = lambda d: len(render(draft, Knobs(density=d)))
    for _ in range(40):
        mid = (lo + hi) / 2
        if abs(count(mid) - n) <= 0.02 * n: return mid
        lo, hi = (mid, hi) if count(mid) < n else (lo, mid)
    return (lo + hi) / 2


SOLUTIONS = {"18.1": trill, "18.2": density_for, "18.3": {"sr": 5, "hb": 1}}
