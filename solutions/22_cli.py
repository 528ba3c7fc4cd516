"""Worked solutions to the exercises of 22_cli."""
from mug_nb.cli import chart_info


def argv_for(song, out):
    "Two variants at 4.5 stars with 30% long notes, seed 7."
    return ["generate", str(song), "--out", str(out), "--count", "2", "--seed", "7", "--sr", "4.5", "--ln-ratio", "0.3"]


def info_rows(paths):
    "One (version, notes, holds) per chart."
    return [(i["version"], i["notes"], i["holds"]) for i in (chart_info(p, features=False) for p in paths)]


def add_stats(sub):
    "A `stats CHART [--json]` sub-command."
    p = sub.add_parser("stats", help="statistics of a chart")
    p.add_argument("chart", help=".osu file")
    p.add_argument("--json", action="store_true", help="print JSON")


SOLUTIONS = {"22.1": argv_for, "22.2": info_rows, "22.3": add_stats}
