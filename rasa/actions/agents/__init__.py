"""The specialised agents: one rasa-sdk Action (or family of Actions) per concern."""
