"""The management commands: thin wrappers over the status and migrate engines."""
