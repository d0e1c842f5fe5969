"""WhatsApp Cloud API."""

NAME = "whatsapp"
