"""Load and validate the Iris CSV; write it as the pipeline's Dataset.

Usage: load.py --src iris.csv --out DATASET --rows ROWS_FILE
"""
import argparse
import csv
import os
import sys

HEADER = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", required=True, help="file for the row count (int output)")
    a = ap.parse_args()

    with open(a.src, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [h.strip() for h in rows[0]] != HEADER:
        sys.exit("load: bad header, want %s" % ",".join(HEADER))
    data = []
    for n, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != 5:
            sys.exit("load: line %d: want 5 fields, got %d" % (n, len(r)))
        try:
            feats = [float(x) for x in r[:4]]
        except ValueError:
            sys.exit("load: line %d: features must be numbers" % n)
        if any(x <= 0 for x in feats):
            sys.exit("load: line %d: features must be positive" % n)
        data.append(feats + [r[4].strip()])
    classes = sorted({r[4] for r in data})
    if len(classes) < 2:
        sys.exit("load: need at least two species")

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(data)
    with open(a.rows, "w") as f:
        f.write(str(len(data)))
    print("load: %d rows, species %s" % (len(data), ", ".join(classes)))


if __name__ == "__main__":
    main()
