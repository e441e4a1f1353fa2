"""The Faust app, topic and table declarations, sources, settings and CLI."""
