"""The chapters' bookkeeping helpers (mode_interp.report): plain values, glue, the check cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mode_interp.report import check, glue_all, glue_tables, in_words, merge_checks, plain


def test_plain_turns_numpy_and_torch_scalars_into_python():
    assert type(plain(np.float32(1.5))) is float and plain(np.float32(1.5)) == 1.5
    assert type(plain(np.int64(3))) is int and type(plain(torch.tensor(7))) is int
    assert type(plain(torch.tensor(2.0))) is float and type(plain(np.bool_(True))) is bool
    assert plain({"a": [np.int32(1), (np.float64(2.0),)], "b": "x"}) == {"a": [1, (2.0,)], "b": "x"}
    assert plain(np.array(4.0)) == 4.0 and type(plain(np.array(4.0))) is float


def test_glue_all_glues_plain_values_under_the_prefix(capsys):
    out = glue_all({"rate": np.float64(0.25), "count": np.int64(3)}, "chX_")
    assert out == {"chX_rate": 0.25, "chX_count": 3} and type(out["chX_count"]) is int
    with pytest.raises(TypeError, match="values"):
        glue_all([("a", 1)])
    with pytest.raises(ValueError, match="glue keys"):
        glue_all({"a-b": 1})
    with pytest.raises(TypeError, match="prefix"):
        glue_all({"a": 1}, prefix=3)


def test_glue_tables_glues_numbers_and_each_table_as_markdown():
    from IPython.display import Markdown

    out = glue_tables({"gate": "| a |\n|---|\n| 1 |"}, {"n": np.int64(2)}, "chX_")
    assert set(out) == {"chX_n", "chX_gate_table"} and out["chX_n"] == 2 and type(out["chX_n"]) is int
    assert isinstance(out["chX_gate_table"], Markdown) and out["chX_gate_table"].data == "| a |\n|---|\n| 1 |"
    with pytest.raises(TypeError, match="tables"):
        glue_tables({"gate": 3}, {})
    with pytest.raises(TypeError, match="numbers"):
        glue_tables({}, [("n", 1)])


def test_check_prints_every_line_and_fails_on_a_failed_claim_or_sanity_check(capsys):
    check({"holds": np.bool_(True)}, {"arithmetic": True})
    assert capsys.readouterr().out.splitlines() == ["PASS [claim] holds", "PASS [sanity] arithmetic"]
    with pytest.raises(AssertionError, match=r"\[claim\] wrong"):
        check({"wrong": False, "right": True})
    assert "FAIL [claim] wrong" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"\[sanity\] broken"):
        check({}, {"broken": torch.tensor(False)})
    with pytest.raises(TypeError, match="claims"):
        check([True])


def test_merge_checks_joins_the_sections_and_refuses_a_repeated_name():
    claims, sanity = merge_checks({"a": True}, ({"b": False}, {"s": True}), ({}, {"t": True}))
    assert claims == {"a": True, "b": False} and sanity == {"s": True, "t": True}
    assert merge_checks() == ({}, {})
    with pytest.raises(ValueError, match=r"parts\[1\] repeats the check\(s\) \['a'\]"):
        merge_checks({"a": True}, ({"a": True}, {}))
    with pytest.raises(TypeError, match=r"parts\[0\]"):
        merge_checks([True])
    with pytest.raises(TypeError, match=r"parts\[0\]"):
        merge_checks(({"a": True},))


@pytest.mark.parametrize("parts, text", [([], ""), (["6,000"], "6,000"), (["a", "b"], "a and b"),
                                         (["a", "b", "c"], "a, b and c"), ((x for x in (1, 2, 3, 4)), "1, 2, 3 and 4")])
def test_in_words_lists_parts_with_and_before_the_last(parts, text):
    assert in_words(parts) == text
