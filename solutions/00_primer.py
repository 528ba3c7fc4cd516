"Worked solutions to the exercises of 00_primer."
import numpy as np


def judge(error_ms: float, od: float) -> str:
    "0.1: the first (narrowest) window that holds |error|, edges included; beyond the 50 window a miss."
    windows = {"MAX": 16, "300": 64 - 3 * od, "200": 97 - 3 * od, "100": 127 - 3 * od, "50": 151 - 3 * od}
    return next((name for name, w in windows.items() if abs(error_ms) <= w), "miss")


def notes_per_second(beatmap) -> float:
    "0.2: every note once (a long note by its head), over the first-to-last head span."
    times = [n.time for n in beatmap.notes]
    return len(times) / ((max(times) - min(times)) / 1000)


def chord_share(beatmap) -> float:
    "0.3: count the notes at each distinct head time; a chord is a time with two or more."
    _, counts = np.unique([n.time for n in beatmap.notes], return_counts=True)
    return float((counts >= 2).mean())


SOLUTIONS = {"0.1": judge, "0.2": notes_per_second, "0.3": chord_share}
