"""The scenario core: schema, loading with positions, interpolation, resolution. Pure: no Docker."""
