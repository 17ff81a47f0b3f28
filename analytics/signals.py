"""Signals analytics sends to the apps above it, which it must not import.

`events_stored` goes out after a store call's transaction has committed with new rows
(the drain's batches, log ingestion, the ingest endpoint, and in embedded mode each direct
write of the token service, which has no drain): alerts evaluates its detections on it
(alerts/apps.py connects the receiver). A signal rather than a setting naming a hook:
several apps may listen (a chart's live refresh next), the sender needs no configuration,
and a listener that fails is logged without failing the store (send_robust), since the
events are committed either way.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: inserted (int, new rows), newest (datetime, the latest occurred_at among them).
events_stored = Signal()
