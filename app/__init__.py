"""AntRing accounts service."""
