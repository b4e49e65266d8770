"""The Ray fleet's pure parts, without a cluster: dealing streams, sizing actors, merging
the actors' Prometheus texts (the real cluster runs in tests/ray/)."""

from __future__ import annotations

import pytest

from psenet_stream.scale.fleet import FleetMetrics, plan_actors, shares


def test_shares_deal_round_robin_and_never_leave_an_actor_empty():
    assert shares(list("abcde"), 2) == [["a", "c", "e"], ["b", "d"]]
    assert shares(list("ab"), 8) == [["a"], ["b"]]


def test_plan_actors_by_cpus_and_gpus():
    assert plan_actors(10, {"CPU": 3.0}, {"backend": "cpu"}) == (3, {"num_cpus": 1})
    assert plan_actors(10, {"CPU": 8.0}, {"backend": "onnx", "threads": 2}) == (4, {"num_cpus": 2})
    assert plan_actors(2, {"CPU": 8.0}, {}) == (2, {"num_cpus": 1})
    assert plan_actors(40, {"CPU": 64.0, "GPU": 4.0}, {"backend": "cuda"}) == (4, {"num_cpus": 1, "num_gpus": 1})
    from psenet_stream.errors import UsageError

    with pytest.raises(UsageError, match="no GPU"):
        plan_actors(4, {"CPU": 8.0}, {"backend": "cuda"})


def test_fleet_metrics_merge_actors_with_an_actor_label():
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from psenet_stream.serve.metrics import ServeMetrics

    a, b = ServeMetrics(), ServeMetrics()
    a.add("cam-a")
    b.add("cam-b")
    a.frames.labels("cam-a").inc(5)
    b.frames.labels("cam-b").inc(7)
    m = FleetMetrics()
    m.texts = {0: a.render().decode(), 1: b.render().decode()}
    m.info = {0: {"node": "n0", "pid": 11}, 1: {"node": "n1", "pid": 12}}
    m.up = {0: True, 1: False}
    m.restarts = {1: 2}
    text = m.render().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}  # valid exposition text, one family each
    frames = {(s.labels["actor"], s.labels["stream"]): s.value for s in fams["psenet_stream_frames"].samples if s.name.endswith("_total")}
    assert frames == {("0", "cam-a"): 5.0, ("1", "cam-b"): 7.0}
    up = {s.labels["actor"]: (s.value, s.labels["pid"]) for s in fams["psenet_fleet_actor_up"].samples}
    assert up == {"0": (1.0, "11"), "1": (0.0, "12")}
    restarts = {s.labels["actor"]: s.value for s in fams["psenet_fleet_actor_restarts"].samples}
    assert restarts == {"0": 0.0, "1": 2.0}
    assert text.count("# TYPE psenet_stream_frames_total counter") == 1  # one family, both actors in it
