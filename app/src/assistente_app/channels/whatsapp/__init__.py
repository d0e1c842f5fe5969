"""channels/whatsapp package."""
