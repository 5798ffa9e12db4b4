"""vr package."""
