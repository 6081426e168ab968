"""The decision log: its tables and store, the round states, retention, the shared switch row
and its watcher, and the figures read back from the log."""
