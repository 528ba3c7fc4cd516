"Worked solutions of chapter 06_data's exercises."
import hashlib

import numpy as np

from mug_nb.chart import MEL_PER_NOTE_FRAME


def leaked_sets(entries: list, val_fraction: float = 0.1) -> set:
    "6.1: split the charts as the original did, then intersect the sets on each side."
    order = sorted(entries, key=lambda e: hashlib.md5(e["id"].encode()).hexdigest())
    n_train = len(order) - round(val_fraction * len(order))
    train, val = order[:n_train], order[n_train:]
    return {e["set"] for e in train} & {e["set"] for e in val}


def gain_db(mel: np.ndarray, db: float) -> np.ndarray:
    "6.2: back to power (expm1), scale by 10^(db/10), and log1p again."
    return np.log1p(np.expm1(np.asarray(mel, np.float64)) * 10 ** (db / 10)).astype(np.float32)


def crop(note, audio, start: int, frames: int):
    "6.3: note frame j covers mel frames 8j … 8j+7."
    m = MEL_PER_NOTE_FRAME
    return note[:, start:start + frames], audio[:, m * start:m * (start + frames)]


SOLUTIONS = {"6.1": leaked_sets, "6.2": gain_db, "6.3": crop}
