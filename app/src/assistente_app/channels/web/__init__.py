"""channels/web package."""
