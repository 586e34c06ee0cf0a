"""Sync: streams, paging, state and the engine. ``cmis_core.sync.paging`` holds the paging loops."""
