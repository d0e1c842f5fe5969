"""Turns DataJud records into short, plain Portuguese for citizens (no legal jargon left alone).

Movement names follow the CNJ's Tabela Processual Unificada (TPU). The explanations match by
keywords in the name rather than by code, because tribunals use many sub-codes of each movement.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from actions.clients.datajud import CaseRecord, Movement

# (keywords in the folded movement name, plain explanation). The first match wins, so the more
# specific entries come first.
_EXPLANATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("transito em julgado",), "a decisão ficou definitiva: não cabe mais recurso"),
    (("baixa definitiva",), "o processo foi encerrado e deu baixa no tribunal"),
    (("arquivamento", "arquivado"), "o processo foi arquivado (guardado, sem andamento)"),
    (("desarquivamento",), "o processo foi retirado do arquivo e voltou a andar"),
    (("conclus",), "o processo foi enviado ao juiz (ou relator) para ele decidir ou despachar"),
    (
        ("sentenca", "procedencia", "improcedencia", "extincao", "homologa"),
        "o juiz deu a sentença, que é a decisão sobre o pedido",
    ),
    (
        ("acordao", "julgamento", "provimento", "nao-provimento"),
        "o tribunal julgou o recurso ou o processo",
    ),
    (
        ("decisao", "antecipacao de tutela", "liminar", "tutela"),
        "o juiz tomou uma decisão durante o processo",
    ),
    (
        ("despacho", "mero expediente"),
        "o juiz deu uma ordem de andamento (um despacho), sem decidir o mérito",
    ),
    (("audiencia",), "houve (ou foi marcada) uma audiência"),
    (("citacao",), "a outra parte foi chamada oficialmente para se defender (citação)"),
    (
        ("intimacao",),
        "alguém foi avisado oficialmente para fazer algo ou tomar ciência (intimação)",
    ),
    (("publicacao", "disponibilizacao"), "um ato do processo foi publicado no Diário de Justiça"),
    (("juntada",), "um documento ou petição foi anexado ao processo"),
    (("peticao",), "uma das partes apresentou uma manifestação (petição)"),
    (
        ("expedicao", "mandado", "oficio", "carta"),
        "a secretaria preparou um documento oficial (mandado, ofício ou carta)",
    ),
    (
        ("recebido", "recebimento", "remessa", "remetidos"),
        "o processo foi enviado ou recebido por outro setor ou instância",
    ),
    (("distribuicao", "redistribuicao"), "o processo foi distribuído para uma vara ou relator"),
    (("suspensao", "sobrestamento"), "o processo foi suspenso por um período"),
    (("prazo", "decurso"), "um prazo foi aberto ou terminou"),
    (("pericia", "laudo"), "há uma perícia em andamento ou um laudo foi apresentado"),
    (("acordo", "conciliacao"), "houve tentativa ou realização de acordo entre as partes"),
    (("recurso", "apelacao", "agravo", "embargos"), "foi apresentado um recurso"),
)

_DEGREES = {
    "G1": "1º grau",
    "G2": "2º grau (tribunal)",
    "JE": "Juizado Especial",
    "TR": "Turma Recursal",
    "SUP": "tribunal superior",
    "TRU": "Turma Regional de Uniformização",
    "TNU": "Turma Nacional de Uniformização",
}


def fold(text: str) -> str:
    """Lowercase without accents: how citizens type and how we match."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def explain_movement(name: str) -> str | None:
    folded = fold(name)
    for keywords, explanation in _EXPLANATIONS:
        if any(keyword in folded for keyword in keywords):
            return explanation
    return None


def format_date(value: str) -> str:
    """DataJud mixes ISO 8601 (``2023-05-02T10:15:00.000Z``) and ``yyyyMMddHHmmss``."""
    compact = re.fullmatch(r"(\d{4})(\d{2})(\d{2})\d*", value)
    if compact:
        year, month, day = compact.groups()
        return f"{day}/{month}/{year}"
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value or "data não informada"
    return parsed.strftime("%d/%m/%Y")


def describe_movement(movement: Movement) -> str:
    name = movement.name or "Movimentação sem nome"
    if movement.complements:
        name = f"{name} ({', '.join(movement.complements)})"
    line = f"• {format_date(movement.when)} — {name}"
    explanation = explain_movement(movement.name)
    return f"{line}: {explanation}." if explanation else f"{line}."


def describe_case(
    record: CaseRecord, *, max_movements: int = 3, other_degrees: tuple[str, ...] = ()
) -> str:
    """The case in plain words, from DataJud's data (the ``{detalhes}`` of the response
    ``utter_processo_encontrado``, which names the case)."""
    lines: list[str] = []
    where = ", ".join(
        part
        for part in (
            record.class_name,
            record.court_unit,
            record.tribunal,
            _DEGREES.get(record.degree, record.degree),
        )
        if part
    )
    if where:
        lines.append(f"Dados: {where}.")
    if record.movements:
        lines.append("Últimas movimentações, da mais recente para a mais antiga:")
        lines.extend(describe_movement(movement) for movement in record.movements[:max_movements])
    else:
        lines.append("O tribunal ainda não registrou movimentações públicas deste processo.")
    if other_degrees:
        readable = ", ".join(_DEGREES.get(degree, degree) for degree in other_degrees)
        lines.append(f"O processo também tem registro em: {readable}.")
    if record.updated_at:
        lines.append(
            f"Informação da base pública do CNJ (DataJud), atualizada em "
            f"{format_date(record.updated_at)}; pode haver atraso em relação ao sistema do "
            "tribunal."
        )
    return "\n".join(lines)
