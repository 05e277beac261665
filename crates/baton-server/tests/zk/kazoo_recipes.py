"""kazoo's recipes against a ZooKeeper-protocol ensemble, with several clients.

Usage: kazoo_recipes.py HOST:PORT[,HOST:PORT...]

Every check runs against a fresh subtree of its own and uses clients spread over the
given hosts (client i tries the hosts starting with the i-th), so a recipe's parties sit
on different members; a client that reads what another wrote syncs first (ZooKeeper
promises one client its own writes, not another's). Each check prints `ok <name>` or
`FAIL <name>: <why>`; the script exits 1 when one failed, 2 on bad usage. Waiting is
for a condition with a deadline.
"""

import os
import sys
import threading
import time
import traceback
import uuid

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

# Generous for anything a healthy ensemble does at once.
DEADLINE_S = 20.0
SESSION_TIMEOUT_S = 10.0
POLL_S = 0.02


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def expect_eq(got, want, what):
    if got != want:
        raise Failure(f"{what}: expected {want!r}, got {got!r}")


def wait_for(condition, what, within_s=DEADLINE_S):
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {within_s:.0f} s waiting for {what}")
        time.sleep(POLL_S)


class Env:
    """The hosts, one subtree per check, and every client it started (closed at the end)."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.root = "/kazoo-" + uuid.uuid4().hex[:12]
        self.clients = []

    def client(self, index=0):
        n = len(self.hosts)
        rotated = [self.hosts[(index + i) % n] for i in range(n)]
        client = KazooClient(
            hosts=",".join(rotated), timeout=SESSION_TIMEOUT_S, randomize_hosts=False
        )
        client.start(timeout=DEADLINE_S)
        self.clients.append(client)
        return client

    def clients_n(self, n):
        return [self.client(i) for i in range(n)]

    def path(self, name):
        return f"{self.root}/{name}"

    def close(self):
        for client in self.clients:
            try:
                client.stop()
                client.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


def run_threads(targets):
    """Runs each callable in a thread; re-raises the first failure after all ended."""
    errors = []

    def wrap(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=wrap, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    expect(not any(t.is_alive() for t in threads), "a worker thread did not finish in time")
    if errors:
        raise errors[0]


def check_lock(env):
    clients = env.clients_n(3)
    path, counter = env.path("lock"), env.path("lock-counter")
    clients[0].create(counter, b"0", makepath=True)
    rounds = 5
    inside = [0]
    most_inside = [0]
    guard = threading.Lock()

    def contend(i):
        lock = Lock(clients[i], path, identifier=f"client-{i}")
        for _ in range(rounds):
            expect(lock.acquire(timeout=DEADLINE_S), f"client-{i} never got the lock")
            try:
                with guard:
                    inside[0] += 1
                    most_inside[0] = max(most_inside[0], inside[0])
                # A read-modify-write with no version: only mutual exclusion (and the
                # holder seeing its predecessor's write) keeps every increment.
                value, _ = clients[i].get(counter)
                clients[i].set(counter, str(int(value) + 1).encode())
                with guard:
                    inside[0] -= 1
            finally:
                lock.release()

    run_threads([lambda i=i: contend(i) for i in range(3)])
    expect_eq(most_inside[0], 1, "most lock holders at once")
    clients[1].sync(counter)  # another member may not have applied the last set yet
    value, _ = clients[1].get(counter)
    expect_eq(int(value), 3 * rounds, "the counter incremented under the lock")
    expect_eq(Lock(clients[2], path).contenders(), [], "contenders once all released")


def check_election(env):
    clients = env.clients_n(3)
    path = env.path("election")
    led = []
    leading = [0]
    guard = threading.Lock()
    contenders_seen = []

    def lead(i, election):
        with guard:
            leading[0] += 1
            expect_eq(leading[0], 1, "leaders at once")
            led.append(f"node-{i}")
        contenders_seen.append(election.contenders())
        with guard:
            leading[0] -= 1

    def run(i):
        election = Election(clients[i], path, identifier=f"node-{i}")
        election.run(lead, i, election)

    run_threads([lambda i=i: run(i) for i in range(3)])
    expect_eq(sorted(led), ["node-0", "node-1", "node-2"], "who led")
    for contenders in contenders_seen:
        expect(len(contenders) >= 1, f"the leader sees itself among {contenders}")
    expect_eq(Election(clients[0], path).contenders(), [], "contenders after all ran")


def check_queue(env):
    producer, consumer = env.clients_n(2)
    path = env.path("queue")
    queue_in, queue_out = Queue(producer, path), Queue(consumer, path)
    for item in (b"one", b"two", b"three"):
        queue_in.put(item)
    queue_in.put(b"urgent", priority=10)
    queue_in.put(b"later", priority=200)
    wait_for(lambda: len(queue_out) == 5, "five items seen by the consumer")
    got = [queue_out.get() for _ in range(5)]
    expect_eq(got, [b"urgent", b"one", b"two", b"three", b"later"], "queue order")
    expect_eq(queue_out.get(), None, "get from an empty queue")


def check_locking_queue(env):
    producer, first, second = env.clients_n(3)
    path = env.path("locking-queue")
    LockingQueue(producer, path).put_all([b"a", b"b"])
    q1, q2 = LockingQueue(first, path), LockingQueue(second, path)
    expect_eq(q1.get(timeout=DEADLINE_S), b"a", "first consumer's item")
    expect(q1.holds_lock(), "the first consumer holds its item's lock")
    expect_eq(q2.get(timeout=DEADLINE_S), b"b", "second consumer skips the locked item")
    expect(q2.consume(), "the second consumer consumes its item")
    expect(q1.release(), "the first consumer releases its item")
    expect_eq(q2.get(timeout=DEADLINE_S), b"a", "a released item is taken again")
    expect(q2.consume(), "the released item is consumed")
    first.sync(path)  # the consume went through another member
    expect_eq(len(q1), 0, "queue length at the end")
    expect_eq(q1.get(timeout=0.2), None, "get from an empty locking queue")


def check_barrier(env):
    owner, w1, w2 = env.clients_n(3)
    path = env.path("barrier")
    Barrier(owner, path).create()
    w1.sync(path)  # the create went through another member
    expect(not Barrier(w1, path).wait(timeout=0.2), "wait returns False while the barrier is up")
    passed = []

    def waiter(client):
        expect(Barrier(client, path).wait(timeout=DEADLINE_S), "wait returns once removed")
        passed.append(client)

    threads = [threading.Thread(target=waiter, args=(c,), daemon=True) for c in (w1, w2)]
    for thread in threads:
        thread.start()
    expect_eq(passed, [], "waiters passed before the barrier was removed")
    expect(Barrier(owner, path).remove(), "the barrier is removed")
    wait_for(lambda: len(passed) == 2, "both waiters to pass")


def check_double_barrier(env):
    clients = env.clients_n(3)
    path = env.path("double-barrier")
    entering = [0]
    entered_with = []
    guard = threading.Lock()

    def party(i):
        barrier = DoubleBarrier(clients[i], path, 3, identifier=f"p{i}")
        with guard:
            entering[0] += 1
        barrier.enter()
        with guard:
            entered_with.append(entering[0])
        barrier.leave()

    run_threads([lambda i=i: party(i) for i in range(3)])
    expect_eq(entered_with, [3, 3, 3], "parties that had arrived when each one entered")
    wait_for(lambda: not clients[0].get_children(path), "the double barrier to be empty")


def check_counter(env):
    clients = env.clients_n(3)
    path = env.path("counter")
    increments = 20

    def bump(i):
        counter = Counter(clients[i], path)
        for _ in range(increments):
            counter += 1

    run_threads([lambda i=i: bump(i) for i in range(3)])
    counter = Counter(clients[0], path)
    clients[0].sync(path)
    expect_eq(counter.value, 3 * increments, "concurrent increments")
    counter -= 5
    expect_eq(counter.value, 3 * increments - 5, "after a decrement")
    expect_eq(counter.pre_value, 3 * increments, "pre_value")
    expect_eq(counter.post_value, 3 * increments - 5, "post_value")


def check_party(env):
    a, b, observer = env.clients_n(3)
    for kind in (Party, ShallowParty):
        path = env.path(kind.__name__.lower())
        pa, pb = kind(a, path, "alice"), kind(b, path, "bob")
        pa.join()
        pb.join()
        view = kind(observer, path)
        wait_for(lambda: len(view) == 2, f"{kind.__name__}: two members")
        expect_eq(sorted(view), ["alice", "bob"], f"{kind.__name__} members")
        pb.leave()
        wait_for(lambda: len(view) == 1, f"{kind.__name__}: one member after a leave")
        expect_eq(list(view), ["alice"], f"{kind.__name__} members after bob left")
        a.stop()  # a closed session takes its ephemeral membership with it
        wait_for(lambda: len(view) == 0, f"{kind.__name__}: empty after alice's session ended")
        a.start(timeout=DEADLINE_S)


def check_tree_cache(env):
    watcher, writer = env.clients_n(2)
    path = env.path("tree")
    writer.create(f"{path}/a", b"a0", makepath=True)
    writer.create(f"{path}/a/x", b"x0")
    watcher.sync(path)  # the writer is on another member
    events = []
    cache = TreeCache(watcher, path)
    cache.listen(events.append)
    cache.start()

    def seen(kind, node=None):
        return any(
            e.event_type == kind and (node is None or e.event_data.path == node) for e in events
        )

    try:
        wait_for(lambda: seen(TreeEvent.INITIALIZED), "INITIALIZED")
        expect_eq(cache.get_data(f"{path}/a").data, b"a0", "cached /a")
        expect_eq(cache.get_data(f"{path}/a/x").data, b"x0", "cached /a/x")
        expect_eq(cache.get_children(path), frozenset(["a"]), "cached children")
        for node in (path, f"{path}/a", f"{path}/a/x"):
            expect(seen(TreeEvent.NODE_ADDED, node), f"initial NODE_ADDED for {node}")

        writer.create(f"{path}/b", b"b0")
        wait_for(lambda: seen(TreeEvent.NODE_ADDED, f"{path}/b"), "NODE_ADDED for /b")
        writer.create(f"{path}/a/x/deep", b"d0")
        wait_for(lambda: seen(TreeEvent.NODE_ADDED, f"{path}/a/x/deep"), "NODE_ADDED, deep")
        writer.set(f"{path}/a", b"a1")
        wait_for(lambda: seen(TreeEvent.NODE_UPDATED, f"{path}/a"), "NODE_UPDATED for /a")
        wait_for(lambda: cache.get_data(f"{path}/a").data == b"a1", "the cache's new /a")
        expect_eq(cache.get_data(f"{path}/a").stat.version, 1, "cached /a version")
        writer.delete(f"{path}/b")
        wait_for(lambda: seen(TreeEvent.NODE_REMOVED, f"{path}/b"), "NODE_REMOVED for /b")
        expect_eq(cache.get_data(f"{path}/b"), None, "the cache forgot /b")
        writer.delete(f"{path}/a", recursive=True)
        for node in (f"{path}/a", f"{path}/a/x", f"{path}/a/x/deep"):
            wait_for(lambda n=node: seen(TreeEvent.NODE_REMOVED, n), f"NODE_REMOVED for {node}")
        expect_eq(cache.get_children(path), frozenset(), "children after the deletes")
    finally:
        cache.close()


def check_watchers(env):
    watcher, writer = env.clients_n(2)
    path = env.path("watched")
    writer.create(path, b"v0", makepath=True)
    watcher.sync(path)  # the writer is on another member
    data_seen, children_seen = [], []

    @DataWatch(watcher, path)
    def on_data(data, stat):
        data_seen.append((data, stat.version if stat else None))

    @ChildrenWatch(watcher, path)
    def on_children(children):
        children_seen.append(sorted(children))

    wait_for(lambda: data_seen == [(b"v0", 0)], "DataWatch's first call")
    wait_for(lambda: children_seen == [[]], "ChildrenWatch's first call")
    writer.set(path, b"v1")
    wait_for(lambda: data_seen[-1] == (b"v1", 1), "DataWatch after a set")
    writer.create(f"{path}/c1")
    wait_for(lambda: children_seen[-1] == ["c1"], "ChildrenWatch after a create")
    writer.create(f"{path}/c2")
    wait_for(lambda: children_seen[-1] == ["c1", "c2"], "ChildrenWatch after a second create")
    writer.delete(f"{path}/c1")
    wait_for(lambda: children_seen[-1] == ["c2"], "ChildrenWatch after a delete")
    writer.delete(path, recursive=True)
    wait_for(lambda: data_seen[-1] == (None, None), "DataWatch after the node's delete")

    fired = []
    one_shot = env.path("one-shot")
    expect_eq(watcher.exists(one_shot, watch=fired.append), None, "exists before the create")
    writer.create(one_shot, b"")
    wait_for(lambda: len(fired) == 1, "the exists watch")
    expect_eq((fired[0].type, fired[0].path), ("CREATED", one_shot), "the exists watch event")
    writer.set(one_shot, b"again")
    watcher.sync(one_shot)
    expect_eq(watcher.get(one_shot)[0], b"again", "read after the second change")
    expect_eq(len(fired), 1, "a one-shot watch fired once")


def check_ephemeral_sequential(env):
    owner, observer = env.clients_n(2)
    parent = env.path("seq")
    observer.create(parent, makepath=True)
    first = owner.create(f"{parent}/item-", b"", sequence=True)
    second = owner.create(f"{parent}/item-", b"", sequence=True)
    ephemeral = owner.create(f"{parent}/eph", b"e", ephemeral=True)
    eseq = owner.create(f"{parent}/eseq-", b"", ephemeral=True, sequence=True)
    for name in (first, second, eseq):
        suffix = name.rsplit("-", 1)[1]
        expect(len(suffix) == 10 and suffix.isdigit(), f"ten-digit sequence suffix: {name}")
    expect(int(second[-10:]) > int(first[-10:]), f"increasing sequence: {first}, {second}")
    expect(int(eseq[-10:]) > int(second[-10:]), f"the parent's one counter: {second}, {eseq}")
    session_id = owner.client_id[0]
    observer.sync(parent)
    for node in (ephemeral, eseq):
        stat = observer.exists(node)
        expect(stat is not None, f"{node} seen by another client")
        expect_eq(stat.ephemeralOwner, session_id, f"{node}'s ephemeralOwner")
    expect_eq(observer.exists(first).ephemeralOwner, 0, "a persistent node's ephemeralOwner")
    try:
        owner.create(f"{ephemeral}/child", b"")
        raise Failure("a child of an ephemeral node was created")
    except NoChildrenForEphemeralsError:
        pass
    try:
        owner.create(ephemeral, b"")
        raise Failure("an existing node was created again")
    except NodeExistsError:
        pass
    owner.stop()
    wait_for(
        lambda: observer.exists(ephemeral) is None and observer.exists(eseq) is None,
        "the ephemerals to go with their session",
    )
    expect(observer.exists(first) is not None, "the persistent sequential node stays")
    owner.start(timeout=DEADLINE_S)


def check_transactions(env):
    client, observer = env.clients_n(2)
    base = env.path("txn")
    client.create(base, b"", makepath=True)
    tx = client.transaction()
    tx.create(f"{base}/a", b"1")
    tx.create(f"{base}/b", b"2")
    tx.set_data(f"{base}/a", b"1b")
    tx.check(f"{base}/b", 0)
    results = tx.commit()
    expect_eq(len(results), 4, f"results of the committed transaction {results!r}")
    expect_eq(results[:2], [f"{base}/a", f"{base}/b"], "created paths")
    expect_eq(results[2].version, 1, "set_data's stat")
    expect_eq(results[3], True, "check's result")
    observer.sync(base)
    expect_eq(observer.get(f"{base}/a")[0], b"1b", "the transaction's write seen elsewhere")

    tx = client.transaction()
    tx.create(f"{base}/c", b"3")
    tx.check(f"{base}/a", 7)
    tx.delete(f"{base}/b")
    results = tx.commit()
    kinds = [type(r) for r in results]
    expect_eq(
        kinds,
        [RolledBackError, BadVersionError, RuntimeInconsistency],
        f"per-op results of a failed transaction {results!r}",
    )
    observer.sync(base)
    expect_eq(observer.exists(f"{base}/c"), None, "a failed transaction's create")
    expect(observer.exists(f"{base}/b") is not None, "a failed transaction's delete")

    tx = client.transaction()
    tx.delete(f"{base}/missing")
    tx.create(f"{base}/d", b"")
    results = tx.commit()
    expect_eq(
        [type(r) for r in results],
        [NoNodeError, RuntimeInconsistency],
        f"per-op results when the first op fails {results!r}",
    )

    tx = client.transaction()
    tx.delete(f"{base}/a", version=1)
    tx.delete(f"{base}/b")
    tx.create(f"{base}/e", b"", ephemeral=True)
    results = tx.commit()
    expect_eq(results[:2], [True, True], "deletes in a transaction")
    observer.sync(base)
    expect_eq(observer.exists(f"{base}/e").ephemeralOwner, client.client_id[0], "ephemeral")
    expect_eq(sorted(observer.get_children(base)), ["e"], "children after the transaction")


def check_session_states(env):
    client = KazooClient(hosts=",".join(env.hosts), timeout=SESSION_TIMEOUT_S)
    states = []
    client.add_listener(states.append)
    client.start(timeout=DEADLINE_S)
    env.clients.append(client)
    try:
        expect(client.connected, "connected after start")
        expect_eq(client.state, KazooState.CONNECTED, "state after start")
        wait_for(lambda: states == [KazooState.CONNECTED], "the CONNECTED callback")
        session_id, password = client.client_id
        expect(session_id != 0, "a session id")
        expect_eq(len(password), 16, "session password length")
        expect(client.client_state == "CONNECTED", f"client_state {client.client_state}")
        client.stop()
        wait_for(lambda: states[-1] == KazooState.LOST, "LOST after stop")
        expect_eq(states, [KazooState.CONNECTED, KazooState.LOST], "states over a session")
        # A new session after a stop.
        client.start(timeout=DEADLINE_S)
        wait_for(lambda: states[-1] == KazooState.CONNECTED, "CONNECTED after a new start")
        expect(client.client_id[0] != session_id, "a stopped session is not resumed")
    finally:
        client.remove_listener(states.append)


CHECKS = [
    check_lock,
    check_election,
    check_queue,
    check_locking_queue,
    check_barrier,
    check_double_barrier,
    check_counter,
    check_party,
    check_tree_cache,
    check_watchers,
    check_ephemeral_sequential,
    check_transactions,
    check_session_states,
]


def main(argv):
    if len(argv) != 2 or not argv[1]:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    hosts = argv[1].split(",")
    # ONLY=lock,queue runs some checks (by hand, when chasing one).
    only = {name for name in os.environ.get("ONLY", "").split(",") if name}
    try:
        probe = KazooClient(hosts=",".join(hosts), timeout=SESSION_TIMEOUT_S)
        probe.start(timeout=DEADLINE_S)
    except Exception as error:  # noqa: BLE001 - nothing else can run
        print(f"FAIL connect: no session with {argv[1]}: {error!r}", flush=True)
        return 1
    failed = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        if only and name not in only:
            continue
        env = Env(hosts)
        started = time.monotonic()
        try:
            probe.ensure_path(env.root)
            check(env)
            print(f"ok {name} ({time.monotonic() - started:.1f} s)", flush=True)
        except Failure as failure:
            failed.append(name)
            print(f"FAIL {name}: {failure}", flush=True)
        except Exception:  # noqa: BLE001 - an unexpected error fails this check only
            failed.append(name)
            print(f"FAIL {name}: unexpected error\n{traceback.format_exc()}", flush=True)
        finally:
            env.close()
            probe.delete(env.root, recursive=True)
    probe.stop()
    probe.close()
    if failed:
        print(f"{len(failed)} of {len(CHECKS)} checks failed: {', '.join(failed)}", flush=True)
        return 1
    print(f"all {len(CHECKS)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
