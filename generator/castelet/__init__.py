"""Castelet: blueprints of research web services, rendered into self-contained deployment repos."""

__version__ = "0.1.0"
