"""Custom actions of the Assistente Digital: the specialised agents behind the Rasa dialogue.

Layers: pure logic (`cnj`, `knowledge.retriever`, `plain_language`) → external clients
(`clients.datajud`) → agents (`agents.*`, thin rasa-sdk `Action`s). The action server loads the
agents through this package (`rasa_sdk --actions actions`).
"""

from actions.agents.confirmacao import ActionResponderConfirmacao
from actions.agents.conhecimento import (
    ActionBaseConhecimento,
    ActionOrientacaoProcessual,
    ActionPeticionamento,
    ActionServicosPortal,
    ActionSuporteTecnico,
)
from actions.agents.escalonamento import ActionEscalarAtendimento
from actions.agents.processo import ActionConsultarProcesso

__all__ = [
    "ActionBaseConhecimento",
    "ActionConsultarProcesso",
    "ActionEscalarAtendimento",
    "ActionOrientacaoProcessual",
    "ActionPeticionamento",
    "ActionResponderConfirmacao",
    "ActionServicosPortal",
    "ActionSuporteTecnico",
]
