"""The store layer: content ids, the SQLite index, object files, imaging on stored bytes, the remote tier on
object storage (and what a bucket may be trusted with), maintenance. It renders through a renderer
(`hcti_build.renderer.Renderer`), never a concrete engine."""

from .store import RENDER_VERSION, Store, default_store_path

__all__ = ["RENDER_VERSION", "Store", "default_store_path"]
