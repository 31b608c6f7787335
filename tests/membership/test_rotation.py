import random

from gossipdht.membership.rotation import Rotation


def visits(rotation, names, count, wanted=lambda n: True):
    return [rotation.next(lambda: names, wanted) for _ in range(count)]


def test_each_name_comes_once_a_pass_in_a_new_order_each_pass():
    names = [f"n{i}" for i in range(20)]
    rotation = Rotation(random.Random(1))
    first, second = visits(rotation, names, 20), visits(rotation, names, 20)
    assert sorted(first) == sorted(second) == sorted(names)
    assert first != second


def test_unwanted_names_are_skipped_and_none_when_no_name_is_wanted():
    rotation = Rotation(random.Random(2))
    names = ["a", "b", "c", "d"]
    assert sorted(visits(rotation, names, 2, wanted=lambda n: n in "bd")) == ["b", "d"]
    assert rotation.next(lambda: names, lambda n: False) is None
    assert Rotation(random.Random(3)).next(lambda: [], lambda n: True) is None


def test_a_newcomer_comes_in_the_pass_under_way():
    for seed in range(20):
        rotation = Rotation(random.Random(seed))
        names = ["a", "b", "c", "d"]
        seen = visits(rotation, names, 2)
        rotation.insert("new")
        rest = visits(rotation, names + ["new"], 3)
        assert sorted(seen + rest) == ["a", "b", "c", "d", "new"]
