"Worked solutions of chapter 05_synth's exercises."
import numpy as np


def worst_offset(beatmap, song) -> float:
    "5.2: for each head, the distance to the onsets just before and just after it; the largest of the smaller ones."
    on = song.onsets_ms
    t = np.array([n.time for n in beatmap.notes], np.float64)
    i = np.searchsorted(on, t)
    before = np.abs(t - on[np.clip(i - 1, 0, len(on) - 1)])
    after = np.abs(on[np.clip(i, 0, len(on) - 1)] - t)
    return float(np.minimum(before, after).max())


def parts_at(song, time_ms: float) -> set:
    "5.3: the parts of the events that start within 1 ms."
    ev = song.events
    return set(str(p) for p in ev["part"][np.abs(ev["time_ms"] - time_ms) <= 1])


SOLUTIONS = {
    "5.1": dict(ln_p=0.0, nps=3.0, max_chord=2),   # no long notes, 3 rows per second, chords of two at most
    "5.2": worst_offset,
    "5.3": parts_at,
}
