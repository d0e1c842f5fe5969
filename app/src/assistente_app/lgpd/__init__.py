"""lgpd package."""
