"""Read a Frets on Fire `notes.mid` guitar chart as 4K osu!mania notes, and estimate its audio offset.

Frets on Fire keeps one MIDI file per song; each difficulty uses five MIDI pitches (one per fret):
60-64 supaeasy, 72-76 easy, 84-88 medium, 96-100 amazing. A note held longer than `ln_min_ms` becomes a
long note. Five frets fold onto four columns with `column = fret * 4 // 5` (frets 3 and 4 share column 3).
The MIDI clock and the audio have a constant offset; `estimate_offset` finds it by cross-correlating the
chart's onsets with the audio's onset-strength envelope.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mug_nb.osu import Note

BASE = {"supaeasy": 60, "easy": 72, "medium": 84, "amazing": 96}


def read_fof_midi(path, difficulty: str = "medium", ln_min_ms: float = 400.0, key_count: int = 4) -> list[Note]:
    "Notes (ms, in MIDI time) of one difficulty of a Frets on Fire MIDI chart, folded onto `key_count` columns."
    import mido
    mid = mido.MidiFile(str(path))
    base = BASE[difficulty]
    tempo_map = []  # (tick, tempo) from every track (type-1 files keep tempo in track 0)
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "set_tempo": tempo_map.append((tick, msg.tempo))
    tempo_map = sorted(set(tempo_map)) or [(0, 500000)]

    def tick_to_ms(t):
        ms, last_tick, tempo = 0.0, 0, 500000
        for tk, tp in tempo_map:
            if tk > t: break
            ms += (tk - last_tick) * tempo / mid.ticks_per_beat / 1000; last_tick, tempo = tk, tp
        return ms + (t - last_tick) * tempo / mid.ticks_per_beat / 1000

    notes, open_ = [], {}
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type not in ("note_on", "note_off") or not base <= msg.note < base + 5: continue
            if msg.type == "note_on" and msg.velocity > 0: open_[msg.note] = tick
            elif msg.note in open_:
                t0, t1 = tick_to_ms(open_.pop(msg.note)), tick_to_ms(tick)
                col = (msg.note - base) * key_count // 5
                notes.append(Note(int(round(t0)), col, int(round(t1)) if t1 - t0 >= ln_min_ms else None))
    # one note per (time, column)
    uniq = {}
    for n in sorted(notes, key=lambda n: (n.time, n.column)): uniq.setdefault((n.time, n.column), n)
    return list(uniq.values())


def estimate_offset(notes, wave: np.ndarray, sr: int = 22050, max_lag_ms: float = 1000.0, hop: int = 32,
                    n_fft: int = 512) -> float:
    """The shift (ms) to add to the chart's times so that they best line up with the audio's onsets.

    The onset strength uses a short window (`n_fft` 512 = 23 ms): librosa's default 2048-sample window (93 ms)
    peaks well after the attack, and on the synthetic songs, whose true offset is 0, it reads +10 to +38 ms
    (median +28). With 512 samples it reads +3 to +9 ms (median +7; `tools/fof.py --bias` prints both)."""
    import librosa
    env = librosa.onset.onset_strength(y=wave, sr=sr, hop_length=hop, n_fft=n_fft)
    env = (env - env.mean()) / (env.std() + 1e-9)
    fr_ms = hop / sr * 1000
    times = np.unique([n.time for n in notes])
    best, best_lag = -np.inf, 0.0
    for lag in np.arange(-max_lag_ms, max_lag_ms + 0.5, 1.0):
        idx = np.round((times + lag) / fr_ms).astype(int)
        idx = idx[(idx >= 0) & (idx < len(env))]
        score = env[idx].mean() if len(idx) else -np.inf
        if score > best: best, best_lag = score, lag
    return float(best_lag)


def fof_mix(song_dir, sr: int = 22050) -> np.ndarray:
    "What a player hears: the backing track `song.ogg` plus the `guitar.ogg` stem (sample-aligned), mono at `sr`."
    import librosa
    song_dir = Path(song_dir)
    w, _ = librosa.load(song_dir / "song.ogg", sr=sr)
    g, _ = librosa.load(song_dir / "guitar.ogg", sr=sr)
    n = min(len(w), len(g)); mix = w[:n] + g[:n]
    return (mix / max(1.0, float(np.abs(mix).max()))).astype(np.float32)


def fof_reference(song_dir, difficulty: str = "medium", **estimate) -> tuple[list[Note], float]:
    """The chart of `song_dir/notes.mid` moved onto the audio's time line, and the shift (ms) applied.

    The chart follows the guitar, so the shift is estimated on the guitar stem, with the densest chart ("amazing"),
    and applied to every difficulty. `estimate`: keyword arguments of `estimate_offset` (`n_fft`, `hop`)."""
    import librosa
    song_dir = Path(song_dir)
    g, sr = librosa.load(song_dir / "guitar.ogg", sr=22050)
    lag = estimate_offset(read_fof_midi(song_dir / "notes.mid", "amazing"), g, sr, **estimate)
    d = int(round(lag))
    notes = read_fof_midi(song_dir / "notes.mid", difficulty)
    return [Note(n.time + d, n.column, None if n.end is None else n.end + d) for n in notes], lag


def _bias(songs: int = 8) -> None:
    "Print `estimate_offset` on synthetic songs (true offset 0) with librosa's default window and with ours."
    from mug_nb.synth import chart_for_song, synth_song
    for n_fft, hop in ((2048, 64), (512, 32)):
        lags = []
        for s in range(songs):
            song = synth_song(s, duration=40.0)
            lags.append(estimate_offset(chart_for_song(song, "Normal").notes, song.wave, song.sr, 150, hop, n_fft))
        print(f"n_fft {n_fft}, hop {hop}: lags {lags} ms, median {np.median(lags):+.0f} ms")


if __name__ == "__main__":
    import sys
    if "--bias" in sys.argv: _bias()
    else: print(__doc__)
