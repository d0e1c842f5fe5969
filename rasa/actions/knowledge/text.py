"""Portuguese text normalisation for retrieval: folded accents, stopwords out, Snowball stems.

Citizens write "certidao", "certidão" and "certidoes": all must reach the same stem. Stemming
runs on the accented word (the Portuguese Snowball rules expect accents) and the stem is then
folded, so a query typed without accents meets a document written with them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_stemmer = snowballstemmer.stemmer("portuguese")

# Function words and chat filler that say nothing about the topic. Stored folded.
_STOPWORDS_TEXT = """
a o as os um uma uns umas de do da dos das no na nos nas em por pelo pela pelos pelas para pra
pro pros pras com sem sob sobre ao aos à às e ou mas que se nao sim ja la ca aqui ai isso isto
esse essa este esta aquele aquela eu tu ele ela nos vos eles elas voce voces vc vcs me te lhe
meu minha meus minhas seu sua seus suas teu tua dele dela deles delas como qual quais quando
onde quem porque pq por que quanto quanta muito muita mais menos bem tambem so ate entao
ser estar ter haver fazer foi era sao esta estou estamos tenho tem temos tinha ha vai vou
queria quero gostaria preciso precisa poderia pode posso consigo consegue saber sei
favor obrigado obrigada ola oi bom boa dia tarde noite tudo ok gente ne tipo coisa
algum alguma alguns algumas cada outro outra outros outras mesmo mesma
do dum duma num numa neste nesta nisso nisto deste desta disso disto
ajuda ajudar duvida informacao informacoes
fui foi deu faz fez devo deve dever acontece aconteceu agora ainda hoje ontem sempre nunca
quero quer queremos vai vou dar dizer diz disse
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return fold(_stemmer.stemWord(word))


def terms(text: str) -> list[str]:
    """The content terms of a text, in order (stopwords dropped, stems folded)."""
    result = []
    for word in _WORD.findall(text.lower()):
        if fold(word) in STOPWORDS or len(word) < 2:
            continue
        result.append(_stem(word))
    return result
