"""Worked solutions of the exercises of 03_features."""
from mug_nb.features import FeatureError, _chart, prompt_to_ids


# 3.1: every note once, over the playable length (first head to last head or tail).
def nps(beatmap):
    if not beatmap.notes or beatmap.duration_ms <= 0:
        raise FeatureError(f"nps: a chart with notes and a length is needed (notes {beatmap.n_notes}, length {beatmap.duration_ms} ms)")
    return beatmap.n_notes / (beatmap.duration_ms / 1000)


# 3.2: jackspeed leads when one finger hits its column fast (here 10 a second in column 0, 21 s); the other
# columns carry slow holds (one every 400 ms), so a fifth of the notes are long notes: hybrid (10-40 %).
def hybrid_jacks():
    jacks = [(1000 + i * 100, 0) for i in range(210)]
    holds = [(1000 + i * 400, 1 + i % 3, 1000 + i * 400 + 250) for i in range(50)]
    return _chart(jacks + holds)


# 3.3: the ids of every feature at its maximum, compared with the end of its block.
def overflowing(vocab):
    out = []
    for i, f in enumerate(vocab.features):
        if f.kind != "numeric": continue
        top = prompt_to_ids({f.name: f.max}, vocab)[i]
        if top >= vocab.bases[i] + vocab.slots[i]: out.append(f.name)
    return out


SOLUTIONS = {"3.1": nps, "3.2": hybrid_jacks, "3.3": overflowing}
