"""Wide metric rows decoded as float vectors (``trackline.server.widerows``): the same
rows, values, summary and rank keys as records decoded one value at a time."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from _server import (  # noqa: F401 - fixtures
    canon,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    frame_ends,
    log_bytes,
    post_log,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from trackline import _wire_types as wt
from trackline._client import _rows
from trackline._fold import RunFold, fold
from trackline.records import DefineMetric, Metrics, Record, RunStart, decode, encode
from trackline.server import widerows
from trackline.server.widerows import WideRow


def as_record(decoded: Any) -> Any:
    if type(decoded) is WideRow:
        return Metrics(decoded.step, decoded.time, decoded.as_dict())
    return decoded


KEYS = st.text(min_size=1, max_size=40) | st.sampled_from(
    ["k" * 31, "k" * 32, "k" * 255, "é" * 200]
)
VALUES = st.floats() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=3)
STEPS = st.integers(-(2**63), 2**63 - 1) | st.integers(-40, 300)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decoded_rows_equal_records_decoded_one_value_at_a_time(data: st.DataObject) -> None:
    layouts = data.draw(
        st.lists(st.lists(KEYS, min_size=14, max_size=24, unique=True), min_size=1, max_size=3)
    )
    decoder = widerows.Decoder(decode, wide_from=16)
    for _ in range(data.draw(st.integers(1, 12))):
        keys = data.draw(st.sampled_from(layouts))
        if data.draw(st.booleans()):  # the same keys in another order
            keys = data.draw(st.permutations(keys))
        floats_only = data.draw(st.booleans())
        values = {k: data.draw(st.floats() if floats_only else VALUES) for k in keys}
        record = Metrics(data.draw(STEPS), data.draw(st.floats(allow_nan=False)), values)
        payload = encode(record)
        got = decoder(memoryview(payload))
        assert canon(msgspec_fields(as_record(got))) == canon(msgspec_fields(decode(payload)))
        all_floats = all(type(v) is float for v in values.values())
        assert (type(got) is WideRow) == (all_floats and len(values) >= 16)


def msgspec_fields(record: Any) -> Any:
    if type(record) is Metrics:
        return [record.step, record.time, list(record.values.items())]
    return record


def test_rows_that_look_alike_but_are_not_are_decoded_as_records() -> None:
    keys = [f"layer{j:03d}/w" for j in range(300)]
    decoder = widerows.Decoder(decode)
    first = decoder(memoryview(encode(Metrics(1, 1.0, {k: 0.5 for k in keys}))))
    assert type(first) is WideRow
    # an int in a float's place (9 bytes either way: 0xcf and 8 bytes)
    big = {**{k: 0.5 for k in keys}, keys[7]: 2**64 - 1}
    assert type(decoder(memoryview(encode(Metrics(2, 2.0, big))))) is Metrics
    # a key of the same length, one letter changed
    other = {(k if i != 9 else "layer009/x"): 0.5 for i, k in enumerate(keys)}
    got = decoder(memoryview(encode(Metrics(3, 3.0, other))))
    assert type(got) is WideRow and "layer009/x" in got.keys  # a new template
    again = decoder(memoryview(encode(Metrics(4, 4.0, {k: 1.5 for k in keys}))))
    assert (
        type(again) is WideRow
        and again.keys == tuple(keys)
        and again.values.tolist() == [1.5] * 300
    )
    # hostile or cut payloads that begin like a row: msgspec's own error, as before
    for cut in (9, 10, 11, 15, 20, 24, 30):
        with pytest.raises(msgspec.DecodeError):
            decoder(memoryview(encode(Metrics(2**40, 1.0, {k: 0.5 for k in keys}))[:cut]))
    with pytest.raises(msgspec.DecodeError):
        decoder(memoryview(b"\x94\xa7metrics\xcf\x00"))
    # a time that is not a float, a map that is not the last thing: records
    assert type(decoder(memoryview(encode(Metrics(5, 5, {k: 0.5 for k in keys}))))) is Metrics


def server_summary(client: Any, run_id: str) -> Any:
    return client.get(f"/api/v1/runs/{run_id}").json()["summary"]


def reference_summary(records: list[Record]) -> dict[str, Any]:
    state = RunFold()
    for record in records:
        fold(state, record)
    return state.summarizer.values()


def test_summary_history_and_ranks_of_wide_rows_mixed_with_others(app_client: Any) -> None:
    """Wide rows of two layouts, narrow rows on the same keys between them, a rule that
    aggregates (min) from the middle on, and a rank's wide rows: the summary is what the
    record-by-record fold gives; every point reads back; the rank's keys are prefixed."""
    a = [f"a/{j:03d}" for j in range(300)]
    b = [f"b/{j:03d}" for j in range(280)] + a[:20]
    records: list[Record] = [RunStart(run_id="mix", project="p", name="n", start_time=1.0)]
    for step in range(60):
        if step % 11 == 5:
            records.append(Metrics(step, 10.0 + step, {a[0]: -1.0 * step, "narrow": step}))
        keys = b if step % 7 == 3 else a
        records.append(Metrics(step, 10.0 + step, {k: step + j / 8 for j, k in enumerate(keys)}))
    data = log_bytes(records)
    ends = frame_ends(data)
    cuts = [0, ends[20], ends[21], ends[45], len(data)]
    for lo, hi in itertools.pairwise(cuts):
        assert post_log(app_client, "mix", data[lo:hi], lo).status_code == 200
    want = reference_summary(records)
    assert want[a[0]] == 59 + 280 / 8 and want[b[0]] == 59.0 and want["narrow"] == 49
    got = server_summary(app_client, "mix")
    assert canon(got) == canon(want)
    answer = app_client.get("/api/v1/runs/mix/history", params={"keys": [a[0], b[0], a[-1]]})
    rows = _rows(wt.decode(answer.content, wt.Columns))
    expected = [
        {"_step": r.step, **{k: v for k, v in r.values.items() if k in (a[0], b[0], a[-1])}}
        for r in records
        if isinstance(r, Metrics)
    ]
    merged: dict[int, dict[str, Any]] = {}
    for row in expected:
        merged.setdefault(row["_step"], {}).update(row)
    got_rows = [{k: v for k, v in r.items() if k != "_time"} for r in rows]
    assert canon(got_rows) == canon([merged[s] for s in sorted(merged)])

    # A rule from the middle on: every row counts from there.
    rules: list[Record] = [RunStart(run_id="rules", project="p", name="n", start_time=1.0)]
    for step in range(40):
        if step == 20:
            rules.append(DefineMetric(a[1], "min"))
        rules.append(Metrics(step, 1.0 + step, {k: (step - 25) ** 2 + j for j, k in enumerate(a)}))
    rules = [
        r
        if not isinstance(r, Metrics)
        else Metrics(r.step, r.time, {k: float(v) for k, v in r.values.items()})
        for r in rules
    ]
    assert post_log(app_client, "rules", log_bytes(rules)).status_code == 200
    want_rules = reference_summary(rules)
    assert want_rules[a[1]] == 1.0 and want_rules[a[0]] == 196.0
    assert canon(server_summary(app_client, "rules")) == canon(want_rules)

    rank: list[Record] = [RunStart(run_id="mix", project="p", name="n", start_time=1.0)]
    rank += [Metrics(s, 5.0 + s, {k: s * 2.0 for k in a}) for s in range(40)]
    assert post_log(app_client, "mix", log_bytes(rank), 0, stream="main.1").status_code == 200
    got = server_summary(app_client, "mix")
    assert got[f"rank1/{a[5]}"] == 78.0 and got[a[5]] == want[a[5]]
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["mix"]}).json()["points"]
    assert counts[f"rank1/{a[299]}"] == 40 and counts[a[299]] == 60 - 9


@pytest.mark.parametrize("rule", [False, True])
def test_a_ranks_wide_and_narrow_rows_fold_as_one_record_at_a_time(
    app_client: Any, rule: bool
) -> None:
    """A rank's wide rows of two layouts with narrow rows on the same keys between them,
    with and without a rule (min) on one of its keys, sent in cut ranges: the run's summary
    and the rank's row count are what the record-by-record fold of its stream gives (the
    server prefixes a rank's keys once per name and takes only the last of a run of wide
    rows into the summary when no rule needs every row)."""
    run_id = f"rank-rule-{rule}"
    a = [f"a/{j:03d}" for j in range(300)]
    b = [f"b/{j:03d}" for j in range(280)] + a[:20]
    own: list[Record] = [RunStart(run_id=run_id, project="p", name="n", start_time=1.0)]
    if rule:
        own.append(DefineMetric(f"rank1/{a[1]}", "min"))
    own.append(Metrics(0, 2.0, {"loss": 0.5}))
    rank: list[Record] = [RunStart(run_id=run_id, project="p", name="n", start_time=1.5)]
    for step in range(60):
        if step % 11 == 5:
            rank.append(Metrics(step, 10.0 + step, {a[0]: -1.0 * step, "narrow": step}))
        keys = b if step % 7 == 3 else a
        values = {k: float((step - 25) ** 2 + j) for j, k in enumerate(keys)}
        rank.append(Metrics(step, 10.0 + step, values))
    assert post_log(app_client, run_id, log_bytes(own)).status_code == 200
    data = log_bytes(rank)
    ends = frame_ends(data)
    for lo, hi in itertools.pairwise([0, ends[20], ends[21], ends[45], len(data)]):
        assert post_log(app_client, run_id, data[lo:hi], lo, stream="main.1").status_code == 200

    state = RunFold()
    for record in own:
        fold(state, record)
    for record in rank:
        fold(state, record, "main.1")
    want = state.summarizer.values()
    assert want[f"rank1/{a[1]}"] == (1.0 if rule else 34 * 34 + 281.0)  # step 59: layout b
    assert want["rank1/narrow"] == 49 and want["loss"] == 0.5
    answer = app_client.get(f"/api/v1/runs/{run_id}").json()
    assert canon(answer["summary"]) == canon(want)
    writer = next(w for w in answer["writers"] if w["rank"] == 1)
    assert writer["rows"] == state.writers["1"]["rows"] == len(rank) - 1


def test_rows_alternating_between_layouts_keep_a_template_each() -> None:
    """Rows that alternate between layouts (training keys, then validation keys) are read
    through their own templates once each has been seen, up to ``TEMPLATES`` layouts;
    past that, rows are decoded as records, with the same values."""
    calls = []

    def counted(payload: memoryview) -> Any:
        calls.append(1)
        return decode(payload)

    def layout(n: int) -> list[str]:
        return [f"l{n}/{j}" for j in range(20)]  # all the same size: the bytes tell them apart

    for count in (2, widerows.TEMPLATES, widerows.TEMPLATES + 1):
        decoder = widerows.Decoder(counted, wide_from=16)
        calls.clear()
        for step in range(5 * count):
            keys = layout(step % count)
            record = Metrics(step, 1.0 * step, {k: step + j / 4 for j, k in enumerate(keys)})
            got = decoder(memoryview(encode(record)))
            assert type(got) is WideRow and got.as_dict() == record.values
        assert len(calls) == (count if count <= widerows.TEMPLATES else 5 * count)
