"""Names of the domain responses (rasa/domain/*.yml) the actions utter, with the variables each
one needs. The texts live in the domain, where a court can reword them; the actions only choose
the response and fill its variables. A test renders every one of them with its variables, and
the validation gate accepts these names as used (Rasa's validator only sees rules and stories).
"""

from __future__ import annotations

from typing import Final

# conversa.yml
GLAD: Final = "utter_que_bom"
HOW_CAN_I_HELP: Final = "utter_em_que_posso_ajudar"

# atendimento.yml: {nome_equipe} is the team's name (assistente_contract.TEAM_LABELS)
TRANSFER: Final = "utter_transferir_atendente"
TRANSFER_WITH_PROTOCOL: Final = "utter_transferir_atendente_com_protocolo"  # + {protocolo}
OFFER_HUMAN: Final = "utter_oferecer_atendente"
NEVER_MIND: Final = "utter_tudo_bem"

# conhecimento.yml
KNOWLEDGE_ANSWER: Final = "utter_resposta_conhecimento"  # {secao} {texto} {documento} {caminho}
DID_IT_HELP: Final = "utter_perguntar_se_resolveu"
NO_SAFE_ANSWER: Final = "utter_sem_resposta_segura"  # {nome_equipe}
MENU_SUPPORT: Final = "utter_menu_suporte_tecnico"
MENU_PORTAL: Final = "utter_menu_servicos_portal"
MENU_GUIDANCE: Final = "utter_menu_orientacao_processual"
MENU_PETITIONS: Final = "utter_menu_peticionamento"

# processo.yml: {numero} is the case number
ASK_CASE_NUMBER: Final = "utter_pedir_numero_processo"
WRONG_LENGTH: Final = "utter_numero_processo_tamanho_errado"  # {quantidade_digitos}
WRONG_CHECK_DIGITS: Final = "utter_numero_processo_digitos_verificadores"
UNKNOWN_SEGMENT: Final = "utter_numero_processo_ramo_desconhecido"
UNKNOWN_TRIBUNAL: Final = "utter_numero_processo_tribunal_desconhecido"
IMPLAUSIBLE_YEAR: Final = "utter_numero_processo_ano_impossivel"
CASE_FOUND: Final = "utter_processo_encontrado"  # {detalhes}
ASK_ABOUT_TERMS: Final = "utter_processo_dica_termos"
CASE_NOT_FOUND: Final = "utter_processo_nao_encontrado"
CASE_SEALED: Final = "utter_processo_sigiloso"
CASE_OUTSIDE_DATAJUD: Final = "utter_processo_fora_do_datajud"  # {ramo}
DATAJUD_UNAVAILABLE: Final = "utter_datajud_indisponivel"

ALL: Final = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
