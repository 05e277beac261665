"""One kazoo session across the loss of the member it is connected to.

Usage: kazoo_failover.py HOST:PORT,HOST:PORT[,...]

The client tries the hosts in the order given (so it lands on the first one that
answers), creates an ephemeral node and sets watches, then prints one line

    connected HOST:PORT SESSION_ID

and waits for someone else to kill that member. It then expects the same session
back on another member: SUSPENDED then CONNECTED, never LOST; the ephemeral node still
there and owned by the session; the watchers set before the loss (kazoo's DataWatch
and ChildrenWatch) seeing changes made after it. Prints `ok ...` and exits 0, or
`FAIL: <why>` and exits 1 (2 on bad usage). Every wait has a deadline.
"""

import sys
import time
import uuid

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

DEADLINE_S = 30.0
SESSION_TIMEOUT_S = 10.0
POLL_S = 0.02


class Failure(Exception):
    pass


def wait_for(condition, what, within_s=DEADLINE_S):
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {within_s:.0f} s waiting for {what}")
        time.sleep(POLL_S)


def expect(condition, message):
    if not condition:
        raise Failure(message)


def peer(client):
    """host:port of the member the client's socket is connected to now."""
    sock = client._connection._socket  # kazoo keeps no public record of it
    host, port = sock.getpeername()[:2]
    return f"{host}:{port}"


def run(hosts):
    states, timeline = [], []
    started = time.monotonic()

    def on_state(state):
        states.append(state)
        timeline.append(f"{time.monotonic() - started:.2f}s {state}")

    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, randomize_hosts=False)
    client.add_listener(on_state)
    try:
        client.start(timeout=DEADLINE_S)
    except Exception as error:  # noqa: BLE001 - nothing else can run
        raise Failure(f"connect: no session with {hosts}: {error!r}") from error
    root = "/failover-" + uuid.uuid4().hex[:12]
    watched, ephemeral = f"{root}/watched", f"{root}/eph"
    client.create(watched, b"before", makepath=True)
    client.create(ephemeral, b"mine", ephemeral=True)
    # kazoo keeps no one-shot watch over a connection loss (it hands each one an event
    # of type NONE); its DataWatch and ChildrenWatch set theirs again once reconnected.
    one_shot = []
    client.get(watched, watch=one_shot.append)
    data_seen, children_seen, eph_seen = [], [], []
    DataWatch(client, watched, lambda data, stat: data_seen.append(data))
    ChildrenWatch(client, root, lambda children: children_seen.append(sorted(children)))
    DataWatch(client, ephemeral, lambda data, stat: eph_seen.append(data))
    wait_for(lambda: data_seen and children_seen and eph_seen, "the watchers' first calls")
    watchers = (one_shot, data_seen, children_seen, eph_seen)
    session_id = client.client_id[0]
    first_peer = peer(client)
    print(f"connected {first_peer} {session_id:#x}", flush=True)

    wait_for(lambda: KazooState.SUSPENDED in states, "SUSPENDED once the member is gone")
    wait_for(
        lambda: states[-1] == KazooState.CONNECTED or KazooState.LOST in states,
        "CONNECTED again",
    )
    expect(KazooState.LOST not in states, f"the session was lost: {timeline}")
    try:
        after_the_loss(client, hosts, session_id, first_peer, root, watchers)
    except KazooException as error:
        raise Failure(f"{error!r} after the reconnect; states: {timeline}") from error
    expect(KazooState.LOST not in states, f"the session was lost: {timeline}")
    names = [str(s) for s in states]
    client.stop()
    client.close()
    print(f"ok: session {session_id:#x} kept; states {names}")


def after_the_loss(client, hosts, session_id, first_peer, root, watchers):
    watched, ephemeral = f"{root}/watched", f"{root}/eph"
    one_shot, data_seen, children_seen, eph_seen = watchers
    expect(client.client_id[0] == session_id, "a different session after the reconnect")
    # A follower may take the session back before it notices its leader is gone; it
    # then drops the connection and the client resumes again elsewhere: a call in
    # flight meanwhile gets ConnectionLoss, which kazoo's retry waits out (as an
    # application does), on the same session.
    stat = client.retry(client.exists, ephemeral)
    expect(client.client_id[0] == session_id, "a different session after the reconnect")
    second_peer = peer(client)
    expect(second_peer != first_peer, f"reconnected to the killed member {second_peer}")
    expect(stat is not None, "the ephemeral node is gone after the reconnect")
    expect(stat.ephemeralOwner == session_id, f"the ephemeral's owner {stat.ephemeralOwner:#x}")
    # kazoo hands the NONE event to the one-shot watcher on its event thread, maybe
    # after the CONNECTED state: wait for it.
    try:
        wait_for(lambda: [e.type for e in one_shot] == ["NONE"], "the one-shot watch's event")
    except Failure as error:
        raise Failure(f"the one-shot watch got {one_shot}") from error
    expect(eph_seen[-1] == b"mine", f"the ephemeral's watcher saw {eph_seen}")

    # Changes by another session, on whichever member it finds.
    other = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S)
    other.start(timeout=DEADLINE_S)
    try:
        other.retry(other.set, watched, b"after")
        other.retry(other.create, f"{root}/new", b"")
        wait_for(lambda: data_seen[-1] == b"after", "the data watch to see the change")
        wait_for(
            lambda: children_seen[-1] == ["eph", "new", "watched"],
            "the children watch to see the new child",
        )
        client.retry(client.delete, ephemeral)
        wait_for(lambda: eph_seen[-1] is None, "the ephemeral's watch to see its delete")
        expect(client.retry(client.get, watched)[0] == b"after", "the client reads the change")
        client.retry(client.delete, root, recursive=True)
    finally:
        other.stop()
        other.close()
    print(f"moved {first_peer} -> {second_peer}", flush=True)


def main(argv):
    if len(argv) != 2 or "," not in argv[1]:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        run(argv[1])
    except Failure as failure:
        print(f"FAIL: {failure}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
