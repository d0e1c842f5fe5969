"""The CNJ unified case number (Numeração Única, Resolução CNJ nº 65/2008). Pure logic, no I/O.

Format ``NNNNNNN-DD.AAAA.J.TR.OOOO``: sequential number, check digits (ISO 7064 Mod 97-10),
filing year, judiciary segment, tribunal and origin unit. The check digits only prove the number
was typed correctly; whether the case exists is DataJud's answer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum

# Digits with the optional mask characters citizens type (dots, dash, spaces inside the number).
_CANDIDATE = re.compile(r"\d[\d.\-\s]{12,34}\d")
_MASK = re.compile(r"[.\-\s]")

# Anexo of Res. 65/2008: states in alphabetical order of their names; TJs (J=8) and TREs (J=6)
# share this numbering. TJDFT (07) covers the Federal District and Territories.
_STATE_BY_TR = {
    "01": "ac", "02": "al", "03": "ap", "04": "am", "05": "ba", "06": "ce", "07": "df",
    "08": "es", "09": "go", "10": "ma", "11": "mt", "12": "ms", "13": "mg", "14": "pa",
    "15": "pb", "16": "pr", "17": "pe", "18": "pi", "19": "rj", "20": "rn", "21": "rs",
    "22": "ro", "23": "rr", "24": "sc", "25": "se", "26": "sp", "27": "to",
}  # fmt: skip
# Only three states keep a military court of justice (J=9).
_TJM_BY_TR = {"13": "tjmmg", "21": "tjmrs", "26": "tjmsp"}

SEGMENT_NAMES = {
    "1": "Supremo Tribunal Federal",
    "2": "Conselho Nacional de Justiça",
    "3": "Superior Tribunal de Justiça",
    "4": "Justiça Federal",
    "5": "Justiça do Trabalho",
    "6": "Justiça Eleitoral",
    "7": "Justiça Militar da União",
    "8": "Justiça Estadual",
    "9": "Justiça Militar Estadual",
}


class Problem(Enum):
    """Why a typed number is not a usable CNJ number (each maps to a message for the citizen)."""

    WRONG_LENGTH = "wrong_length"
    CHECK_DIGITS = "check_digits"
    UNKNOWN_SEGMENT = "unknown_segment"
    UNKNOWN_TRIBUNAL = "unknown_tribunal"
    IMPLAUSIBLE_YEAR = "implausible_year"


class InvalidCaseNumberError(ValueError):
    def __init__(self, problem: Problem, digits: str, detail: str = "") -> None:
        super().__init__(f"{problem.value}: {digits} {detail}".strip())
        self.problem = problem
        self.digits = digits
        self.detail = detail


@dataclass(frozen=True)
class CaseNumber:
    sequential: str
    check_digits: str
    year: str
    segment: str
    tribunal: str
    origin: str

    @property
    def digits(self) -> str:
        """The 20 digits without mask: the form DataJud indexes (``numeroProcesso``)."""
        return (
            self.sequential + self.check_digits + self.year + self.segment + self.tribunal
            + self.origin
        )  # fmt: skip

    @property
    def formatted(self) -> str:
        return (
            f"{self.sequential}-{self.check_digits}.{self.year}.{self.segment}"
            f".{self.tribunal}.{self.origin}"
        )

    @property
    def segment_name(self) -> str:
        return SEGMENT_NAMES.get(self.segment, "segmento desconhecido")


def expected_check_digits(base18: str) -> str:
    """Mod 97-10 check digits of the 18 digits NNNNNNN AAAA J TR OOOO (in this order)."""
    if len(base18) != 18 or not base18.isdigit():
        raise ValueError(f"expected 18 digits, got {base18!r}")
    return f"{98 - int(base18 + '00') % 97:02d}"


def digits_only(text: str) -> str:
    return _MASK.sub("", text)


def find_candidates(text: str) -> list[str]:
    """Digit runs in free text that look like an attempt at a case number (masked or not).

    Used to tell "you typed 19 digits" apart from "you sent no number at all".
    """
    found = []
    for match in _CANDIDATE.finditer(text):
        digits = digits_only(match.group())
        if digits.isdigit() and 15 <= len(digits) <= 25:
            found.append(digits)
    return found


def parse(text: str, *, today: dt.date | None = None) -> CaseNumber:
    """Parse and validate a case number typed with or without punctuation.

    Raises InvalidCaseNumberError with the first problem found, in the order a citizen can fix them.
    """
    digits = digits_only(text.strip())
    if len(digits) != 20 or not digits.isdigit():
        raise InvalidCaseNumberError(Problem.WRONG_LENGTH, digits, f"{len(digits)} digits")
    number = CaseNumber(
        sequential=digits[0:7],
        check_digits=digits[7:9],
        year=digits[9:13],
        segment=digits[13],
        tribunal=digits[14:16],
        origin=digits[16:20],
    )
    base18 = number.sequential + number.year + number.segment + number.tribunal + number.origin
    if expected_check_digits(base18) != number.check_digits:
        raise InvalidCaseNumberError(Problem.CHECK_DIGITS, digits)
    if number.segment not in SEGMENT_NAMES:
        raise InvalidCaseNumberError(Problem.UNKNOWN_SEGMENT, digits)
    current_year = (today or dt.date.today()).year
    # The unified numbering started in 2010 but older cases were renumbered into it, so only
    # reject years no case can have.
    if not 1900 <= int(number.year) <= current_year:
        raise InvalidCaseNumberError(Problem.IMPLAUSIBLE_YEAR, digits, number.year)
    if datajud_alias(number) is None and number.segment not in {"1", "2"}:
        raise InvalidCaseNumberError(Problem.UNKNOWN_TRIBUNAL, digits, number.tribunal)
    return number


def datajud_alias(number: CaseNumber) -> str | None:
    """The DataJud index alias (``api_publica_<alias>``) for the number's J.TR, if DataJud has one.

    None for the STF and the CNJ (not in DataJud) and for codes no tribunal uses.
    """
    segment, tribunal = number.segment, number.tribunal
    if segment == "3" and tribunal == "00":
        return "stj"
    if segment == "4" and tribunal in {"01", "02", "03", "04", "05", "06"}:
        return f"trf{int(tribunal)}"
    if segment == "5":
        if tribunal == "00":
            return "tst"
        if 1 <= int(tribunal) <= 24:
            return f"trt{int(tribunal)}"
        return None
    if segment == "6":
        if tribunal == "00":
            return "tse"
        state = _STATE_BY_TR.get(tribunal)
        return f"tre-{state}" if state else None
    if segment == "7" and tribunal == "00":
        return "stm"
    if segment == "8":
        state = _STATE_BY_TR.get(tribunal)
        if state is None:
            return None
        return "tjdft" if state == "df" else f"tj{state}"
    if segment == "9":
        return _TJM_BY_TR.get(tribunal)
    return None
