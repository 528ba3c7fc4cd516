"Worked solutions to the exercises of 17_export."
import zipfile


def read_prompt(osu_text: str) -> dict:
    "17.1: find the `AIPrompt:` line and split its `k=v, …` pairs."
    line = next(l for l in osu_text.splitlines() if l.startswith('AIPrompt:'))
    pairs = line.split(':', 1)[1].strip()
    return dict(p.split('=', 1) for p in pairs.split(', ')) if pairs else {}


def osz_members(path) -> list:
    "17.2: an .osz is a zip archive."
    with zipfile.ZipFile(path) as z: return sorted(z.namelist())


SOLUTIONS = {"17.1": read_prompt, "17.2": osz_members,
             "17.3": 'chart (3).osz'}   # 'chart.osz' is taken, so is 'chart (2).osz': k counts on to 3
