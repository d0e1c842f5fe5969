"""Custom NLU components of the assistant's pipeline (loaded by Rasa from config.yml)."""
