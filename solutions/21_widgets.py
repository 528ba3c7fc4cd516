"""Worked solutions to the exercises of 21_widgets."""
from mug_nb.generate import invert_chart

# 21.1: switch the default style and star rating off, switch the two features on.
asks = {"style_on": False, "sr_on": True, "sr": 5.0, "ln_ratio_on": True, "ln_ratio": 0.3}


def seconds_left(done, total, elapsed):
    "Average seconds per call so far, times the calls still to come."
    if done == 0: return None
    return elapsed / done * (total - done)


def prompt_at_rate(path, rate):
    "The prompt of the chart at `path`, played at `rate`."
    return invert_chart(path, rate=rate)


SOLUTIONS = {"21.1": asks, "21.2": seconds_left, "21.3": prompt_at_rate}
