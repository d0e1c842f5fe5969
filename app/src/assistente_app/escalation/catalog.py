"""What clerks choose from: canned answers and resolution codes (pt-BR, shown in the console)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class CannedAnswer:
    id: str
    title: str
    text: str


CANNED_ANSWERS: Final[tuple[CannedAnswer, ...]] = (
    CannedAnswer(
        "boas_vindas",
        "Boas-vindas",
        "Olá! Vou continuar o seu atendimento a partir daqui. Já li a conversa com o assistente.",
    ),
    CannedAnswer(
        "verificando",
        "Verificando",
        "Estou verificando as informações. Peço que aguarde um momento, por favor.",
    ),
    CannedAnswer(
        "documentos",
        "Pedir documentos",
        "Para continuar, preciso do número do processo (20 dígitos) e do nome completo de uma "
        "das partes. Não envie documentos pessoais por aqui.",
    ),
    CannedAnswer(
        "balcao_virtual",
        "Balcão Virtual",
        "Para falar com a secretaria da sua vara, use o Balcão Virtual no portal do tribunal, de "
        "segunda a sexta, no horário de expediente.",
    ),
    CannedAnswer(
        "encerrar",
        "Encerramento",
        "Posso ajudar em algo mais? Se não, vou encerrar este atendimento. O seu protocolo "
        "continua valendo para consultas futuras.",
    ),
)

# Codes a clerk closes a conversation with.
RESOLUTION_CODES: Final[dict[str, str]] = {
    "resolvido": "Dúvida resolvida",
    "orientado": "Orientado a outro serviço ou órgão",
    "sem_resposta": "Cidadão não respondeu",
    "fora_do_escopo": "Fora do escopo do atendimento",
}
# Codes the system closes a queued conversation with.
EXPIRED = "tempo_esgotado"
LEFT_QUEUE = "desistencia"
SYSTEM_CODES: Final[dict[str, str]] = {
    EXPIRED: "Tempo máximo de espera esgotado",
    LEFT_QUEUE: "Cidadão saiu da fila",
}

# What a citizen on a text channel (WhatsApp, Telegram) writes to leave the queue.
LEAVE_COMMANDS: Final = frozenset({"sair", "sair da fila", "cancelar", "desistir"})


def wants_to_leave(text: str) -> bool:
    return " ".join(text.lower().strip(" .!").split()) in LEAVE_COMMANDS
