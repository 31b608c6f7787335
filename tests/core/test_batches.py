"""Cutting sequences into batches of bounded items and bytes, and into groups of about
a weight."""

from hypothesis import given
from hypothesis import strategies as st

from gossipdht.core.batches import batches, groups


@given(st.lists(st.integers(0, 50)), st.integers(1, 5), st.integers(1, 100))
def test_batches_keep_order_and_their_bounds_and_a_large_item_travels_alone(sizes, max_items, max_size):
    cut = list(batches(sizes, lambda size: size, max_items, max_size))
    assert [size for batch in cut for size in batch] == sizes
    for batch in cut:
        assert 1 <= len(batch) <= max_items
        assert sum(batch) <= max_size or len(batch) == 1
    # Each batch is as full as it may be: the next item would not have fitted.
    for batch, following in zip(cut, cut[1:]):
        assert len(batch) == max_items or sum(batch) + following[0] > max_size


def test_batches_without_an_item_bound_only_count_bytes():
    assert list(batches([3, 3, 3, 3], lambda size: size, None, 6)) == [[3, 3], [3, 3]]
    assert list(batches([], lambda size: size)) == []


@given(st.lists(st.integers(0, 20)), st.integers(1, 40))
def test_groups_close_once_they_reach_the_weight(weights, at_least):
    cut = list(groups(((i, w) for i, w in enumerate(weights)), at_least))
    assert [i for group, _ in cut for i in group] == list(range(len(weights)))
    for group, total in cut:
        assert total == sum(weights[i] for i in group)
        assert total - weights[group[-1]] < at_least  # it closed at the first item that reached it
    assert all(total >= at_least for _, total in cut[:-1])
