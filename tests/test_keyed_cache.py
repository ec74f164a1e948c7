"""The one keyed-cache check behind the studies' result files (ganreport.io.read_keyed / write_keyed)."""

from ganreport import io


def test_an_entry_is_read_back_only_for_its_key(tmp_path):
    path = tmp_path / "sub" / "entry.json"
    key = {"settings": {"b": 2, "a": [1, 2]}, "checkpoint": "ab12"}
    assert io.read_keyed(path, key) is None  # missing
    io.write_keyed(path, key, {"rows": [{"x": 1}]})
    assert io.read_keyed(path, {"checkpoint": "ab12", "settings": {"a": [1, 2], "b": 2}})["rows"] == [{"x": 1}]
    assert io.read_keyed(path, {**key, "checkpoint": "cd34"}) is None  # the producer changed: recompute
    io.write_keyed(path, "s1", {"train_s": 1.5}, field="stamp")
    assert io.read_keyed(path, "s1", "stamp")["train_s"] == 1.5 and io.read_keyed(path, "s1") is None
    path.write_text("{not json")
    assert io.read_keyed(path, "s1", "stamp") is None  # unreadable: recompute, never crash


def test_row_order_can_be_kept(tmp_path):
    path = tmp_path / "rows.json"
    io.write_keyed(path, 1, {"rows": [{"z": 1, "a": 2}]}, indent=1, sort_keys=False)
    assert list(io.read_keyed(path, 1)["rows"][0]) == ["z", "a"]
