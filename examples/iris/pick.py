"""Pick the best model of a hyperparameter sweep.

Usage: pick.py --configs JSON --accuracies JSON --models DIR
               --best-model OUT --best-config OUT --best-accuracy OUT

--configs and --accuracies are JSON lists in iteration order (the sweep's
items and its fan-in); DIR holds the sweep's models as DIR/0, DIR/1, ...
The first of equally accurate configurations wins.
"""
import argparse
import json
import os
import shutil


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", required=True)
    ap.add_argument("--accuracies", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--best-model", required=True)
    ap.add_argument("--best-config", required=True)
    ap.add_argument("--best-accuracy", required=True)
    a = ap.parse_args()

    configs = json.loads(a.configs)
    accs = json.loads(a.accuracies)
    models = sorted(os.listdir(a.models), key=int)
    if not (len(configs) == len(accs) == len(models)) or not accs:
        raise SystemExit(f"{len(configs)} configs, {len(accs)} accuracies, {len(models)} models: want the same, non-zero")
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))
    for i, (c, acc) in enumerate(zip(configs, accs)):
        mark = "  <- best" if i == best else ""
        print(f"[{i}] learning_rate={c['learning_rate']} epochs={c['epochs']}: accuracy {acc:.4f}{mark}")
    shutil.copyfile(os.path.join(a.models, models[best]), a.best_model)
    with open(a.best_config, "w") as f:
        json.dump(configs[best], f)
    with open(a.best_accuracy, "w") as f:
        f.write(repr(float(accs[best])))


if __name__ == "__main__":
    main()
