//! The recipes with several concurrent sessions. Each scenario runs twice: against the
//! fake `Sessions` service (fast, always available) and against a real `baton-server`
//! process (the real semantics, once the server serves sessions).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use baton_client::{
    ClientError, CreateMode, ErrorCode, Session, SessionOptions,
    recipes::{Barrier, LeaderElection, Lock, Queue},
};
use tokio::{sync::oneshot, task::JoinSet};

use crate::{
    fake_session::{Cluster, Server},
    server::RealServer,
    wait::{DEADLINE, eventually, within},
};

async fn open(endpoints: &[String]) -> Session {
    let options = SessionOptions { request_timeout: DEADLINE, ..SessionOptions::default() };
    Session::connect(endpoints, options).await.unwrap()
}

async fn fake() -> (Cluster, Server) {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    (cluster, server)
}

/// Waits for every task; a task's panic fails the test with its message.
async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
    let mut results = Vec::new();
    while let Some(done) = within("the recipe's tasks", tasks.join_next()).await {
        results.push(done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    results
}

// ---- lock ------------------------------------------------------------------------

const LOCK_CLIENTS: usize = 8;
const LOCK_ACQUISITIONS: usize = 500;

/// 8 sessions take the lock 500 times in all; each holder increments a counter with a
/// version-checked set, so two holders at once would show as a BadVersion or a lost
/// increment. Fencing tokens grow with every holder.
async fn lock_excludes(endpoints: Vec<String>) {
    let setup = open(&endpoints).await;
    setup.create("/counter", "0", CreateMode::Persistent).await.unwrap();
    let remaining = Arc::new(AtomicUsize::new(LOCK_ACQUISITIONS));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = JoinSet::new();
    for _ in 0..LOCK_CLIENTS {
        let (endpoints, remaining, tokens) = (endpoints.clone(), remaining.clone(), tokens.clone());
        tasks.spawn(async move {
            let session = open(&endpoints).await;
            let lock = Lock::new(&session, "/locks/counter");
            while remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let guard = lock.acquire().await.unwrap();
                let (data, stat) = session.get("/counter").await.unwrap();
                let count: usize = std::str::from_utf8(&data).unwrap().parse().unwrap();
                let set = session.set("/counter", (count + 1).to_string(), stat.version).await;
                assert!(set.is_ok(), "two holders at once: {set:?}");
                tokens.lock().unwrap().push(guard.fencing_token());
                guard.release().await.unwrap();
            }
            session.close().await.unwrap();
        });
    }
    join_all(tasks).await;
    let (data, _) = setup.get("/counter").await.unwrap();
    assert_eq!(data, LOCK_ACQUISITIONS.to_string());
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), LOCK_ACQUISITIONS);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "fencing tokens must grow");
    assert!(setup.children("/locks/counter").await.unwrap().0.is_empty(), "no node left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_excludes_on_the_fake() {
    let (_cluster, server) = fake().await;
    lock_excludes(vec![server.addr.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_excludes_on_the_real_server() {
    let server = RealServer::start().await;
    lock_excludes(server.endpoints()).await;
}

/// A waiter in line behind a holder that is cancelled leaves the line (its node goes),
/// and a holder whose session ends loses the lock to the next in line.
async fn lock_survives_cancelled_waiters_and_dead_holders(endpoints: Vec<String>) {
    let (a, b, c) = (open(&endpoints).await, open(&endpoints).await, open(&endpoints).await);
    let held = Lock::new(&a, "/l").acquire().await.unwrap();
    assert!(Lock::new(&b, "/l").try_acquire().await.unwrap().is_none());
    let cancelled = tokio::spawn({
        let b = b.clone();
        async move { Lock::new(&b, "/l").acquire().await.map(|g| g.fencing_token()) }
    });
    eventually_children(&a, "/l", 2).await;
    cancelled.abort();
    eventually_children(&a, "/l", 1).await;
    let waiter = tokio::spawn({
        let c = c.clone();
        async move { Lock::new(&c, "/l").acquire().await.map(|g| (g.fencing_token(), g)) }
    });
    eventually_children(&a, "/l", 2).await;
    a.close().await.unwrap();
    let (token, guard) = within("the next holder", waiter).await.unwrap().unwrap();
    assert!(token > held.fencing_token());
    drop(held);
    guard.release().await.unwrap();
}

async fn eventually_children(session: &Session, path: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while session.children(path).await.unwrap().0.len() != count {
        assert!(tokio::time::Instant::now() < deadline, "{path} never had {count} children");
        let (_, _, watch) = session.children_watch(path).await.unwrap();
        if session.children(path).await.unwrap().0.len() == count {
            break;
        }
        let _ = within("a child change", watch).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_survives_cancelled_waiters_and_dead_holders_on_the_fake() {
    let (_cluster, server) = fake().await;
    lock_survives_cancelled_waiters_and_dead_holders(vec![server.addr.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_survives_cancelled_waiters_and_dead_holders_on_the_real_server() {
    let server = RealServer::start().await;
    lock_survives_cancelled_waiters_and_dead_holders(server.endpoints()).await;
}

// ---- election ---------------------------------------------------------------------

const CANDIDATES: usize = 5;

/// 5 candidates; leadership passes in volunteering order as each leader's session
/// closes, and an observer always sees exactly the expected leader.
async fn election_passes_leadership_in_order(endpoints: Vec<String>) {
    let observer = LeaderElection::new(&open(&endpoints).await, "/election");
    let led = Arc::new(Mutex::new(Vec::new()));
    let mut step_downs = Vec::new();
    let mut tasks = JoinSet::new();
    for i in 0..CANDIDATES {
        let session = open(&endpoints).await;
        let candidate =
            LeaderElection::new(&session, "/election").volunteer(format!("c{i}")).await.unwrap();
        let (step_down, stepped_down) = oneshot::channel::<()>();
        step_downs.push(step_down);
        let led = led.clone();
        tasks.spawn(async move {
            candidate.wait_for_leadership().await.unwrap();
            assert!(candidate.is_leader().await.unwrap());
            led.lock().unwrap().push(i);
            let _ = stepped_down.await;
            session.close().await.unwrap();
        });
    }
    for (round, step_down) in step_downs.into_iter().enumerate() {
        eventually("the next leader", || led.lock().unwrap().len() == round + 1).await;
        assert_eq!(led.lock().unwrap()[round], round, "leadership out of order");
        let (_, data) = observer.leader().await.unwrap().expect("a leader");
        assert_eq!(data, format!("c{round}"));
        let _ = step_down.send(());
    }
    join_all(tasks).await;
    assert_eq!(*led.lock().unwrap(), (0..CANDIDATES).collect::<Vec<_>>());
    assert_eq!(observer.leader().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_passes_leadership_in_order_on_the_fake() {
    let (_cluster, server) = fake().await;
    election_passes_leadership_in_order(vec![server.addr.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_passes_leadership_in_order_on_the_real_server() {
    let server = RealServer::start().await;
    election_passes_leadership_in_order(server.endpoints()).await;
}

// ---- barrier ----------------------------------------------------------------------

const PARTICIPANTS: usize = 4;

/// Nobody passes `enter` before all 4 have arrived, nobody passes `leave` before all 4
/// have started to leave.
async fn barrier_holds_everyone(endpoints: Vec<String>) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let departing = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..PARTICIPANTS {
        let (endpoints, arrived, departing) =
            (endpoints.clone(), arrived.clone(), departing.clone());
        tasks.spawn(async move {
            let session = open(&endpoints).await;
            let barrier = Barrier::new(&session, "/barriers/round-1", PARTICIPANTS);
            arrived.fetch_add(1, Ordering::SeqCst);
            barrier.enter().await.unwrap();
            assert_eq!(arrived.load(Ordering::SeqCst), PARTICIPANTS, "entered too early");
            departing.fetch_add(1, Ordering::SeqCst);
            barrier.leave().await.unwrap();
            assert_eq!(departing.load(Ordering::SeqCst), PARTICIPANTS, "left too early");
            session.close().await.unwrap();
        });
    }
    join_all(tasks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_holds_everyone_on_the_fake() {
    let (_cluster, server) = fake().await;
    barrier_holds_everyone(vec![server.addr.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_holds_everyone_on_the_real_server() {
    let server = RealServer::start().await;
    barrier_holds_everyone(server.endpoints()).await;
}

// ---- queue ------------------------------------------------------------------------

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const ITEMS_PER_PRODUCER: usize = 50;
const STOP: &str = "stop";

/// 4 producers, 4 blocking consumers: every item is taken exactly once, and each
/// consumer sees each producer's items in the order they were offered.
async fn queue_delivers_each_item_once(endpoints: Vec<String>) {
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        let endpoints = endpoints.clone();
        consumers.spawn(async move {
            let session = open(&endpoints).await;
            let queue = Queue::new(&session, "/queue");
            let mut taken = Vec::new();
            loop {
                let item = String::from_utf8(queue.take().await.unwrap().to_vec()).unwrap();
                if item == STOP {
                    break;
                }
                taken.push(item);
            }
            session.close().await.unwrap();
            taken
        });
    }
    let mut producers = JoinSet::new();
    for p in 0..PRODUCERS {
        let endpoints = endpoints.clone();
        producers.spawn(async move {
            let session = open(&endpoints).await;
            let queue = Queue::new(&session, "/queue");
            for i in 0..ITEMS_PER_PRODUCER {
                queue.offer(format!("p{p}-{i:03}")).await.unwrap();
            }
            session.close().await.unwrap();
        });
    }
    join_all(producers).await;
    // Offered after every item, so a consumer reaches a stop only when no item is left.
    let stopper = open(&endpoints).await;
    for _ in 0..CONSUMERS {
        Queue::new(&stopper, "/queue").offer(STOP).await.unwrap();
    }
    let mut all = Vec::new();
    for taken in join_all(consumers).await {
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        for item in &taken {
            let producer = item.split('-').next().unwrap().to_owned();
            if let Some(before) = last.insert(producer, item.clone()) {
                assert!(before < *item, "{before} taken after {item}");
            }
        }
        all.extend(taken);
    }
    all.sort();
    let mut expected: Vec<String> = (0..PRODUCERS)
        .flat_map(|p| (0..ITEMS_PER_PRODUCER).map(move |i| format!("p{p}-{i:03}")))
        .collect();
    expected.sort();
    assert_eq!(all, expected, "every item exactly once");
    assert_eq!(Queue::new(&stopper, "/queue").poll().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_each_item_once_on_the_fake() {
    let (_cluster, server) = fake().await;
    queue_delivers_each_item_once(vec![server.addr.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delivers_each_item_once_on_the_real_server() {
    let server = RealServer::start().await;
    queue_delivers_each_item_once(server.endpoints()).await;
}

// ---- ConnectionLoss -----------------------------------------------------------------

/// A lock create whose answer is lost finds its own node after the resume instead of
/// queueing a second one (ZooKeeper's protected create).
#[tokio::test]
async fn a_lock_create_whose_answer_was_lost_finds_its_own_node() {
    let (_cluster, server) = fake().await;
    let session = open(std::slice::from_ref(&server.addr)).await;
    server.knobs.lose_sequential_create.store(true, Ordering::SeqCst);
    let guard = within("the acquisition", Lock::new(&session, "/l").acquire()).await.unwrap();
    assert!(!server.knobs.lose_sequential_create.load(Ordering::SeqCst), "the answer was lost");
    let (children, _) = session.children("/l").await.unwrap();
    assert_eq!(children.len(), 1, "one node, not two: {children:?}");
    assert!(guard.path().contains(&format!("{:016x}", session.session_id())));
    guard.release().await.unwrap();
    assert!(session.children("/l").await.unwrap().0.is_empty());
}

/// A create whose answer is lost is reported as ConnectionLoss (it may have happened);
/// the session carries on.
#[tokio::test]
async fn a_lost_answer_is_connection_loss_and_the_write_may_have_happened() {
    let (_cluster, server) = fake().await;
    let session = open(std::slice::from_ref(&server.addr)).await;
    server.knobs.lose_sequential_create.store(true, Ordering::SeqCst);
    let err = session.create("/s-", "", CreateMode::PersistentSequential).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLoss { .. }), "{err:?}");
    session.wait_connected().await.unwrap();
    assert_eq!(session.children("/").await.unwrap().0, ["baton", "s-0000000000"]);
    let is_no_node = |e: &ClientError| e.code() == ErrorCode::NoNode;
    assert!(session.get("/nope").await.is_err_and(|e| is_no_node(&e)));
}
