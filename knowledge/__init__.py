"""The knowledge package: file format, loader, matcher and the owners' CLI (no bot imports)."""
