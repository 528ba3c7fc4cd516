"""Worked solutions of the exercises of 02_chart."""
import numpy as np

from mug_nb.chart import FRAME_MS, array_to_notes, notes_to_array


# 2.1: a time falls in frame int(ms / FRAME_MS), at the fraction of the frame left over.
def frame_of(ms): return int(ms / FRAME_MS)
def offset_of(ms): return ms / FRAME_MS - int(ms / FRAME_MS)


# 2.2: head in frame 3 (offset 0.25); the body covers frames 4..8 (the tail frame included, the head frame not);
# the end offset sits in the tail frame 8. Channels for 4K: start 0-3, start offset 4-7, holding 8-11, end offset 12-15.
def hand_array():
    a = np.zeros((16, 32), np.float32)
    a[1, 3], a[4 + 1, 3] = 1, 0.25
    a[8 + 1, 4:9] = 1
    a[12 + 1, 8] = 0.5
    return a


# 2.3: encode, decode, and keep the notes that did not come back exactly.
def lost_notes(notes, key_count):
    back = set(array_to_notes(notes_to_array(notes, key_count)[0], key_count))
    return [n for n in notes if n not in back]


SOLUTIONS = {"2.1": (frame_of, offset_of), "2.2": hand_array, "2.3": lost_notes}
