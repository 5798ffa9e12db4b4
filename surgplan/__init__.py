"""surgplan package."""
