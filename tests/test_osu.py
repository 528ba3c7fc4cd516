"""Tests of `mug_nb.osu`: reading, writing, archives and errors (peer-data checks skip when absent)."""
import csv
import random
import string
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mug_nb.osu import (Beatmap, BadArchiveError, KeyCountError, MissingSectionError, Note, OsuError,
                        OsuSyntaxError, TimingPoint, UnsafeArchiveError, WrongModeError, column_of, dumps_osu,
                        extract_osz, lane_x, read_osu, read_osz, write_osu, write_osz)

TINY = """osu file format v14

[General]
AudioFilename: audio.ogg
Mode: 3

[Metadata]
Title:Tiny
TitleUnicode:タイニー

[Difficulty]
CircleSize:4
SliderMultiplier:1.4

[TimingPoints]
1000,500,4,2,0,60,1,0

[HitObjects]
64,192,1000,1,0,0:0:0:0:
192,192,1500,128,0,2250:0:0:0:0:
"""


def _peer_rows(peer_data):
    return list(csv.DictReader(open(peer_data / "reference/maps.csv", encoding="utf-8")))


@pytest.fixture(autouse=True)
def fast_reader(monkeypatch):
    "Every test here reads through the compiled fast reader (and its fallback), not only after JIT_AFTER charts."
    from mug_nb import osu
    monkeypatch.setattr(osu, "JIT_AFTER", 0)
    return osu._kernels()


# ---------------------------------------------------------------- basics

def test_tiny_reads():
    bm = read_osu(TINY)
    assert isinstance(bm, Beatmap) and bm.key_count == 4
    assert bm.notes == [Note(1000, 0), Note(1500, 1, 2250)]
    assert bm.n_holds == 1 and bm.n_taps == 1 and bm.audio_filename == "audio.ogg"
    assert bm.metadata["TitleUnicode"] == "タイニー"
    assert bm.bpm_range() == (120.0, 120.0) and bm.duration_ms == 1250


def test_bom_crlf_bytes_and_path(tmp_path):
    data = ("\ufeff" + TINY).replace("\n", "\r\n").encode("utf-8")
    p = tmp_path / "chart.osu"
    p.write_bytes(data)
    for src in (data, p, str(p), data.decode("utf-8")):
        bm = read_osu(src)
        assert bm.notes == [Note(1000, 0), Note(1500, 1, 2250)] and bm.metadata["Title"] == "Tiny"
    assert read_osu(p).path == p


def test_notes_are_immutable():
    import dataclasses
    import pickle
    bm = read_osu(TINY)
    n = bm.notes[1]
    for field, value in (("time", 0), ("column", 3), ("end", None)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(n, field, value)
    with pytest.raises((AttributeError, TypeError)):
        n.extra = 1                                    # slots: no new attributes either
    assert n == Note(1500, 1, 2250) and bm.note_arrays()[2][1] == 2250  # the arrays still agree with the note
    moved = dataclasses.replace(n, time=1600)
    assert moved == Note(1600, 1, 2250) and moved != n and n.time == 1500
    assert len({Note(1, 0), Note(1, 0), Note(1, 0, 5)}) == 2 and pickle.loads(pickle.dumps(n)) == n
    assert Note(5, 2).end is None and Note(time=5, column=2, end=9).is_hold


def test_columns_like_osu():
    assert [column_of(x, 4) for x in (0, 127, 128, 255, 256, 383, 384, 511)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert column_of(-5, 4) == 0 and column_of(9999, 4) == 3 and column_of(511.9, 7) == 6
    # osu!: floor(x*K/512); the original MuG used x // int(512/K), which differs at 7K
    assert column_of(438, 7) == 5  # 438 // 73 == 6 would be wrong
    for k in range(1, 19):
        assert [column_of(lane_x(c, k), k) for c in range(k)] == list(range(k))


def test_key_count_default_and_limits():
    no_diff = "osu file format v14\n[General]\nMode: 3\n[HitObjects]\n444,320,1000,5,2,0:0:0:0:\n"
    bm = read_osu(no_diff)
    assert bm.key_count == 5 and bm.notes == [Note(1000, 4)]
    assert read_osu(TINY.replace("CircleSize:4", "CircleSize:40")).key_count == 18  # osu! clamps to 1-18
    assert read_osu(TINY.replace("CircleSize:4", "CircleSize:0")).key_count == 1
    with pytest.raises(KeyCountError):
        read_osu(TINY.replace("CircleSize:4", "CircleSize:four"))


def test_slider_and_spinner_become_holds():
    text = TINY.replace("1000,500,4,2,0,60,1,0", "1000,500,4,2,0,60,1,0\n3000,-50,4,2,0,60,0,0") + (
        "320,192,2000,2,0,L|320:100,1,70\n"      # 70 px at 140 px/beat = 250 ms
        "320,192,3000,2,0,L|320:100,2,70\n"      # 2 slides under a 2x green line: 2*70/140*500*0.5
        "256,192,4000,12,0,4500,0:0:0:0:\n")     # spinner
    notes = read_osu(text).notes
    assert Note(2000, 2, 2250) in notes and Note(3000, 2, 3250) in notes
    spin = [n for n in notes if n.time == 4000]
    assert len(spin) == 1 and spin[0].end == 4500 and 0 <= spin[0].column < 4


def test_spinners_like_osu():
    from mug_nb.osu import LegacyRandom, _mania_seed
    diff = {"HPDrainRate": "5", "CircleSize": "4", "OverallDifficulty": "5", "ApproachRate": "0"}
    assert _mania_seed(diff) == 386                       # osu!'s RandomX for this chart in its test data
    r = LegacyRandom(386)
    assert [r.next_int(0, 4) for _ in range(4)] == [0, 0, 1, 3]
    text = ("osu file format v14\n[General]\nMode: 3\n[Difficulty]\nHPDrainRate:5\nCircleSize:4\n"
            "OverallDifficulty:5\nApproachRate:0\n[TimingPoints]\n0,500,4,2,0,60,1,0\n[HitObjects]\n"
            "256,192,1000,12,0,2000,0:0:0:0:\n256,192,3000,8,0,3050,0:0:0:0:\n"
            "256,192,5000,12,0,6000,0:0:0:0:\n256,192,7000,12,0,8000,0:0:0:0:\n")
    # columns 0, 0, 1, 3 as osu! draws them; the 50 ms spinner becomes a tap
    assert read_osu(text).notes == [Note(1000, 0, 2000), Note(3000, 0), Note(5000, 1, 6000), Note(7000, 3, 8000)]


def test_spinner_columns_match_osu(peer_data):
    # columns and ends from ppy/osu's expected conversion of mania-specific-spinner.osu
    notes = read_osu(peer_data / "maps/ppy-osu/mania-specific-spinner.osu").notes
    assert notes == [Note(11783, 0, 15116), Note(91545, 0, 92735), Note(152497, 1, 153687), Note(231545, 3, 232974)]


def test_slider_end_rounding_matches_osu(peer_data):
    # values from ppy/osu's expected conversion of 4869637.osu (Mania.Tests/Resources/Testing/Beatmaps)
    notes = {n.time: n for n in read_osu(peer_data / "maps/ppy-osu/4869637.osu").notes if n.end}
    assert notes[11783].end == 15116   # spinner
    assert notes[15116].end == 15235 and notes[16545].end == 16783
    assert notes[17021].end == 17259 and notes[24641].end == 24879
    # 3 slides of 140 px at SliderMultiplier 1: 2499.9999999999995 in double precision, 2500 in osu!'s float32
    assert read_osu(peer_data / "maps/ppy-osu/mania-slider.osu").notes == [Note(500, 2, 2500)]


def test_old_format_offset():
    old = TINY.replace("osu file format v14", "osu file format v4")
    bm = read_osu(old)
    assert bm.notes[0].time == 1024 and bm.timing_points[0].time == 1024  # osu!'s +24 ms for < v5
    assert read_osu(dumps_osu(bm)).notes == bm.notes


# ---------------------------------------------------------------- errors

def test_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.osu"
    p.write_text(TINY.replace("192,192,1500,128,0,2250:0:0:0:0:", "192,192,1500,128,0"), encoding="utf-8")
    with pytest.raises(OsuSyntaxError) as e:
        read_osu(p)
    assert e.value.line_no == 20 and "bad.osu" in str(e.value) and "line 20" in str(e.value)
    assert "end time" in str(e.value)
    with pytest.raises(OsuSyntaxError, match="line 16"):
        read_osu(TINY.replace("1000,500,4,2,0,60,1,0", "1000;500"))
    with pytest.raises(OsuSyntaxError, match="object type"):
        read_osu(TINY.replace("64,192,1000,1,", "64,192,1000,4,"))
    with pytest.raises(OsuSyntaxError, match="UTF-8"):
        read_osu(TINY.encode("utf-8") + b"\xff\xfe")


def test_missing_section_and_wrong_mode():
    with pytest.raises(MissingSectionError, match=r"\[General\]"):
        read_osu("osu file format v14\n[Metadata]\nTitle:x\n")
    with pytest.raises(WrongModeError, match="not an osu!mania chart"):
        read_osu(TINY.replace("Mode: 3", "Mode: 1"))
    assert all(issubclass(c, ValueError) for c in (OsuError, WrongModeError, UnsafeArchiveError))


def test_missing_file(tmp_path):
    with pytest.raises(OsuError, match="cannot read"):
        read_osu(tmp_path / "nope.osu")


# ---------------------------------------------------------------- writing

def test_write_read_roundtrip_tiny(tmp_path):
    bm = read_osu(TINY)
    p = write_osu(bm, tmp_path / "out.osu")
    again = read_osu(p)
    assert again.notes == bm.notes and again.timing_points == bm.timing_points
    assert again.general == bm.general and again.metadata == bm.metadata and again.difficulty == bm.difficulty
    assert ",128,0,2250:" in p.read_text(encoding="utf-8")


def test_samples_read_and_roundtrip(samples):
    charts = sorted((samples / "charts").glob("*.osu"))
    assert len(charts) >= 2
    holds = 0
    for p in charts:
        bm = read_osu(p)
        assert bm.key_count == 4 and bm.n_notes > 20
        holds += bm.n_holds
        assert read_osu(dumps_osu(bm)).notes == bm.notes
    assert holds > 0


# ---------------------------------------------------------------- peer data: all 104 files

def test_peer_maps_match_reference(peer_data):
    rows = _peer_rows(peer_data)
    assert len(rows) == 104
    bad = []
    for r in rows:
        bm = read_osu(peer_data / r["file"])
        got = (bm.key_count, bm.n_notes, bm.n_holds)
        want = (int(r["keys"]), int(r["n_objects"]), int(r["n_ln"]))
        if got != want:
            bad.append((r["file"], got, want))
        if r["bpm_min"]:
            lo, hi = bm.bpm_range()
            assert abs(lo - float(r["bpm_min"])) < 1e-2 and abs(hi - float(r["bpm_max"])) < 1e-2, r["file"]
        if r["first_ms"]:
            assert bm.first_ms == float(r["first_ms"]), r["file"]
    assert not bad, bad


def test_peer_maps_roundtrip(peer_data, tmp_path):
    for i, r in enumerate(_peer_rows(peer_data)):
        bm = read_osu(peer_data / r["file"])
        again = read_osu(write_osu(bm, tmp_path / f"{i}.osu"))
        assert again.notes == bm.notes, r["file"]
        assert again.timing_points == bm.timing_points, r["file"]
        assert (again.general, again.metadata, again.difficulty) == (bm.general, bm.metadata, bm.difficulty)
        assert again.key_count == bm.key_count and again.events == bm.events


def test_welcome_osz_is_not_mania(peer_data):
    with pytest.raises(WrongModeError, match="not an osu!mania chart"):
        read_osz(peer_data / "audio/osu-resources/welcome.osz")


# ---------------------------------------------------------------- archives

def test_osz_roundtrip_and_extract(tmp_path):
    bm = read_osu(TINY)
    p = write_osz(tmp_path / "a.osz", {"Tiny [4K].osu": bm}, {"audio.ogg": b"OggS..."}, {"bg.jpg": b"jpg"})
    arc = read_osz(p)
    assert arc.charts["Tiny [4K].osu"].notes == bm.notes and arc.audio == {"audio.ogg": b"OggS..."}
    assert arc.other == {"bg.jpg": b"jpg"}
    files = extract_osz(p, tmp_path / "out")
    assert sorted(f.name for f in files) == ["Tiny [4K].osu", "audio.ogg", "bg.jpg"]
    with pytest.raises(FileExistsError):
        write_osz(p, {"x.osu": bm})
    with pytest.raises(FileExistsError):
        extract_osz(p, tmp_path / "out")


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/../../x", "..\\..\\x", "C:/x", "C:\\x"])
def test_unsafe_archive_refused(tmp_path, name):
    p = tmp_path / "evil.osz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("ok.osu", TINY)
        z.writestr(name, b"gotcha")
    with pytest.raises(UnsafeArchiveError):
        read_osz(p)
    with pytest.raises(UnsafeArchiveError):
        extract_osz(p, tmp_path / "target")
    assert not (tmp_path / "target").exists() or not any((tmp_path / "target").rglob("*"))
    assert not (tmp_path.parent / "x").exists()


def test_bad_archives(tmp_path):
    p = tmp_path / "junk.osz"
    p.write_bytes(b"this is not a zip")
    with pytest.raises(BadArchiveError):
        read_osz(p)
    with zipfile.ZipFile(tmp_path / "empty.osz", "w") as z:
        z.writestr("readme.txt", "no charts")
    with pytest.raises(BadArchiveError, match="at least one .osu"):
        read_osz(tmp_path / "empty.osz")


def _declare_size(path, member, size, packed=None):
    "Rewrite the sizes an archive states for `member` (central directory and local header), leaving its data alone."
    import struct
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        local = z.getinfo(member).header_offset
    struct.pack_into("<I", data, local + 22, size)
    if packed is not None:
        struct.pack_into("<I", data, local + 18, packed)
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        n = struct.unpack_from("<H", data, i + 28)[0]
        if bytes(data[i + 46:i + 46 + n]) == member.encode():
            struct.pack_into("<I", data, i + 24, size)
            if packed is not None:
                struct.pack_into("<I", data, i + 20, packed)
        i = data.find(b"PK\x01\x02", i + 4)
    path.write_bytes(bytes(data))


@pytest.fixture
def no_content_reads(monkeypatch):
    "Fail the test if any entry's content is opened: a bomb must be refused from the directory alone."
    opener = zipfile.ZipFile.open

    def refuse(self, name, mode="r", *a, **k):
        if mode == "r":
            raise AssertionError("an entry's content was read")
        return opener(self, name, mode, *a, **k)
    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_600mb_chart_refused_from_directory(tmp_path, no_content_reads):
    import time
    p = tmp_path / "bomb.osz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb [4K].osu", TINY)
    _declare_size(p, "bomb [4K].osu", 600_000_000)            # the directory now says 600 MB
    with zipfile.ZipFile(p) as z:
        assert z.getinfo("bomb [4K].osu").file_size == 600_000_000
    for f in (read_osz, lambda q: extract_osz(q, tmp_path / "out")):
        t0 = time.perf_counter()
        with pytest.raises(BadArchiveError) as e:
            f(p)
        assert time.perf_counter() - t0 < 0.1
        assert "bomb.osz" in str(e.value) and "'bomb [4K].osu'" in str(e.value) and "600,000,000" in str(e.value)
        assert "at most 16,777,216 bytes" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_chart_cap_is_per_chart_entry(tmp_path, no_content_reads):
    p = tmp_path / "a.osz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.osu", TINY)
        z.writestr("song.ogg", b"OggS")
    _declare_size(p, "a.osu", 2**24 + 1, packed=2**24 + 1)
    with pytest.raises(BadArchiveError, match=r"'a.osu' unpacks to 16,777,217 bytes"):
        read_osz(p)
    q = tmp_path / "b.osz"                                         # the same size is fine for audio
    with zipfile.ZipFile(q, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.osu", TINY)
        z.writestr("song.ogg", b"OggS")
    _declare_size(q, "song.ogg", 2**24 + 1, packed=2**24 + 1)
    with pytest.raises(AssertionError, match="content was read"):  # passed every cap, then reading began
        read_osz(q)


def test_compression_ratio_refused(tmp_path, no_content_reads):
    p = tmp_path / "zeros.osz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:      # a real 8 MiB storyboard of zeros, ~8 KB packed
        z.writestr("a.osu", TINY)
        z.writestr("zeros.osb", bytes(8 * 2**20))
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("zeros.osb")
        assert info.file_size > 500 * info.compress_size
    with pytest.raises(BadArchiveError, match=r"zeros\.osz: entry 'zeros\.osb' unpacks to 8,388,608 bytes .* at most 100x"):
        read_osz(p)
    with pytest.raises(BadArchiveError, match="at most 100x"):
        extract_osz(p, tmp_path / "out")


def test_total_size_refused(tmp_path, no_content_reads):
    p = tmp_path / "big.osz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.osu", TINY)
        z.writestr("a.ogg", b"OggS")
        z.writestr("b.ogg", b"OggS")
    for name in ("a.ogg", "b.ogg"):                                # 600 MB each, stored: ratio 1, no chart
        _declare_size(p, name, 600_000_000, packed=600_000_000)
    with pytest.raises(BadArchiveError, match=r"big\.osz: entry 'b\.ogg' takes the unpacked total to 1,200,000,"):
        read_osz(p)


def test_understated_size_is_not_believed(tmp_path):
    p = tmp_path / "liar.osz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.osu", TINY)
        z.writestr("big.osb", bytes(4 * 2**20))                # 4 MiB of zeros that says it is 1,000 bytes
    _declare_size(p, "big.osb", 1000)
    with pytest.raises(BadArchiveError, match=r"cannot read entry 'big\.osb'"):
        read_osz(p)                                            # zipfile stops at the stated size: a CRC error


def test_real_archives_pass_the_caps(peer_data, tmp_path):
    from mug_nb.osu import MAX_RATIO
    bm = read_osu(peer_data / "maps/ppy-osu/4869637.osu")          # real chart text packs about 4-10x
    p = write_osz(tmp_path / "real.osz", {"a.osu": bm}, {"audio.ogg": random.Random(0).randbytes(2**21)})
    with zipfile.ZipFile(p) as z:
        assert all(i.file_size < MAX_RATIO * i.compress_size for i in z.infolist() if i.filename.endswith(".osu"))
    assert read_osz(p).charts["a.osu"].notes == bm.notes


# ---------------------------------------------------------------- fuzzing: OsuError or a Beatmap, nothing else

_LINES = TINY.splitlines() + [
    "[HitObjects]", "[TimingPoints]", "[General]", "[Difficulty]", "Mode: 3", "Mode: 0", "CircleSize:7",
    "CircleSize:0", "CircleSize:nan", "SliderMultiplier:0", "SliderMultiplier:inf",
    "256,192,500,2,0,L|256:100,3,140", "256,192,500,2,0,L|x:y", "256,192,500,2,0,B|1:2|3:4,2",
    "256,192,500,12,0,600", "1,1,1e400,1,0", "1,1,nan,128,0,5:", "-3,1,-1,128,0,-9:0", "1e9,1,1,1,0",
    "0,-1e-300", "0,nan,4,1,1,1,1,0", "0,500,0,0,0,0,0,0", "0,1e308", "osu file format v3", "osu file format v99999",
    "//comment", "", "[", "]", "[Colours]", "Combo1 : 1,2,3", ":", ",,,,", "x", "\ufeff", "\x00",
]


@st.composite
def osu_texts(draw):
    kind = draw(st.sampled_from(["mutate", "lines", "random"]))
    if kind == "random":
        return draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
    if kind == "lines":
        return "\n".join(draw(st.lists(st.sampled_from(_LINES), max_size=30)))
    lines = TINY.splitlines()
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "edit", "swap", "chars"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "delete" and lines:
            del lines[i]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(_LINES)))
        elif op == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "chars" and lines:
            s = lines[i]
            k = draw(st.integers(0, len(s)))
            lines[i] = s[:k] + draw(st.text(alphabet=string.printable + "é\u3000", max_size=4)) + s[k + 1:]
        elif lines:  # replace one comma field with a strange value
            parts = lines[i].split(",")
            j = draw(st.integers(0, len(parts) - 1))
            parts[j] = draw(st.sampled_from(["", "-1", "1e999", "nan", "0x10", "9" * 30, "1.5", "abc", " 3 "]))
            lines[i] = ",".join(parts)
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return sep.join(lines)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)  # the same texts in every CI run
@given(osu_texts(), st.booleans())
def test_fuzz_read_osu_only_raises_osu_error(text, as_bytes):
    try:
        bm = read_osu(text.encode("utf-8", "surrogatepass") if as_bytes else text, source="<fuzz>")
    except OsuError:
        return
    assert isinstance(bm, Beatmap)
    # whatever reads must also write and read back to the same notes
    assert read_osu(dumps_osu(bm)).notes == bm.notes


# ---- the fast reader: the same beatmaps as the line-by-line reader, or a fallback to it

def _same(fast, slow):
    import numpy as np
    assert fast == slow                                             # every field, timing points and notes included
    for a, b in zip(fast.note_arrays(), slow.note_arrays()):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    for p, q in zip(fast.timing_points, slow.timing_points):        # the same types, and the sign of a zero
        assert [type(v) for v in vars(p).values()] == [type(v) for v in vars(q).values()]
        assert str(p) == str(q)


def test_fast_reader_matches_line_reader(peer_data, samples, fast_reader):
    from pathlib import Path
    from mug_nb.osu import _Fallback, _parse_fast, _parse_lines, _to_text
    assert fast_reader, "numba is missing: the fast reader is off"
    rows = _peer_rows(peer_data)
    files = [peer_data / r["file"] for r in rows] + sorted(Path(samples).rglob("*.osu"))
    real_4k = {peer_data / r["file"] for r in rows if r["category"] == "real_chart" and r["keys"] == "4"}
    fell_back = []
    for f in files:
        data = f.read_bytes()
        text = _to_text(data, str(f))
        crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
        for t, d in ((text, data), (text, None), (crlf, crlf.encode()), ("\ufeff" + text, None)):
            slow = _parse_lines(t, str(f), f)
            try:
                fast = _parse_fast(t, str(f), f, d, fast_reader)
            except _Fallback:
                fell_back.append(f)
                continue
            _same(fast, slow)
    assert len(files) > 100 and not real_4k & set(fell_back), sorted(real_4k & set(fell_back))


def test_fast_reader_slider_and_spinner_ends(peer_data):
    from mug_nb.osu import _parse_lines
    p = peer_data / "maps/ppy-osu/4869637.osu"                    # 630 sliders and a spinner, read by the kernels
    bm = read_osu(p)
    assert bm._tps is None                                          # the fast reader read it (timing points not made yet)
    _same(bm, _parse_lines(p.read_text(encoding="utf-8-sig"), str(p), p))


@pytest.mark.parametrize("text, why", [
    (TINY.replace("64,192,1000,1,0", "64,192,1e3,1,0"), "an exponent"),
    (TINY.replace("64,192,1000,1,0", " 64,192,1000,1,0"), "a leading space"),
    (TINY.replace("[HitObjects]\n", "[HitObjects]\n// a comment\n"), "a comment"),
    (TINY.replace("1000,500,4,2,0,60,1,0", "1000,500"), "an old timing point"),
    (TINY.replace("[HitObjects]", "[HitObjects]\n[HitObjects]"), "a repeated section"),
    (TINY.replace("64,192,1000,1,0,0:0:0:0:\n", "64,192,1000,1,0,0:0:0:0:\r"), "a lone carriage return"),
    (TINY.replace("64,192,1000,1,0,0:0:0:0:", "64,192,1000,1,0,0:0:0:0:\x0c"), "a form feed"),
    (TINY + "[Colours]\nCombo1 : 1,2,3\n", "a section after the hit objects"),
])
def test_fast_reader_falls_back_to_the_same_result(text, why):
    from mug_nb.osu import _parse_lines
    got = read_osu(text)
    _same(got, _parse_lines(text, "<text>"))


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)  # the same texts in every CI run
@given(osu_texts())
def test_fuzz_fast_reader_agrees(text):
    from mug_nb.osu import _Fallback, _kernels, _parse, _parse_fast, _parse_lines
    try:
        slow = _parse_lines(text, "<fuzz>")
    except OsuError as e:
        with pytest.raises(type(e)) as got:                        # the same error, word for word
            _parse(text, "<fuzz>")
        assert str(got.value) == str(e)
        return
    try:
        fast = _parse_fast(text, "<fuzz>", None, None, _kernels())
    except (_Fallback, OsuError):                                  # either sends the text to the line-by-line reader
        fast = _parse(text, "<fuzz>")
    _same(fast, slow)


def test_fast_reader_errors_are_the_line_readers():
    "Found by the fuzz test: lone \\r line breaks and a last [General] without a newline. The fast splitter sees no\n    [General] at all, the line reader an empty one; `read_osu` must give the line reader's error, word for word."
    from mug_nb.osu import _parse_lines
    text = ("[HitObjects]\rosu file format v14\r\r192,192,1500,128,0,2250:0:0:0:0:\rAudioFilename: audio.ogg\rMode: 3\r\r"
            "[Metadata]\rTitle:Tiny\r\r[Difficulty]\rCircleSize:4\rSliderMultiplier:1.4\r\r[TimingPoints]\r"
            "1000,500,4,2,0,60,1,0\r\r[HitObjects]\r64,192,1000,1,0,0:0:0:0:\r[General]")
    with pytest.raises(OsuError) as slow:
        _parse_lines(text, "<text>")
    for _ in range(12):                                       # past JIT_AFTER charts: the fast reader is in play
        with pytest.raises(type(slow.value)) as got:
            read_osu(text, source="<text>")
        assert str(got.value) == str(slow.value)


_NUMS = ["0", "64", "192", "448", "511", "-5", "1000", "1500.5", "2249.9", "0.0000001", "007", "", " 3", "1e3",
         "99999999999", "-0", ".5", "5.", "2147483647", "1234567890123456789", "0.761270237874894", "x"]


@st.composite
def mania_texts(draw):
    "Charts the fast reader mostly reads itself: random taps, holds, sliders and spinners, odd numbers now and then."
    odd = draw(st.sampled_from([0, 0, 20, 60]))          # how rare the odd numbers are (0: none)
    num = lambda: draw(st.sampled_from(_NUMS)) if odd and draw(st.integers(0, odd)) == 0 else str(draw(st.integers(0, 4000)))
    lines = ["osu file format v" + draw(st.sampled_from(["14", "4", "9"])), "[General]", "Mode: 3", "[Difficulty]",
             "CircleSize:" + draw(st.sampled_from(["4", "7", "8", "1", "18"])),
             "SliderMultiplier:" + draw(st.sampled_from(["1.4", "0.2", "9", "1"]))]
    if draw(st.booleans()):
        lines.append("[TimingPoints]")
        for _ in range(draw(st.integers(0, 4))):
            f = [num(), draw(st.sampled_from(["500", "-50", "-100", "333.333333333333", "0", "-0", num()])),
                 *(num() for _ in range(4)), draw(st.sampled_from(["1", "0", "2", num()])), num()]
            lines.append(",".join(f[:draw(st.sampled_from([8, 8, 8, 2, 7]))]))
    lines.append("[HitObjects]")
    for _ in range(draw(st.integers(0, 12))):
        typ = draw(st.sampled_from(["1", "5", "128", "2", "6", "12", "8", "1", "128", "2", "12"] + (["0", "-127", "3", num()] if odd else [])))
        kind = {"1": 0, "5": 0, "2": 2, "6": 2}.get(typ, 1)    # the fields each type has
        rest = draw(st.sampled_from([["0:0:0:0:", "0:0:0:0:ding.wav"],
                                     [num() + ":0:0:0:0:", num(), num() + ",0:0:0:0:"],
                                     ["L|256:100," + num() + "," + num(), "B|1:2,1," + num() + ",0|0,0:0|0:0,0:0:0:0:"]][kind] +
                                    (["", "B|1:2,1", "P|1:2|3:4,2,", "L|1:2," + num(), num()] if odd else [])))
        lines.append(",".join([num(), num(), num(), typ, draw(st.sampled_from(["0", "4", "8", num()])), rest]))
    if draw(st.integers(0, 5)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(_LINES)))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)  # the same texts in every CI run
@given(mania_texts())
def test_fuzz_fast_reader_on_mania_charts(text):
    test_fuzz_fast_reader_agrees.hypothesis.inner_test(text)


def test_slider_without_length_needs_a_y():
    text = "osu file format v14\n[General]\nMode: 3\n[HitObjects]\n0,,0,2,0,L|256:100,0,0"
    with pytest.raises(OsuSyntaxError, match="line 5: expected a number for y"):   # was a bare ValueError
        read_osu(text)


def test_reader_without_a_working_numba(monkeypatch):
    import builtins
    from mug_nb import osu
    plain = osu._number
    monkeypatch.setattr(osu, "_jit", {"reads": 0, "kernels": None})
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "numba" else real_import(name, *a, **k))
    assert osu._kernels() is None and read_osu(TINY).notes == [Note(1000, 0), Note(1500, 1, 2250)]  # line by line
    monkeypatch.setattr(builtins, "__import__", real_import)
    monkeypatch.setattr(osu, "_jit", {"reads": 0, "kernels": None})
    monkeypatch.setattr(osu, "_objects_kernel", lambda *a: 1 / 0)  # numba there, but the kernel does not compile/run
    with pytest.warns(UserWarning, match="fast reader is off"):
        assert osu._kernels() is None
    assert getattr(osu._number, "py_func", osu._number) is getattr(plain, "py_func", plain) and read_osu(TINY).n_notes == 2


@pytest.mark.parametrize("hit_sound", ["4", "4.0", " 4", "", "0", "12"])
def test_fast_reader_spinner_finish_bit(hit_sound):
    from mug_nb.osu import _parse_lines
    text = ("osu file format v14\n[General]\nMode: 3\n[Difficulty]\nCircleSize:8\n[HitObjects]\n"
            f"256,192,1000,12,{hit_sound},1500,0:0:0:0:\n256,192,3000,12,{hit_sound},3600,0:0:0:0:\n")
    _same(read_osu(text), _parse_lines(text, "<text>"))          # 8K: a short spinner with finish goes to column 0


def test_slider_without_timing_points():
    from mug_nb.osu import _kernels, _parse_fast, _parse_lines
    text = "osu file format v14\n[General]\nMode: 3\n[HitObjects]\n256,192,500,2,0,L|256:100,3,140\n"
    assert _parse_fast(text, "x", None, None, _kernels()).notes == _parse_lines(text, "x").notes == [Note(500, 2, 3500)]


# ---- notes stored column-wise: the arrays and `Beatmap.notes` never disagree

def _arrays_match_list(bm):
    import numpy as np
    from mug_nb.osu import note_columns
    got, want = bm.note_arrays(), note_columns(list(bm.notes))
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(got, want))


def test_read_osu_fills_arrays_without_notes():
    import numpy as np
    bm = read_osu(TINY)
    t, c, e = bm.note_arrays()
    assert bm._notes is None and (bm.n_notes, bm.n_holds, bm.n_taps) == (2, 1, 1)  # no Note made for these
    assert t.tolist() == [1000, 1500] and c.tolist() == [0, 1] and np.isnan(e[0]) and e[1] == 2250
    assert not (t.flags.writeable or c.flags.writeable or e.flags.writeable)
    assert bm.notes == [Note(1000, 0), Note(1500, 1, 2250)] and type(bm.notes[0].time) is int
    assert bm.notes[0].end is None and bm.note_arrays()[0] is t  # reading the notes does not rebuild the arrays


@pytest.mark.parametrize("edit", [
    lambda n: n.append(Note(3000, 3)), lambda n: n.insert(0, Note(10, 2, 20)), lambda n: n.pop(),
    lambda n: n.remove(n[0]), lambda n: n.clear(), lambda n: n.sort(key=lambda x: -x.time), lambda n: n.reverse(),
    lambda n: n.extend([Note(5, 1)]), lambda n: n.__setitem__(0, Note(7, 3)), lambda n: n.__delitem__(0),
    lambda n: n.__setitem__(slice(0, 1), [Note(8, 2), Note(9, 2, 99)]), lambda n: n.__iadd__([Note(1, 1)]),
    lambda n: n.__imul__(2), lambda n: random.Random(0).shuffle(n)])
def test_list_edits_reach_the_arrays(edit):
    from mug_nb.chart import chart_to_array, notes_to_array
    import numpy as np
    bm = read_osu(TINY)
    bm.note_arrays(); edit(bm.notes)
    assert _arrays_match_list(bm) and bm.n_notes == len(bm.notes)
    assert all(np.array_equal(a, b) for a, b in zip(chart_to_array(bm), notes_to_array(list(bm.notes), 4)))


def test_assigning_and_sharing_notes():
    import copy
    import dataclasses
    import pickle
    bm = read_osu(TINY); bm.note_arrays()
    bm.notes += [Note(4000, 2)]
    assert _arrays_match_list(bm) and bm.n_notes == 3
    plain = [Note(1, 0)]
    bm.notes = plain                                   # a plain list is copied into a NoteList
    plain.append(Note(2, 1))
    assert bm.notes == [Note(1, 0)] and _arrays_match_list(bm)
    other = dataclasses.replace(bm)                    # like any field: the copy shares the list
    other.notes.append(Note(3, 2))
    assert bm.n_notes == 2 and _arrays_match_list(bm) and _arrays_match_list(other)
    for clone in (copy.deepcopy(bm), pickle.loads(pickle.dumps(bm)), copy.copy(bm)):
        assert clone == bm and _arrays_match_list(clone)
        clone.notes.append(Note(9, 3))
        assert _arrays_match_list(clone)
    fresh = read_osu(TINY)
    assert pickle.loads(pickle.dumps(fresh)).notes == fresh.notes and Beatmap().n_notes == 0
    assert Beatmap().note_arrays()[0].shape == (0,) and Beatmap(notes=(Note(1, 0),)).n_notes == 1
