"""The worker's activities. Before adding one, read `activities.cancellation`: a sync activity
is declared with `sync_activity` and stops only where it chooses, never inside a lock."""
