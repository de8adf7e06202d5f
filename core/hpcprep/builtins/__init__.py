"""The core's own stages, registered through the same hooks as any plugin."""
