#!/usr/bin/python3
"""Plot recall@k against queries per second from one or more `probity eval --csv` files.

Usage: plot_recall_qps.py OUT.png EVAL.csv [EVAL.csv ...]
Each CSV becomes one line (labelled with its file name), one point per nprobe.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        recall_column = next(c for c in reader.fieldnames if c.startswith("recall_at_"))
        rows = [(int(r["nprobe"]), float(r[recall_column]), float(r["qps"])) for r in reader]
    return recall_column.replace("recall_at_", "recall@"), rows


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, inputs = argv[1], argv[2:]
    figure, axes = plt.subplots(figsize=(7, 5))
    label = "recall"
    for path in inputs:
        label, rows = read_rows(path)
        axes.plot([r[1] for r in rows], [r[2] for r in rows], marker="o",
                  label=os.path.splitext(os.path.basename(path))[0])
        for nprobe, recall, qps in rows:
            axes.annotate(f"nprobe={nprobe}", (recall, qps), textcoords="offset points",
                          xytext=(4, 4), fontsize=8)
    axes.set_xlabel(label)
    axes.set_ylabel("queries per second (batch)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
