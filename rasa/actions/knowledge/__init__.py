"""Retrieval over the project's own documentation (rasa/knowledge/*.md)."""
