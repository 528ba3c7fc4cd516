"""Worked solutions of the exercises of 01_osu."""
import numpy as np

from mug_nb.osu import lane_x

# 1.1: any x in column 5's lane of 7K (column_of(x, 7) == 5: 366 <= x < 439); lane_x gives the centre.
# A hold is type 128, and its end comes before the first ':' of the sixth field.
HOLD_7K = f"{lane_x(5, 7)},192,1000,128,0,1750:0:0:0:0:"

# 1.2: the slider is 70 px long, SliderMultiplier 1.4, beat length 500 ms, green line -25 -> multiplier 0.25:
# end = floor(2000 + 70 * 500 * 0.25 * 1 * 0.01 / 1.4) = floor(2062.5) = 2062.
# Check it: add "1900,-25,4,2,0,60,0,0" to [TimingPoints] of TINY and read_osu(...).notes[3].end == 2062.
SLIDER_END = 2062


# 1.3: count the holds (end is not NaN) per column with bincount, over all key_count columns.
def holds_per_column(bm):
    t, c, e = bm.note_arrays()
    return np.bincount(c[~np.isnan(e)], minlength=bm.key_count).tolist()


SOLUTIONS = {"1.1": HOLD_7K, "1.2": SLIDER_END, "1.3": holds_per_column}
