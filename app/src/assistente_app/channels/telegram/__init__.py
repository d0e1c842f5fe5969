"""channels/telegram package."""
