use super::*;
use crate::request::Submit;

/// Opens the store at `dir` again in this process. sled's flusher thread lets go of the
/// directory's lock a moment after the previous `Store` is dropped, so retry for up to 5 s.
/// (A restarted daemon is a new process: the kernel drops the lock at once.)
#[allow(clippy::disallowed_methods)] // a bounded wait on sled's real background thread
fn reopen(dir: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open(dir) {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn spec(attempts: u32) -> RequestSpec {
    Submit {
        number: "+15551234567".into(),
        app: Some(crate::request::App::Say {
            text: "hello".into(),
            collect: 1,
        }),
        max_attempts: Some(attempts),
        ..Default::default()
    }
    .validate("test")
    .unwrap()
}

fn dial(store: &Store, id: RequestId, now: UnixMillis) -> RequestRecord {
    store
        .transition(id, RequestState::Queued, |r| {
            r.state = RequestState::Dialing;
            r.attempts.push(Attempt::start(
                r.attempts.len() as u32 + 1,
                Some("span1/1".into()),
                now,
            ));
        })
        .unwrap()
}

#[test]
fn due_comes_out_in_time_order_and_respects_not_before() {
    let s = Store::temporary().unwrap();
    let a = s.insert(spec(1), 0, UnixMillis(3_000)).unwrap();
    let b = s.insert(spec(1), 0, UnixMillis(1_000)).unwrap();
    let mut later = spec(1);
    later.not_before = Some(UnixMillis(10_000));
    let c = s.insert(later, 0, UnixMillis(1_000)).unwrap();
    assert_eq!(s.due(UnixMillis(5_000)).unwrap(), vec![b.id, a.id]);
    assert_eq!(s.due(UnixMillis(10_000)).unwrap(), vec![b.id, a.id, c.id]);
    assert_eq!(s.next_due().unwrap(), Some(UnixMillis(1_000)));
}

#[test]
fn transition_is_compare_and_swap() {
    let s = Store::temporary().unwrap();
    let r = s.insert(spec(2), 0, UnixMillis(0)).unwrap();
    dial(&s, r.id, UnixMillis(1));
    // A second dispatcher racing for the same request loses.
    let err = s
        .transition(r.id, RequestState::Queued, |r| {
            r.state = RequestState::Dialing
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                found: "dialing",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        s.due(UnixMillis(u64::MAX)).unwrap().is_empty(),
        "dialing is not due"
    );
    assert!(matches!(
        s.get(RequestId(999)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn requeue_moves_the_due_entry() {
    let s = Store::temporary().unwrap();
    let r = s.insert(spec(3), 0, UnixMillis(0)).unwrap();
    dial(&s, r.id, UnixMillis(1));
    s.transition(r.id, RequestState::Dialing, |r| {
        r.state = RequestState::Queued;
        r.due_at = UnixMillis(300_000);
    })
    .unwrap();
    assert!(s.due(UnixMillis(299_999)).unwrap().is_empty());
    assert_eq!(s.due(UnixMillis(300_000)).unwrap(), vec![r.id]);
}

#[test]
fn records_survive_reopen_and_crash_recovery_marks_lost() {
    let dir = std::env::temp_dir().join(format!("outcall-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (retry, last, done, queued);
    {
        let s = Store::open(&dir).unwrap();
        retry = s.insert(spec(2), 0, UnixMillis(0)).unwrap().id;
        last = s.insert(spec(1), 0, UnixMillis(0)).unwrap().id;
        done = s.insert(spec(1), 0, UnixMillis(0)).unwrap().id;
        queued = s.insert(spec(1), 0, UnixMillis(0)).unwrap().id;
        dial(&s, retry, UnixMillis(5));
        dial(&s, last, UnixMillis(5));
        s.transition(last, RequestState::Dialing, |r| {
            r.state = RequestState::Answered
        })
        .unwrap();
        dial(&s, done, UnixMillis(5));
        s.transition(done, RequestState::Dialing, |r| {
            r.state = RequestState::Completed
        })
        .unwrap();
        s.flush_blocking().unwrap();
        // dropped without any shutdown step, as after kill -9
    }
    let s = reopen(&dir);
    let rec = s.recover(UnixMillis(100)).unwrap();
    assert_eq!(
        rec,
        Recovery {
            requeued: vec![retry],
            lost: vec![last]
        }
    );
    let r = s.get(retry).unwrap();
    assert_eq!(r.state, RequestState::Queued);
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("lost"));
    assert_eq!(r.attempts[0].ended_at, Some(UnixMillis(100)));
    assert_eq!(s.get(last).unwrap().state, RequestState::Lost);
    assert_eq!(
        s.get(done).unwrap().state,
        RequestState::Completed,
        "never dialled again"
    );
    // `queued` has been due since 0; the requeued one since the recovery at 100.
    assert_eq!(s.due(UnixMillis(100)).unwrap(), vec![queued, retry]);
    // Recovery is idempotent.
    assert_eq!(s.recover(UnixMillis(200)).unwrap(), Recovery::default());
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ids_increase_across_reopen() {
    let dir = std::env::temp_dir().join(format!("outcall-store-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = {
        let s = Store::open(&dir).unwrap();
        let id = s.insert(spec(1), 0, UnixMillis(0)).unwrap().id;
        s.flush_blocking().unwrap();
        id
    };
    let s = reopen(&dir);
    let second = s.insert(spec(1), 0, UnixMillis(0)).unwrap().id;
    assert!(second > first, "{second} after {first}");
    assert_eq!(s.get(first).unwrap().id, first);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}
