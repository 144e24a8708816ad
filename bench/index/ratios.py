#!/usr/bin/python3
"""Print a Markdown table of Probity-over-FAISS time ratios from index_bench's JSON output.

Usage: index_bench --benchmark_out=bench.json --benchmark_out_format=json
       ratios.py bench.json
Each BM_Probity* row is paired with the BM_Faiss* row of the same arguments (the shard count
and the shared coarse assignment switch have no FAISS counterpart: FAISS's reference is always
one unsharded index).
"""
import json
import re
import sys


def key(name):
    kind = "search" if "Search" in name else "add"
    args = dict(re.findall(r"(\w+):(\d+)", name))
    return kind, args


def main(path):
    with open(path) as handle:
        rows = json.load(handle)["benchmarks"]
    # With --benchmark_repetitions, compare medians.
    if any(row.get("aggregate_name") == "median" for row in rows):
        rows = [row for row in rows if row.get("aggregate_name") == "median"]
        for row in rows:
            row["name"] = row["name"].replace("_median", "")
    faiss = {}
    for row in rows:
        if row["name"].startswith("BM_Faiss"):
            kind, args = key(row["name"])
            args.pop("shards", None)
            args.pop("shared", None)
            faiss[(kind, tuple(sorted(args.items())))] = row
    print("| benchmark | Probity | FAISS in-process | Probity / FAISS time |")
    print("|---|---:|---:|---:|")
    def order(row):
        kind, args = key(row["name"])
        return kind, sorted((name, int(value)) for name, value in args.items())

    for row in sorted(rows, key=order):
        if not row["name"].startswith("BM_Probity"):
            continue
        kind, args = key(row["name"])
        args.pop("shards", None)
        args.pop("shared", None)
        reference = faiss.get((kind, tuple(sorted(args.items()))))
        if reference is None:
            continue
        unit = row["time_unit"]
        label = row["name"].replace("BM_Probity", "").replace("/real_time", "")
        print(f"| {label} | {row['real_time']:.1f} {unit} | {reference['real_time']:.1f} {unit} "
              f"| {row['real_time'] / reference['real_time']:.2f} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else print(__doc__))
