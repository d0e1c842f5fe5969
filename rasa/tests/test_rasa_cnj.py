from __future__ import annotations

import datetime as dt

import pytest
from actions import cnj


@pytest.mark.parametrize(
    ("typed", "alias"),
    [
        ("0058967-77.2016.8.19.0000", "tjrj"),  # example of Business::BR::CNJ
        ("0000832-35.2018.4.01.3202", "trf1"),  # DataJud wiki example
        ("00008323520184013202", "trf1"),  # without mask
        (" 0000832 35 2018 4 01 3202 ", "trf1"),  # spaces instead of punctuation
    ],
)
def test_valid_numbers_parse_with_or_without_mask(typed: str, alias: str) -> None:
    number = cnj.parse(typed)
    assert number.formatted in {"0058967-77.2016.8.19.0000", "0000832-35.2018.4.01.3202"}
    assert cnj.datajud_alias(number) == alias


def test_check_digits_follow_mod_97_10() -> None:
    assert cnj.expected_check_digits("005896720168190000") == "77"
    assert cnj.expected_check_digits("100000020248260100") == "37"


def test_wrong_check_digits_are_rejected() -> None:
    with pytest.raises(cnj.InvalidCaseNumberError) as raised:
        cnj.parse("1000000-00.2024.8.26.0100")
    assert raised.value.problem is cnj.Problem.CHECK_DIGITS


def test_wrong_length_is_reported_with_the_digit_count() -> None:
    with pytest.raises(cnj.InvalidCaseNumberError) as raised:
        cnj.parse("0000832-35.2018.4.01.320")
    assert raised.value.problem is cnj.Problem.WRONG_LENGTH
    assert len(raised.value.digits) == 19


def _with_check_digits(base: str) -> str:
    """base = NNNNNNN AAAA J TR OOOO (18 digits) -> the full, valid 20 digits."""
    return base[:7] + cnj.expected_check_digits(base) + base[7:]


def test_unknown_segment_tribunal_and_future_year_are_rejected() -> None:
    cases = {
        cnj.Problem.UNKNOWN_SEGMENT: "000123420230" + "99" + "0001",  # J=0
        cnj.Problem.UNKNOWN_TRIBUNAL: "00012342023" + "8" + "99" + "0001",  # TJ 99
        cnj.Problem.IMPLAUSIBLE_YEAR: "00012342999" + "8" + "26" + "0001",
    }
    for problem, base in cases.items():
        with pytest.raises(cnj.InvalidCaseNumberError) as raised:
            cnj.parse(_with_check_digits(base), today=dt.date(2025, 1, 1))
        assert raised.value.problem is problem


@pytest.mark.parametrize(
    ("segment", "tribunal", "alias"),
    [
        ("8", "26", "tjsp"),
        ("8", "07", "tjdft"),
        ("8", "04", "tjam"),
        ("8", "13", "tjmg"),
        ("4", "05", "trf5"),
        ("5", "02", "trt2"),
        ("5", "00", "tst"),
        ("6", "26", "tre-sp"),
        ("6", "00", "tse"),
        ("3", "00", "stj"),
        ("7", "00", "stm"),
        ("9", "13", "tjmmg"),
        ("1", "00", None),  # STF is not in DataJud
    ],
)
def test_alias_comes_from_segment_and_tribunal(
    segment: str, tribunal: str, alias: str | None
) -> None:
    number = cnj.parse(_with_check_digits("0001234" + "2020" + segment + tribunal + "0001"))
    assert cnj.datajud_alias(number) == alias


def test_candidates_in_free_text_include_near_misses() -> None:
    text = "oi meu processo é 0000832-35.2018.4.01.320 e o telefone 123"
    assert cnj.find_candidates(text) == ["0000832352018401320"]
