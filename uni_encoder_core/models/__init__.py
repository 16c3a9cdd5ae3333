"""Networks of the unified multi-task model."""
