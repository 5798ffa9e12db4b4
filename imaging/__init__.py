"""imaging package."""
