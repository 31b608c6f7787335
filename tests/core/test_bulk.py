import pytest

from gossipdht.core.bulk import BadBulk, parse_json, parse_tsv


def test_tsv_value_is_the_rest_of_the_line_and_the_last_newline_is_optional():
    assert parse_tsv(b"a\tx\ty\nb\t\nc\tz", 10) == {"a": b"x\ty", "b": b"", "c": b"z"}


def test_tsv_and_json_keep_the_last_value_of_a_repeated_key():
    assert parse_tsv(b"k\t1\nk\t2\n", 10) == {"k": b"2"}
    assert parse_json(b'{"k": "1", "k": "2"}', 10) == {"k": b"2"}


@pytest.mark.parametrize("body, line", [(b"\n", 1), (b"a\t1\n\n", 2), (b"a\t1\nb\t2\n" + b"k" * 1025 + b"\tv", 3)])
def test_tsv_names_the_first_bad_line(body, line):
    with pytest.raises(BadBulk, match=f"^line {line}: "):
        parse_tsv(body, 10)


def test_json_values_are_stored_as_utf8():
    assert parse_json('{"\u00e5": "\u00e4\u00f6"}'.encode(), 4) == {"\u00e5": "\u00e4\u00f6".encode()}
    with pytest.raises(BadBulk, match="value larger than 3 bytes"):
        parse_json('{"k": "\u00e4\u00f6"}'.encode(), 3)
    with pytest.raises(BadBulk, match="key .k.: .*surrogates not allowed"):
        parse_json(b'{"k": "\\ud800"}', 10)
