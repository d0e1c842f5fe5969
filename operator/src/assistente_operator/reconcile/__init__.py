"""Reconciliation of AssistenteDigital objects: the pass and the steps it composes.

- ``reconciler.py`` — the pass (plan, apply, prune, report), serialised per object;
- ``apply.py`` — server-side apply with the no-op cache, StatefulSet recreation, HPA floors;
- ``prune.py`` — deletes owned children the spec no longer wants;
- ``report.py`` — readiness, conditions and Events.
"""

from assistente_operator.reconcile.reconciler import (
    InvalidSpecError,
    Outcome,
    ReconcileFailedError,
    Reconciler,
)

__all__ = ["InvalidSpecError", "Outcome", "ReconcileFailedError", "Reconciler"]
