"""Django apps of the platform, one per bounded concern."""
