"""Anomaly alerts on machine credentials: detections over token traffic, the alert inbox,
investigation and response, suppressions and signed notifications."""
