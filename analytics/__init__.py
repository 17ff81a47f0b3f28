"""Token-traffic analytics: the event store, ingestion of other token services' logs,
rollups, the overview charts and the events explorer."""
