"""Normalises how citizens type before the bag-of-words featurizers see the words.

Runs after the tokenizer and writes the normalised form into each token's *lemma* (which
CountVectorsFeaturizer uses by default), leaving the message text and token texts untouched: the
entity extractor's offsets and what the tracker stores stay exactly what the citizen wrote.

Normalisation: lowercase, accents folded ("não" -> "nao"), letters repeated for emphasis
collapsed ("oiiii" -> "oi", "obrigadooo" -> "obrigado"), and common chat abbreviations expanded
("vc" -> "voce", "obg" -> "obrigado", "pq" -> "porque").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# Chat spellings seen on WhatsApp/Telegram in pt-BR, folded form -> folded full word.
ABBREVIATIONS = {
    "vc": "voce", "vcs": "voces", "oce": "voce", "cê": "voce", "ce": "voce",
    "q": "que", "oq": "o que", "pq": "porque", "pqp": "porque", "qdo": "quando", "qnd": "quando",
    "td": "tudo", "tds": "todos", "tb": "tambem", "tbm": "tambem", "msm": "mesmo",
    "obg": "obrigado", "obgd": "obrigado", "obgda": "obrigada", "brigado": "obrigado",
    "brigada": "obrigada", "vlw": "valeu", "vlww": "valeu", "blz": "beleza", "flw": "falou",
    "hj": "hoje", "amanha": "amanha", "agr": "agora", "dps": "depois", "pf": "por favor",
    "pfv": "por favor", "pfvr": "por favor", "pls": "por favor", "mt": "muito", "mto": "muito",
    "mta": "muita", "n": "nao", "nn": "nao", "s": "sim", "ss": "sim", "cmg": "comigo",
    "ctg": "contigo", "vdd": "verdade", "qto": "quanto", "qt": "quanto", "p": "para",
    "pra": "para", "pro": "para o", "ta": "esta", "to": "estou", "tô": "estou", "tá": "esta",
    "num": "numero", "nº": "numero", "n°": "numero", "proc": "processo", "adv": "advogado",
    "dr": "doutor", "dra": "doutora", "cpf": "cpf", "info": "informacao", "infos": "informacoes",
}  # fmt: skip
_REPEATED = re.compile(r"([a-z])\1{2,}")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def normalise_word(word: str) -> str:
    lowered = word.lower()
    if lowered in ABBREVIATIONS:
        return ABBREVIATIONS[lowered]
    folded = _REPEATED.sub(r"\1", fold(lowered))
    return ABBREVIATIONS.get(folded, folded)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class NormalizadorTexto(GraphComponent):
    """Sets token.lemma to the normalised word for every token of the message text."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NormalizadorTexto:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._normalise(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            self._normalise(message)
        return training_data

    @staticmethod
    def _normalise(message: Message) -> None:
        tokens: list[Token] = message.get(TOKENS_NAMES[TEXT]) or []
        for token in tokens:
            token.lemma = normalise_word(token.text)
