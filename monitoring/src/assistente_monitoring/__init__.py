"""Alert rules, dashboards and the metric catalogue of the Assistente Digital.

The rule files and the catalogue are data shipped inside this package (so the operator's image
carries them); the dashboards are code built with grafana-foundation-sdk.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RULES_DIR = PACKAGE_DIR / "rules"
CATALOGUE_DIR = PACKAGE_DIR / "catalogue"

# Every selector of the per-assistant rules carries this matcher; the operator narrows it to one
# resource (see rules.scope_expr).
ANY_ASSISTANT_MATCHER = 'assistente!=""'
