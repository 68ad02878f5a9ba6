"""Controller election against a live ZooKeeper, with real broker processes."""

from __future__ import annotations

import json
import time

import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness, ControllerState

from client.tooling.processes import wait_until

pytestmark = pytest.mark.live

ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 15


def start_three(cluster: ClusterHarness, **kwargs: int) -> tuple[ControllerState, dict[int, int]]:
    """Brokers 1-3 started and registered; the controller and each broker's epoch."""
    cluster.start_brokers(1, 2, 3, **kwargs)
    return cluster.wait_for_controller(), {b: cluster.wait_registered(b) for b in (1, 2, 3)}


def elected_lines(cluster: ClusterHarness, broker_id: int) -> list[str]:
    return [line for line in cluster.log(broker_id).splitlines() if "successfully elected as the controller" in line]


def test_three_brokers_elect_exactly_one_controller_and_write_kafkas_znodes(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    state = cluster.wait_for_controller()
    winner = state.controller_id

    # Exactly one broker won, at epoch 1, and says so in Kafka's words.
    log = cluster.wait_for_log(winner, "Ready to serve as the new controller")
    assert (
        f"{winner} successfully elected as the controller. Epoch incremented to 1 and epoch zk version is now 1"
        in log
    )
    assert [len(elected_lines(cluster, b)) for b in (1, 2, 3)].count(1) == 1
    assert sum(len(elected_lines(cluster, b)) for b in (1, 2, 3)) == 1

    # /controller: Kafka's JSON, ephemeral, owned by the winner's session.
    data, stat = cluster.zk.get("/controller")
    controller = json.loads(data)
    assert set(controller) == {"version", "brokerid", "timestamp"}
    assert controller["version"] == 1 and controller["brokerid"] == winner
    assert isinstance(controller["timestamp"], str) and abs(int(controller["timestamp"]) - time.time() * 1000) < 120_000
    registration_stat = cluster.zk.exists(f"/brokers/ids/{winner}")
    assert stat.ephemeralOwner != 0 and stat.ephemeralOwner == registration_stat.ephemeralOwner

    # /controller_epoch: plain decimal text, bumped together with /controller.
    epoch_data, epoch_stat = cluster.zk.get("/controller_epoch")
    assert epoch_data == b"1" and epoch_stat.version == 1 and epoch_stat.ephemeralOwner == 0

    # /brokers/ids/<id>: version 5 of Kafka's registration, ephemeral; czxid is the broker epoch.
    description = cluster.describe()
    epochs = {b.id: b.broker_epoch for b in description.brokers}
    for broker_id in (1, 2, 3):
        data, stat = cluster.zk.get(f"/brokers/ids/{broker_id}")
        registration = json.loads(data)
        port = cluster.brokers[broker_id].port
        assert registration == {
            "version": 5,
            "host": "127.0.0.1",
            "port": port,
            "jmx_port": -1,
            "timestamp": registration["timestamp"],
            "endpoints": [f"PLAINTEXT://127.0.0.1:{port}"],
            "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
            "rack": None,
            "features": {},
        }
        assert registration["timestamp"].isdigit()
        assert stat.ephemeralOwner != 0
        assert epochs[broker_id] == stat.czxid

    # /cluster/id and the persistent paths every broker creates.
    cluster_id = cluster.read_json("/cluster/id")
    assert cluster_id == {"version": "1", "id": description.cluster_id}
    assert len(description.cluster_id) == 22
    for path in ("/brokers/topics", "/brokers/seqid", "/admin/delete_topics", "/isr_change_notification",
                 "/config/topics", "/config/changes"):
        assert cluster.zk.exists(path) is not None, path

    # Every broker answers the same description.
    for broker_id in (1, 2, 3):
        d = cluster.describe(broker_id)
        assert (d.controller_id, d.controller_epoch, d.responding_broker_id) == (winner, 1, broker_id)
        assert [b.id for b in d.brokers] == [1, 2, 3]


def test_sigkill_controller_elects_another_with_next_epoch_after_session_expiry(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    old = cluster.wait_for_controller()
    cluster.brokers[old.controller_id].kill()

    new = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=old.controller_id)
    assert new.epoch == old.epoch + 1
    assert new.epoch_zk_version == old.epoch_zk_version + 1
    assert old.controller_id not in cluster.registered_ids()

    log = cluster.wait_for_log(new.controller_id, "Ready to serve as the new controller with epoch 2")
    assert "successfully elected as the controller. Epoch incremented to 2 and epoch zk version is now 2" in log
    assert f"deleted brokers: {old.controller_id}," in log
    assert f"Broker failure callback for {old.controller_id}" in log

    survivors = sorted({1, 2, 3} - {old.controller_id})
    d = cluster.describe(*survivors)
    assert (d.controller_id, d.controller_epoch) == (new.controller_id, 2)
    assert [b.id for b in d.brokers] == survivors


def test_sigkilled_broker_restarted_comes_back_with_a_new_broker_epoch(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    state = cluster.wait_for_controller()
    follower = max({1, 2, 3} - {state.controller_id})
    before = cluster.wait_registered(follower)

    cluster.brokers[follower].kill()
    wait_until(lambda: follower not in cluster.registered_ids(), ELECTION_WAIT_S, "the registration to expire")
    cluster.wait_for_log(state.controller_id, f"Broker failure callback for {follower}")
    cluster.start_broker(follower)
    after = cluster.wait_registered(follower)
    assert after > before
    log = cluster.wait_for_log(state.controller_id, f"Broker {follower} registered with broker epoch {after}")
    assert f"Newly added brokers: {follower}, deleted brokers: , bounced brokers: , all live brokers: 1,2,3" in log
    assert cluster.controller() == state


def test_sigterm_controller_resigns_and_deregisters_before_its_session_could_expire(cluster: ClusterHarness) -> None:
    # A session timeout far longer than the wait below: only a clean handover can pass.
    cluster.start_brokers(1, 2, 3, session_timeout_ms=30000)
    old = cluster.wait_for_controller()
    assert cluster.brokers[old.controller_id].terminate() == 0

    new = cluster.wait_for_controller(timeout=10, other_than=old.controller_id)
    assert new.epoch == old.epoch + 1
    assert old.controller_id not in cluster.registered_ids()
    log = cluster.log(old.controller_id)
    assert f"Broker {old.controller_id} resigned as the controller of epoch 1 (broker shutting down)" in log
    assert "Deleted /controller, fenced by epoch zk version 1" in log
    assert "shut down completed" in log


def test_paused_controller_is_fenced_by_the_epoch_and_rejoins_as_an_ordinary_broker(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    old = cluster.wait_for_controller()
    zombie = old.controller_id
    first_epoch = cluster.wait_registered(zombie)

    cluster.brokers[zombie].pause()
    new = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=zombie)
    assert new.epoch == old.epoch + 1
    cluster.brokers[zombie].resume()

    # It notices, its write is refused by the check on /controller_epoch, and it resigns.
    log = cluster.wait_for_log(zombie, "refused by the epoch check")
    assert (
        f"the check on /controller_epoch failed: this controller's zk version is {old.epoch_zk_version}, "
        f"ZooKeeper's is {new.epoch_zk_version} (epoch {new.epoch})"
    ) in log
    assert f"Broker {zombie} resigned as the controller of epoch {old.epoch}" in log

    # It registers again under a new session and follows the new controller.
    wait_until(lambda: cluster.wait_registered(zombie) != first_epoch, 30, "the old controller to register again")
    assert cluster.controller() == new
    assert cluster.brokers[zombie].running
    d = cluster.describe(zombie)
    assert (d.controller_id, d.controller_epoch) == (new.controller_id, new.epoch)
    assert [b.id for b in d.brokers] == [1, 2, 3]
    assert len(elected_lines(cluster, zombie)) == 1


def test_expired_session_of_a_running_broker_registers_again_and_the_cluster_converges(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    state = cluster.wait_for_controller()
    follower = min({1, 2, 3} - {state.controller_id})
    before = cluster.wait_registered(follower)

    cluster.expire_session(follower)
    after = wait_until(
        lambda: (epoch := cluster.wait_registered(follower)) != before and epoch, 30, "a new registration"
    )
    assert after > before
    assert cluster.brokers[follower].running
    assert cluster.controller() == state  # a follower's session is no reason for an election
    log = cluster.wait_for_log(state.controller_id, f"Broker {follower} registered with broker epoch {after}")
    assert f"Broker failure callback for {follower}" in log
    assert f"Broker {follower} with broker epoch {before} is gone" in log

    # The controller's own session: another broker takes over, the old one follows.
    cluster.expire_session(state.controller_id)
    new = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, epoch_above=state.epoch)
    wait_until(lambda: cluster.registered_ids() == {1, 2, 3}, 30, "all three brokers registered")
    d = cluster.describe()
    assert (d.controller_id, d.controller_epoch) == (new.controller_id, new.epoch)
    assert cluster.controller() == new


def test_zookeeper_restarted_within_the_session_timeout_causes_no_election(
    private_cluster: ClusterHarness,
) -> None:
    cluster = private_cluster
    state, epochs = start_three(cluster, session_timeout_ms=15000)

    cluster.zookeeper.restart()
    for broker_id in (1, 2, 3):
        cluster.wait_for_log(broker_id, "Reconnected to ZooKeeper with the same session")
    cluster.zk.stop()
    cluster.zk.start()
    assert cluster.controller() == state
    assert {b: cluster.wait_registered(b) for b in (1, 2, 3)} == epochs
    assert sum(len(elected_lines(cluster, b)) for b in (1, 2, 3)) == 1


def test_zookeeper_down_longer_than_the_session_timeout_reelects_and_converges(
    private_cluster: ClusterHarness,
) -> None:
    cluster = private_cluster
    state, epochs = start_three(cluster, session_timeout_ms=3000)

    cluster.zk.stop()
    cluster.zookeeper.stop()
    for broker_id in (1, 2, 3):
        cluster.wait_for_log(broker_id, "treating session", timeout=30)
    cluster.zookeeper.start()
    cluster.zk.start(timeout=15)

    new = cluster.wait_for_controller(timeout=30, epoch_above=state.epoch)
    wait_until(
        lambda: all(cluster.zk.exists(f"/brokers/ids/{b}") and cluster.wait_registered(b) != epochs[b]
                    for b in (1, 2, 3)),
        30,
        "every broker to register again under a new session",
    )
    d = cluster.describe()
    assert (d.controller_id, d.controller_epoch) == (new.controller_id, new.epoch)
    assert [b.id for b in d.brokers] == [1, 2, 3]
    assert cluster.controller() == new


def test_a_controller_reconnected_on_the_same_session_still_sees_new_and_deleted_topics(
    cluster: ClusterHarness,
) -> None:
    """kazoo drops every watch when a connection drops, even if the session lives on: the
    controller must set all of them again, or it never hears of the topics created (CreateTopics
    times out) or deleted after it moved to another ZooKeeper server."""
    state, _ = start_three(cluster, session_timeout_ms=10000)
    controller = state.controller_id
    cluster.proxies[controller].cut()
    cluster.wait_for_log(controller, "Connection dropped")
    cluster.proxies[controller].heal()
    cluster.wait_for_log(controller, "Reconnected to ZooKeeper with the same session")
    assert cluster.controller() == state, "the session lived on: no new election"

    admin = cluster.admin(timeout_s=15)
    created = admin.create_topic("after-reconnect", 2, 3, {})
    assert created.error_code == 0, created.error_message
    wait_until(lambda: all(p.leader > 0 for p in admin.metadata(["after-reconnect"]).topics[0].partitions), 15,
               "leaders for the topic created after the reconnection")
    cluster.wait_for_log(controller, "New topics: [after-reconnect]")
    assert admin.delete_topic("after-reconnect").error_code == 0
    cluster.wait_for_log(controller, "Starting deletion of topic after-reconnect")
