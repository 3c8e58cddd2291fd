"""Split a Dataset into train and test sets, stratified by species.

Usage: split.py --data DATASET --test-fraction 0.3 --seed 42 --train OUT --test OUT
"""
import argparse
import csv
import random
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--test-fraction", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    a = ap.parse_args()
    if not 0 < a.test_fraction < 1:
        sys.exit("split: test fraction must be between 0 and 1, got %g" % a.test_fraction)

    header, rows = read(a.data)
    rng = random.Random(a.seed)
    by_class = {}
    for r in rows:
        by_class.setdefault(r[-1], []).append(r)
    train, test = [], []
    for label in sorted(by_class):
        group = by_class[label]
        rng.shuffle(group)
        k = max(1, round(len(group) * a.test_fraction))
        test += group[:k]
        train += group[k:]
    rng.shuffle(train)
    rng.shuffle(test)
    write(a.train, header, train)
    write(a.test, header, test)
    print("split: %d train, %d test (seed %d)" % (len(train), len(test), a.seed))


if __name__ == "__main__":
    main()
