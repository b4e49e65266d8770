"""One module per CLI command; psenet_stream.cli imports them lazily."""
