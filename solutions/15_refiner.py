"Worked solutions of chapter 15_refiner's exercises."
import numpy as np

from mug_nb.chart import ms_to_frame


def row_frames(notes, T: int) -> list:
    "15.1: the frame of every head, once, in order, inside the window."
    frames = {int(ms_to_frame(n.time)) for n in notes}
    return sorted(f for f in frames if 0 <= f < T)


def receptive_field(dilations) -> int:
    "15.2: a kernel-3 convolution with dilation d reaches d frames to each side; stacked, the reaches add up."
    return int(sum(dilations))


def row_f1(pred, true, tol: int = 1) -> float:
    "15.3: greedy matching in time order, each predicted row taking the earliest unmatched true row within tol."
    p, free = np.flatnonzero(np.asarray(pred) > 0), list(np.flatnonzero(np.asarray(true) > 0))
    n_true = len(free)
    if len(p) + n_true == 0: return 1.0
    hits = 0
    for f in p:
        match = next((g for g in free if abs(g - f) <= tol), None)
        if match is not None: hits += 1; free.remove(match)
    return 2 * hits / (len(p) + n_true)


SOLUTIONS = {"15.1": row_frames, "15.2": receptive_field, "15.3": row_f1}
