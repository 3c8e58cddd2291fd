"""Render the Metrics as a Markdown report.

Usage: report.py --metrics METRICS --accuracy 0.95 --min-accuracy 0.9 --report OUT
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--accuracy", type=float, required=True)
    ap.add_argument("--min-accuracy", type=float, default=0.0)
    ap.add_argument("--report", required=True)
    a = ap.parse_args()

    with open(a.metrics) as f:
        m = json.load(f)
    verdict = "PASS" if a.accuracy >= a.min_accuracy else "FAIL"
    lines = [
        "# Iris classifier",
        "",
        "Accuracy **%.4f** on %d test rows (threshold %.2f): **%s**" % (a.accuracy, m["test_rows"], a.min_accuracy, verdict),
        "",
        "| species | precision | recall | support |",
        "|---|---|---|---|",
    ]
    for c, v in sorted(m["per_class"].items()):
        lines.append("| %s | %.3f | %.3f | %d |" % (c, v["precision"], v["recall"], v["support"]))
    with open(a.report, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("report: %s" % verdict)


if __name__ == "__main__":
    main()
