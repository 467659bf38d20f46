"""Stream transforms: each reads one kind of event and emits another, in its own task."""
