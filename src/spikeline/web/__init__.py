"""``spikeline view``: a local web app to review, compare and curate sorted units (no cloud, no CDN)."""

from .server import ViewerServer

__all__ = ["ViewerServer"]
