"""Train a softmax (multinomial logistic) regression on standardised
features by full-batch gradient descent; write the Model as JSON.

Usage: train.py --train DATASET --learning-rate 0.1 --epochs 300 --model OUT
"""
import argparse
import csv
import json
import math


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--learning-rate", type=float, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()

    with open(a.train, newline="") as f:
        rows = list(csv.reader(f))
    features, data = rows[0][:-1], rows[1:]
    X = [[float(v) for v in r[:-1]] for r in data]
    classes = sorted({r[-1] for r in data})
    y = [classes.index(r[-1]) for r in data]
    n, d, c = len(X), len(features), len(classes)

    mean = [sum(x[j] for x in X) / n for j in range(d)]
    std = [math.sqrt(sum((x[j] - mean[j]) ** 2 for x in X) / n) or 1.0 for j in range(d)]
    Z = [[(x[j] - mean[j]) / std[j] for j in range(d)] for x in X]

    W = [[0.0] * d for _ in range(c)]
    b = [0.0] * c
    loss = 0.0
    for _ in range(a.epochs):
        gW = [[0.0] * d for _ in range(c)]
        gb = [0.0] * c
        loss = 0.0
        for z, t in zip(Z, y):
            p = softmax([sum(W[k][j] * z[j] for j in range(d)) + b[k] for k in range(c)])
            loss -= math.log(max(p[t], 1e-12))
            for k in range(c):
                g = p[k] - (1.0 if k == t else 0.0)
                gb[k] += g
                for j in range(d):
                    gW[k][j] += g * z[j]
        for k in range(c):
            b[k] -= a.learning_rate * gb[k] / n
            for j in range(d):
                W[k][j] -= a.learning_rate * gW[k][j] / n

    model = {
        "kind": "softmax-regression",
        "features": features,
        "classes": classes,
        "mean": mean,
        "std": std,
        "weights": W,
        "bias": b,
        "learning_rate": a.learning_rate,
        "epochs": a.epochs,
        "train_loss": loss / n,
    }
    with open(a.model, "w") as f:
        json.dump(model, f, indent=2)
    print("train: %d rows, %d epochs, loss %.4f" % (n, a.epochs, loss / n))


def softmax(s):
    m = max(s)
    e = [math.exp(v - m) for v in s]
    t = sum(e)
    return [v / t for v in e]


if __name__ == "__main__":
    main()
