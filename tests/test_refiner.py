"""The note-frame refiner: row targets, the merge rule, the network, its training stage, and generation with it."""
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
from mug_nb.chart import FRAME_MS, array_to_notes, notes_to_array  # noqa: E402
from mug_nb.osu import Note  # noqa: E402
from mug_nb.refiner import (RefinerConfig, RefinerError, RowRefiner, apply_rows, refine_logits,  # noqa: E402
                            refiner_loss, row_targets)


def logits_of(notes, T=16):
    "A draft of confident logits for `notes` (heads/holds ±4, offsets as encoded)."
    a, _ = notes_to_array(notes, 4, T)
    return np.concatenate([a[:4] * 8 - 4, a[4:8], a[8:12] * 8 - 4, a[12:]]).astype(np.float32)


def rows_of(notes, T=16):
    r, o = row_targets(torch.from_numpy(notes_to_array(notes, 4, T)[0])[None])
    return r[0].numpy() * 8 - 4, o[0].numpy()


def test_row_targets_count_a_chord_once_and_keep_its_offset():
    a, _ = notes_to_array([Note(100, 0), Note(100, 3), Note(300, 1, 500)], 4, 16)
    row, off = row_targets(torch.from_numpy(a)[None])
    assert row[0].tolist() == [0, 0, 1, 0, 0, 0, 1] + [0] * 9
    assert abs((2 + float(off[0, 2])) * FRAME_MS - 100) < 0.5 and abs((6 + float(off[0, 6])) * FRAME_MS - 300) < 0.5


def test_apply_rows_moves_drops_and_adds_rows_keeping_columns():
    truth = [Note(100, 0), Note(100, 2), Note(300, 1), Note(500, 3)]
    draft = [Note(150, 0), Note(150, 2), Note(300, 1), Note(420, 2)]   # late chord, invented note, missing row
    out = array_to_notes(apply_rows(logits_of(draft), *rows_of(truth)), 4, logits=True)
    assert [n.time for n in out] == [100, 100, 300, 500]
    assert {n.column for n in out[:2]} == {0, 2} and out[2].column == 1     # the moved chord keeps its columns


def test_apply_rows_avoids_a_held_column_for_a_new_row():
    draft = logits_of([Note(0, 0, 600)])                # column 0 held through frame 12
    want, off = rows_of([Note(0, 0), Note(300, 0)])
    out = array_to_notes(apply_rows(draft, want, off), 4, logits=True)
    assert [(n.time, n.column) for n in out if n.time > 200] == [(300, 1)] or \
           [n.column for n in out if n.time > 200] != [0]


def test_apply_rows_keeps_the_draft_when_rows_agree():
    notes = [Note(46, 1), Note(200, 2, 450), Note(600, 0)]
    d = logits_of(notes)
    same = apply_rows(d, *rows_of(notes))
    assert [(n.time, n.column, n.end) for n in array_to_notes(same, 4, logits=True)] == \
           [(n.time, n.column, n.end) for n in array_to_notes(d, 4, logits=True)]


@pytest.mark.parametrize("bad", [np.zeros((12, 16)), np.zeros(16)])
def test_apply_rows_rejects_bad_shapes(bad):
    with pytest.raises(RefinerError, match="do not fit"):
        apply_rows(bad, np.zeros(16), np.zeros(16)) if bad.ndim == 2 else apply_rows(np.zeros((16, 16)), np.zeros(8), bad)


def test_refiner_checks_inputs_and_starts_as_the_identity():
    r = RowRefiner(RefinerConfig(channels=16))
    with pytest.raises(RefinerError, match="do not fit"):
        r(torch.zeros(1, 16, 8), torch.zeros(1, 128, 60), torch.zeros(1, 32))
    with pytest.raises(RefinerError, match="positive"):
        RowRefiner(RefinerConfig(channels=0))
    d = logits_of([Note(100, 0), Note(420, 3)])
    out = refine_logits(r, torch.from_numpy(d)[None], torch.randn(1, 128, 128), torch.randn(1, 32))[0]
    assert [(n.time, n.column) for n in array_to_notes(out, 4, logits=True)] == \
           [(n.time, n.column) for n in array_to_notes(d, 4, logits=True)]


@pytest.mark.slow
def test_refiner_learns_rows_from_audio_onsets():
    "With an empty draft, a small refiner learns to put rows where the mel has clicks (it can fail: the loss must fall)."
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    T, B = 64, 8
    r = RowRefiner(RefinerConfig(channels=16, dilations=(1, 2)))
    opt = torch.optim.Adam(r.parameters(), lr=3e-3)

    def batch():
        note = torch.zeros(B, 16, T); mel = torch.rand(B, 128, 8 * T, generator=g) * 0.1
        on = torch.rand(B, T, generator=g) < 0.2
        note[:, 0] = on.float()
        sub = torch.randint(0, 8, (B, T), generator=g)
        note[:, 4] = on * (sub.float() + 0.5) / 8
        for b, f in zip(*torch.nonzero(on, as_tuple=True)):
            mel[b, :, 8 * f + sub[b, f]] += 3.0
        return note, mel, torch.full((B, 16, T), -8.0)

    losses = []
    for _ in range(120):
        note, mel, draft = batch()
        loss = refiner_loss(*r(draft, mel, torch.zeros(B, 32)), note)
        opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.35 * np.mean(losses[:5])
    note, mel, draft = batch()
    with torch.no_grad(): logit, off = r(draft, mel, torch.zeros(B, 32))
    rows = note[:, 0] > 0
    assert ((logit > 0) == rows).float().mean() > 0.95
    assert (off[rows] - note[:, 4][rows]).abs().mean() < 0.08             # within the frame: < 4 ms


def test_model_with_refiner_saves_and_loads(tmp_path):
    from mug_nb.model import Config, build_model, load_checkpoint, save_checkpoint
    cfg = Config.tiny(); cfg.refiner.channels = 16
    m = build_model(cfg)
    with torch.no_grad(): m.refiner.out.bias.fill_(0.25)
    back = load_checkpoint(save_checkpoint(m, path=tmp_path / "m"))
    assert back.refiner is not None and float(back.refiner.out.bias.detach()[0]) == 0.25
    assert build_model(Config.tiny()).refiner is None and build_model(Config.full()).refiner is None


def test_generate_uses_the_refiner_and_can_skip_it(tmp_path):
    import soundfile as sf
    from mug_nb.generate import generate
    from mug_nb.model import Config, build_model
    from mug_nb.synth import synth_song
    s = synth_song(seed=3, duration=8.0)
    p = tmp_path / "song.wav"; sf.write(p, s.wave, s.sr)
    cfg = Config.tiny(); cfg.refiner.channels = 16; cfg.prompt.vocab = "default"
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    kw = dict(count=1, steps=2, cfg_scale=1.0, seed=1, model=m, snap=None, jack_interval=None)
    plain = generate(p, {}, refine=False, **kw)[0].notes
    same = generate(p, {}, **kw)[0].notes          # untrained: the draft's notes; only a row's offsets are unified
    assert len(plain) > 20 and len(same) == len(plain)
    assert all(any(q.column == n.column and abs(q.time - n.time) <= FRAME_MS + 1 for q in plain) for n in same)
    with torch.no_grad(): m.refiner.out.bias[0] = -20.0                             # a refiner that rejects every row
    assert generate(p, {}, **kw)[0].notes == []
    assert generate(p, {}, refine=False, **kw)[0].notes == plain
