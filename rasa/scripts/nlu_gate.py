"""Reads the reports of `rasa test nlu` and fails when intent or entity F1 is under threshold.

Usage: python rasa/scripts/nlu_gate.py REPORT_DIR --intent-f1 0.85 --entity-f1 0.95
Prints the figures (and the worst intents) either way, so CI logs show the trend.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def weighted_f1(report_path: Path) -> tuple[float, dict[str, float]]:
    report = json.loads(report_path.read_text())
    per_label = {
        label: float(values["f1-score"])
        for label, values in report.items()
        if isinstance(values, dict) and "f1-score" in values and label not in {
            "micro avg", "macro avg", "weighted avg", "accuracy"
        }
    }  # fmt: skip
    if "weighted avg" in report:
        return float(report["weighted avg"]["f1-score"]), per_label
    return float(report["micro avg"]["f1-score"]), per_label


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report_dir", type=Path)
    parser.add_argument("--intent-f1", type=float, required=True)
    parser.add_argument("--entity-f1", type=float, required=True)
    args = parser.parse_args()

    intent_f1, per_intent = weighted_f1(args.report_dir / "intent_report.json")
    entity_reports = sorted(args.report_dir.glob("*EntityExtractor_report.json"))
    if not entity_reports:
        print(f"no entity report in {args.report_dir}", file=sys.stderr)
        return 2
    entity_f1, _ = weighted_f1(entity_reports[0])
    worst = sorted(per_intent.items(), key=lambda item: item[1])[:3]
    print(f"intent F1 (weighted) = {intent_f1:.3f}  (threshold {args.intent_f1})")
    print(f"entity F1 (weighted) = {entity_f1:.3f}  (threshold {args.entity_f1})")
    print("weakest intents: " + ", ".join(f"{name} {f1:.2f}" for name, f1 in worst))
    failed = intent_f1 < args.intent_f1 or entity_f1 < args.entity_f1
    if failed:
        print("NLU quality gate FAILED", file=sys.stderr)
        return 1
    print("NLU quality gate passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
