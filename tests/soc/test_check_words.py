"""``soc.protocol.check_words``: the bulk fast path for plain ints agrees with the
per-word check, and a bad word anywhere raises naming the first one."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mxhw.soc import protocol as P
from support.hyp import budget

GOOD = st.integers(0, 2**32 - 1)
BAD = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32), st.booleans(),
                st.floats(allow_nan=False), st.text(max_size=2))


@budget(100)
@given(words=st.lists(GOOD, max_size=40))
def test_good_words_pass_through(words):
    assert P.check_words(words) == words
    assert P.check_words(tuple(words)) == words
    assert P.check_words(np.array(words, dtype=np.uint32)) == words


@budget(100)
@given(before=st.lists(GOOD, max_size=10), bad=BAD, after=st.lists(st.one_of(GOOD, BAD),
                                                                     max_size=5))
def test_first_bad_word_named(before, bad, after):
    words = before + [bad] + after
    if isinstance(bad, int) and not isinstance(bad, bool):
        err = ValueError
    else:
        err = TypeError
    with pytest.raises(err, match=rf"^word {len(before)} must "):
        P.check_words(words)
