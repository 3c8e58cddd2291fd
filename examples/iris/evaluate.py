"""Evaluate a Model on a test Dataset; write Metrics (JSON) and accuracy.

Usage: evaluate.py --model MODEL --test DATASET --metrics OUT --accuracy OUT
"""
import argparse
import csv
import json


def predict(model, x):
    z = [(v - m) / s for v, m, s in zip(x, model["mean"], model["std"])]
    scores = [sum(w * v for w, v in zip(ws, z)) + b for ws, b in zip(model["weights"], model["bias"])]
    return model["classes"][scores.index(max(scores))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--accuracy", required=True, help="file for the accuracy (float output)")
    a = ap.parse_args()

    with open(a.model) as f:
        model = json.load(f)
    with open(a.test, newline="") as f:
        rows = list(csv.reader(f))[1:]
    classes = model["classes"]
    confusion = {t: {p: 0 for p in classes} for t in classes}
    correct = 0
    for r in rows:
        truth, pred = r[-1], predict(model, [float(v) for v in r[:-1]])
        confusion[truth][pred] += 1
        correct += truth == pred
    accuracy = correct / len(rows) if rows else 0.0

    per_class = {}
    for c in classes:
        tp = confusion[c][c]
        predicted = sum(confusion[t][c] for t in classes)
        actual = sum(confusion[c].values())
        per_class[c] = {
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / actual if actual else 0.0,
            "support": actual,
        }
    metrics = {
        "accuracy": accuracy,
        "test_rows": len(rows),
        "per_class": per_class,
        "confusion_matrix": {"labels": classes, "rows": [[confusion[t][p] for p in classes] for t in classes]},
    }
    with open(a.metrics, "w") as f:
        json.dump(metrics, f, indent=2)
    with open(a.accuracy, "w") as f:
        f.write(repr(accuracy))
    print("evaluate: accuracy %.4f on %d rows" % (accuracy, len(rows)))


if __name__ == "__main__":
    main()
