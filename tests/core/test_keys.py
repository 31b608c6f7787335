from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossipdht.core.keys import MAX_KEY_BYTES, InvalidKey, decode_path_segment


@given(st.text(st.characters(codec="utf-8"), min_size=1).filter(lambda k: len(k.encode()) <= MAX_KEY_BYTES))
def test_any_percent_encoded_utf8_key_decodes_to_itself(key):
    assert decode_path_segment(quote_from_bytes(key.encode(), safe="/").encode()) == key


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_invalid_key(raw):
    try:
        key = decode_path_segment(raw)
    except InvalidKey as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= len(key.encode()) <= MAX_KEY_BYTES


@pytest.mark.parametrize("raw", [b"", b"%", b"%4", b"%G0", b"%ff", b"%C3%28", b"x" * 1025, b"%41" * 1025])
def test_refused(raw):
    with pytest.raises(InvalidKey):
        decode_path_segment(raw)
