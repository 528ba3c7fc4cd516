"""Audio front end: loading, the original's log-mel, the content-keyed cache, errors, time helpers, click track."""

import numpy as np
import pytest
import soundfile as sf

from mug_nb import chart
from mug_nb.audio import (AudioEmptyError, AudioError, AudioReadError, AudioSilentError, AudioTooShortError,
                          MelCache, click_track, load_audio, log_mel, mel_frame_to_ms, mel_to_note_frame,
                          note_to_mel_frame, plot_mel, seconds_to_mel_frames, tick)

SR = chart.SAMPLE_RATE


def _music(seconds=6.0, sr=44100, stereo=False, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 3300 * t)
    for s in np.arange(0.25, seconds - 0.1, 0.5):
        i = int(s * sr); n = int(0.04 * sr)
        y[i:i + n] += 0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.01 * sr))
    y = y.astype(np.float32)
    return np.stack([y, 0.5 * y], 1) if stereo else y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    y = _music(stereo=True)
    out = {}
    for ext, kw in dict(wav={}, flac={}, ogg=dict(format="OGG", subtype="VORBIS"), mp3=dict(format="MP3")).items():
        out[ext] = d / f"song.{ext}"; sf.write(out[ext], y, 44100, **kw)
    out["long"] = d / "long.ogg"; sf.write(out["long"], _music(40, 22050), 22050, format="OGG", subtype="VORBIS")
    out["dir"] = d
    return out


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_load_formats_mono_22050(files, ext):
    y = load_audio(files[ext])
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SR - 6.0) < 0.06      # mp3 adds encoder padding


def test_load_matches_librosa(files):
    import librosa
    ref, _ = librosa.load(files["ogg"], sr=SR)
    y = load_audio(files["ogg"])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_log_mel_equals_librosa_with_original_parameters(files):
    import librosa
    ref, _ = librosa.load(files["ogg"], sr=22050)
    ref = np.log1p(librosa.feature.melspectrogram(y=ref, sr=22050, n_mels=128, hop_length=128, n_fft=512))
    mel = log_mel(files["ogg"])
    assert mel.shape == (128, 1 + len(load_audio(files["ogg"])) // 128) == ref.shape
    assert mel.dtype == np.float32
    np.testing.assert_allclose(mel, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_mel(load_audio(files["ogg"])), mel)   # wave in = path in


def test_log_mel_peer_audio(peer_data):
    import librosa
    p = peer_data / "audio/osu-resources-derived/triangles_transcoded.ogg"
    ref, _ = librosa.load(p, sr=22050, duration=10)
    ref = np.log1p(librosa.feature.melspectrogram(y=ref, sr=22050, n_mels=128, hop_length=128, n_fft=512))
    mel = log_mel(p, max_duration=10)
    assert mel.shape[0] == 128 and abs(mel.shape[1] - ref.shape[1]) <= 1
    n = min(mel.shape[1], ref.shape[1]) - 2
    np.testing.assert_allclose(mel[:, :n], ref[:, :n], rtol=1e-4, atol=1e-4)


def test_cache_hit_identical(files, tmp_path):
    cache = MelCache(tmp_path / "mel")  # the hit/miss speed ratio is printed by benchmarks/bench_data.py
    first = cache(files["long"])
    for _ in range(3):
        again = cache(files["long"])
        assert np.array_equal(first, again) and again.dtype == np.float32
    assert cache.misses == 1 and cache.hits == 3
    assert first.shape == log_mel(files["long"]).shape
    assert np.abs(first - log_mel(files["long"])).max() < 0.01          # float16 storage


def test_cache_key_follows_content_and_parameters(files, tmp_path):
    cache = MelCache(tmp_path / "mel")
    copy = tmp_path / "renamed.wav"; copy.write_bytes(files["wav"].read_bytes())
    assert cache.key(copy) == cache.key(files["wav"])
    other = tmp_path / "other.wav"; sf.write(other, _music(seed=1), 44100)
    assert cache.key(other) != cache.key(files["wav"])
    assert MelCache(tmp_path / "mel", max_duration=3.0).key(files["wav"]) != cache.key(files["wav"])
    assert MelCache(tmp_path / "mel", dtype=np.float32).key(files["wav"]) != cache.key(files["wav"])
    k = cache.key(files["wav"]); cache(files["wav"])
    assert k in cache and np.array_equal(cache.load(k), cache(files["wav"]))
    with pytest.raises(KeyError): cache.load("0" * 40)


def test_cache_recovers_from_damaged_entry(files, tmp_path):
    cache = MelCache(tmp_path / "mel")
    k = cache.key(files["wav"]); good = cache(files["wav"])
    cache.path(k).write_bytes(b"garbage")
    assert np.array_equal(cache(files["wav"]), good)


@pytest.mark.parametrize("name,make,cls,words", [
    ("broken.ogg", lambda p: p.write_bytes(b"OggS not really an ogg"), AudioReadError, "cannot read"),
    ("missing.mp3", lambda p: None, AudioReadError, "not found"),
    ("empty.wav", lambda p: sf.write(p, np.zeros(0, np.float32), SR), AudioEmptyError, "no samples"),
    ("silent.wav", lambda p: sf.write(p, np.zeros(SR * 3, np.float32), SR), AudioSilentError, "silent"),
    ("short.wav", lambda p: sf.write(p, 0.5 * np.ones(2000, np.float32), SR), AudioTooShortError, "at least"),
])
def test_audio_errors_name_file_and_problem(tmp_path, name, make, cls, words):
    p = tmp_path / name; make(p)
    with pytest.raises(cls) as e: load_audio(p)
    assert isinstance(e.value, AudioError) and isinstance(e.value, ValueError)
    assert name in str(e.value) and words in str(e.value)
    with pytest.raises(AudioError): log_mel(p)


def test_bytes_input(files):
    assert np.array_equal(load_audio(files["wav"].read_bytes()), load_audio(files["wav"]))


def test_time_helpers_use_the_chart_grid():
    assert np.isclose(chart.FRAME_MS, chart.MEL_PER_NOTE_FRAME * chart.MEL_FRAME_MS)
    assert np.isclose(mel_frame_to_ms(chart.MEL_FRAMES), 190218.0, atol=1)
    assert mel_to_note_frame(15) == 1 and mel_to_note_frame(16) == 2 and note_to_mel_frame(4) == 32
    assert seconds_to_mel_frames(6.0) == 1 + 6 * SR // 128
    for ms in [0, 5.8, 46.44, 1000, 123456]:
        assert mel_to_note_frame(int(chart.ms_to_mel_frame(ms))) == int(chart.ms_to_frame(ms)) or \
            abs(chart.ms_to_frame(ms) - round(chart.ms_to_frame(ms))) < 1e-6


def test_click_track_ticks_at_notes():
    from mug_nb.osu import Note
    y = np.zeros(SR * 3, np.float32); y[::100] = 0.01
    notes = [Note(500, 0), Note(1500, 2, 1800), Note(2500, 1)]
    assert np.abs(click_track(notes, y, SR, gain=2.0)).max() <= 1.0       # never clips
    out = click_track(notes, y, SR, gain=0.3)                                # no renormalisation at this gain
    assert out.shape == y.shape and out.dtype == np.float32
    diff = np.abs(out - click_track([], y, SR, gain=0.3))
    for ms in (500, 1500, 2500):
        i = int(ms * SR / 1000)
        assert diff[i:i + len(tick())].max() > 0.1 and diff[i - 200:i].max() < 1e-6
    assert diff[int(1.0 * SR):int(1.4 * SR)].max() < 1e-6
    assert np.array_equal(click_track([500, 1500, 2500], y, SR, gain=0.3), out)   # plain ms times work too


def test_plot_mel_draws(files):
    import matplotlib
    matplotlib.use("Agg")
    from mug_nb.osu import Note
    ax = plot_mel(log_mel(files["wav"]), [Note(250, 0), Note(750, 3, 1200)], key_count=4)
    assert ax.get_xlim()[1] > 5 and len(ax.lines) == 2 and len(ax.patches) == 1
