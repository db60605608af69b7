"""Symphony workflow model."""
