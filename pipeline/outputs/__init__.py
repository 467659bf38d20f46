"""Where a session's events go: the terminal, JSONL, transcript files, progress."""
