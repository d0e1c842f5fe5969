"""Telegram Bot API."""

NAME = "telegram"
