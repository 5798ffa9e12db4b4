"""registration package."""
