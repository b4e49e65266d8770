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


def test_redeal_keeps_streams_on_their_actor_and_fills_the_emptiest():
    from psenet_stream.scale.fleet import redeal

    owner = {"a": 0, "b": 1, "c": 0, "d": 1}
    # b removed, e and f added: a, c, d stay; e goes to actor 1 (1 stream left), f then to either (0 first)
    got = redeal(owner, ["a", "c", "d", "e", "f"], 2)
    assert {k: got[k] for k in "acd"} == {"a": 0, "c": 0, "d": 1}
    assert got["e"] == 1 and got["f"] == 0
    assert "b" not in got
    # everything removed from one actor, then new streams: they go to the empty actor first
    got = redeal({"a": 0, "b": 1}, ["a", "x", "y"], 2)
    assert got == {"a": 0, "x": 1, "y": 0}
    # an owner beyond the actors (fewer actors now) is dealt again; no names: nothing
    assert redeal({"a": 5}, ["a"], 2) == {"a": 0}
    assert redeal(owner, [], 2) == {}


def test_share_conf_is_what_the_actor_and_its_reload_read():
    from psenet_stream.scale.fleet import _share_conf
    from psenet_stream.serve.config import from_dict, load

    cfg = load({"serve": {"batch": 2}, "stream": [{"name": "a", "input": "lavfi:testsrc2", "outputs": ["null"]}, {"name": "b", "input": "lavfi:testsrc2"}]})
    conf = _share_conf({"batch": 2, "status_interval": 5.0}, [cfg.streams[1]])
    back = from_dict(conf)
    assert [s.name for s in back.streams] == ["b"] and back.metrics_port == -1 and back.batch == 2
    assert from_dict(_share_conf({"batch": 2}, [])).streams == ()  # an actor left with no stream
