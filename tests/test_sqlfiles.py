"""The SQL loader: `\\ir` includes (a block two statements share is written once) and comment stripping."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_warehouse.resources.sqlfiles import _statement, load_sql, sql_text


def _write(root: Path, name: str, text: str) -> None:
    path = root / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(autouse=True)
def _fresh_caches():
    """The loader caches by (name, root); each test writes its own files under its own tmp_path."""
    load_sql.cache_clear()
    _statement.cache_clear()
    yield
    load_sql.cache_clear()
    _statement.cache_clear()


def test_an_include_line_stands_for_the_included_file_relative_to_the_including_one(tmp_path):
    root = tmp_path / "sql"
    _write(root, "common/part", "-- a fragment\nSELECT :b AS b\n")
    _write(root, "common/nested", "SELECT :a AS a\nUNION ALL\n\\ir part.sql\n")
    _write(root, "common/outer", "(\n\\ir nested.sql\n)\nORDER BY 1\n")

    assert (
        load_sql("common/outer", root)
        == "(\nSELECT :a AS a\nUNION ALL\n-- a fragment\nSELECT :b AS b\n)\nORDER BY 1\n"
    )
    statement = sql_text("common/outer", root)
    assert "a fragment" not in statement.text
    assert set(statement.compile().params) == {"a", "b"}


def test_an_include_cycle_and_a_missing_file_are_errors_naming_the_including_file(tmp_path):
    root = tmp_path / "sql"
    _write(root, "common/one", "\\ir two.sql\n")
    _write(root, "common/two", "\\ir one.sql\n")
    _write(root, "common/broken", "SELECT 1\n\\ir nowhere.sql\n")

    with pytest.raises(ValueError, match=r"SQL include cycle: one.sql -> two.sql -> one.sql"):
        load_sql("common/one", root)
    with pytest.raises(FileNotFoundError, match=r"sql/common/broken.sql includes nowhere.sql: no such file"):
        load_sql("common/broken", root)


def test_a_backslash_word_that_is_not_a_whole_include_line_is_left_alone(tmp_path):
    root = tmp_path / "sql"
    _write(root, "common/literal", "SELECT '\\ir x.sql' AS s -- \\ir y.sql\n")
    assert load_sql("common/literal", root) == "SELECT '\\ir x.sql' AS s -- \\ir y.sql\n"


def test_both_ohlcv_frame_reads_carry_the_one_cold_tier_marker():
    """The marker block is written once (ohlcv_cold_marker.sql) and composed into both frame reads."""
    marker = load_sql("common/ohlcv_cold_marker")
    block = marker[marker.index("UNION ALL") :].rstrip("\n")
    for name in ("common/get_ohlcv_frame", "common/get_ohlcv_frame_limit"):
        text = load_sql(name)
        assert block in text, name
        assert "\\ir" not in sql_text(name).text
        assert text.rstrip("\n").endswith(block + "\nORDER BY symbol, time"), name
