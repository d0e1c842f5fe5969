"""Pure functions: protocol numbers, PII masking, Rasa answer interpretation, settings."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from assistente_app.channels.text import as_speech, as_text
from assistente_app.conversations.protocol_numbers import (
    format_protocol,
    is_valid_protocol,
    luhn_digit,
)
from assistente_app.core.logging import JsonFormatter, protocol_var
from assistente_app.settings import Settings
from assistente_app.worker.rasa import interpret
from assistente_contract.privacy import mask_pii
from pydantic import SecretStr, ValidationError


def test_protocol_format_and_check_digit() -> None:
    protocol = format_protocol(day=dt.date(2026, 11, 25), sequence=4217)
    assert protocol[:16] == "20261125-004217-"
    assert is_valid_protocol(protocol)
    assert format_protocol(day=dt.date(2026, 11, 25), sequence=1_004_217) == protocol
    assert luhn_digit("7992739871") == 3  # the textbook Luhn example


def test_protocol_check_digit_catches_typos() -> None:
    protocol = format_protocol(day=dt.date(2026, 1, 2), sequence=123456)
    digits = protocol.replace("-", "")
    for index in range(len(digits)):
        for replacement in "0123456789":
            if replacement == digits[index]:
                continue
            typo = digits[:index] + replacement + digits[index + 1 :]
            candidate = f"{typo[:8]}-{typo[8:14]}-{typo[14]}"
            assert not is_valid_protocol(candidate)
    assert not is_valid_protocol("2026-01-02")
    assert not is_valid_protocol("20260102-123456")


def test_pii_is_masked_but_protocols_are_kept() -> None:
    text = (
        "CPF 123.456.789-09 e 98765432100, e-mail maria.silva@tribunal.jus.br, "
        "fone (61) 99999-8888 ou +55 61 3333-4444, protocolo 20261125-004217-3"
    )
    masked = mask_pii(text)
    assert "123.456.789-09" not in masked
    assert "98765432100" not in masked
    assert "maria.silva" not in masked
    assert "99999-8888" not in masked
    assert "3333-4444" not in masked
    assert masked.count("[cpf]") == 2
    assert "[email]" in masked
    assert masked.count("[telefone]") == 2
    assert "20261125-004217-3" in masked


def test_json_logs_carry_protocol_and_mask(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "cpf %s", ("111.222.333-44",), None)
    token = protocol_var.set("20261125-004217-3")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        protocol_var.reset(token)
    assert line["message"] == "cpf [cpf]"
    assert line["protocol"] == "20261125-004217-3"


def test_interpret_rasa_answers() -> None:
    turn = interpret(
        [
            {"recipient_id": "c", "text": "Certidão: acesse o portal. Fonte: Certidões"},
            {"recipient_id": "c", "custom": {"type": "sources", "sources": [{"title": "T"}]}},
            {
                "recipient_id": "c",
                "text": "Escolha:",
                "buttons": [{"title": "Sim", "payload": "/s"}],
            },
            {"recipient_id": "c", "text": "Vou transferir."},
            {
                "recipient_id": "c",
                "custom": {"type": "escalation", "team": "geral", "reason": "pediu humano"},
            },
        ]
    )
    assert [text for text, _ in turn.messages] == [
        "Certidão: acesse o portal. Fonte: Certidões",
        "Escolha:",
        "Vou transferir.",
    ]
    assert turn.messages[0][1] == {"sources": [{"title": "T"}]}
    assert turn.messages[1][1] == {"buttons": [{"title": "Sim", "payload": "/s"}]}
    assert (turn.escalation_team, turn.escalation_reason) == ("geral", "pediu humano")


def test_settings_normalise_dsn_and_reject_bad_days() -> None:
    settings = Settings(database_url="postgresql://u:p@h:5432/db")
    assert settings.database_url == "postgresql+asyncpg://u:p@h:5432/db"
    with pytest.raises(ValidationError):
        Settings(service_days="mon,funday")
    assert "segredo" not in repr(Settings(whatsapp_app_secret=SecretStr("segredo")))


def test_buttons_become_text_and_speech() -> None:
    payload = {"buttons": [{"title": "Sim", "payload": "/afirmar"}, {"title": "Não"}]}
    assert as_text("Isso ajudou?", payload) == "Isso ajudou?\n\nOpções:\n• Sim\n• Não"
    assert as_speech("Isso ajudou?", payload) == "Isso ajudou? Você pode dizer: Sim ou Não."
    assert as_text("Olá", None) == "Olá"
