"""Datastores: where datasets' bytes are kept, and how."""
