//! The durable store: requests in sled.
//!
//! Two trees: `requests` maps a big-endian id to the JSON [`RequestRecord`]; `due` indexes the
//! queued requests by `due_at ++ id` (both big-endian), so a range scan yields them in time
//! order. Every change is one sled transaction over both trees, and [`Store::transition`] is a
//! compare-and-swap on the state: a crash leaves each request in exactly one known state.
//! Callers acknowledge a submission only after [`Store::flush`] returns.

use crate::request::{Attempt, HungUpBy, RequestId, RequestRecord, RequestSpec, RequestState};
use crate::time::UnixMillis;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::Path;

/// A store error. Each names the request or the path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (I/O, corruption detected by sled).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// The store directory could not be opened.
    #[error("store {path}: {source}")]
    Open {
        /// The directory.
        path: String,
        /// sled's error.
        source: sled::Error,
    },
    /// A record could not be decoded.
    #[error("store: request {id}: undecodable record: {message}")]
    Corrupt {
        /// The request.
        id: RequestId,
        /// The decoder's message.
        message: String,
    },
    /// No such request.
    #[error("no request {0}")]
    NotFound(RequestId),
    /// The request was not in the expected state (compare-and-swap lost).
    #[error("request {id} is {found}, not {expected}")]
    Conflict {
        /// The request.
        id: RequestId,
        /// The state the caller expected.
        expected: &'static str,
        /// The state found.
        found: &'static str,
    },
}

/// What [`Store::recover`] did after a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Requests whose interrupted attempt was marked lost and that were queued again.
    pub requeued: Vec<RequestId>,
    /// Requests whose interrupted attempt was their last: now final `lost`.
    pub lost: Vec<RequestId>,
}

/// The request store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    requests: sled::Tree,
    due: sled::Tree,
}

fn due_key(at: UnixMillis, id: RequestId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&at.0.to_be_bytes());
    k[8..].copy_from_slice(&id.0.to_be_bytes());
    k
}

fn decode(id: RequestId, bytes: &[u8]) -> Result<RequestRecord, StoreError> {
    let r: RequestRecord = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        id,
        message: e.to_string(),
    })?;
    if r.v != RequestRecord::VERSION {
        return Err(StoreError::Corrupt {
            id,
            message: format!("record version {}", r.v),
        });
    }
    Ok(r)
}

fn encode(r: &RequestRecord) -> Vec<u8> {
    serde_json::to_vec(r).expect("a RequestRecord always serialises")
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Self::from_db(db)
    }

    /// A store in a temporary directory, removed on drop (tests).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Store {
            requests: db.open_tree("requests")?,
            due: db.open_tree("due")?,
            db,
        })
    }

    /// Writes a new queued request. Durable only after [`Store::flush`].
    pub fn insert(
        &self,
        spec: RequestSpec,
        uid: u32,
        now: UnixMillis,
    ) -> Result<RequestRecord, StoreError> {
        // generate_id is monotonic across restarts (sled reserves ids in persisted batches).
        let id = RequestId(self.db.generate_id()? + 1);
        let rec = RequestRecord::new(id, spec, uid, now);
        let bytes = encode(&rec);
        (&self.requests, &self.due)
            .transaction(|(r, d)| {
                r.insert(&id.0.to_be_bytes(), bytes.as_slice())?;
                d.insert(&due_key(rec.due_at, id), &[])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(flatten)?;
        Ok(rec)
    }

    /// Flushes every write so far to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Flushes synchronously (shutdown, tests).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Reads a request.
    pub fn get(&self, id: RequestId) -> Result<RequestRecord, StoreError> {
        let bytes = self
            .requests
            .get(id.0.to_be_bytes())?
            .ok_or(StoreError::NotFound(id))?;
        decode(id, &bytes)
    }

    /// Changes a request from state `from` (compared by name) with `change`, atomically with
    /// its `due` index entry. Fails with [`StoreError::Conflict`] if the state is not `from`.
    pub fn transition(
        &self,
        id: RequestId,
        from: RequestState,
        change: impl Fn(&mut RequestRecord),
    ) -> Result<RequestRecord, StoreError> {
        let key = id.0.to_be_bytes();
        (&self.requests, &self.due)
            .transaction(|(r, d)| {
                let old = r.get(key)?.ok_or(ConflictableTransactionError::Abort(
                    StoreError::NotFound(id),
                ))?;
                let old = decode(id, &old).map_err(ConflictableTransactionError::Abort)?;
                if old.state.name() != from.name() {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                        id,
                        expected: from.name(),
                        found: old.state.name(),
                    }));
                }
                let mut new = old.clone();
                change(&mut new);
                if old.state == RequestState::Queued {
                    d.remove(&due_key(old.due_at, id))?;
                }
                if new.state == RequestState::Queued {
                    d.insert(&due_key(new.due_at, id), &[])?;
                }
                r.insert(&key, encode(&new))?;
                Ok(new)
            })
            .map_err(flatten)
    }

    /// Queued requests due at or before `until`, earliest first.
    pub fn due(&self, until: UnixMillis) -> Result<Vec<RequestId>, StoreError> {
        let end = due_key(until, RequestId(u64::MAX));
        self.due
            .range(..=end)
            .keys()
            .map(|k| {
                let k = k?;
                Ok(RequestId(u64::from_be_bytes(
                    k[8..16].try_into().expect("16-byte key"),
                )))
            })
            .collect()
    }

    /// The earliest `due_at` of any queued request.
    pub fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self
            .due
            .first()?
            .map(|(k, _)| UnixMillis(u64::from_be_bytes(k[..8].try_into().expect("16-byte key")))))
    }

    /// Every request, oldest first.
    pub fn all(&self) -> impl Iterator<Item = Result<RequestRecord, StoreError>> + '_ {
        self.requests.iter().map(|kv| {
            let (k, v) = kv?;
            let id = RequestId(u64::from_be_bytes(
                k.as_ref().try_into().expect("8-byte key"),
            ));
            decode(id, &v)
        })
    }

    /// After a restart: every request caught in a call (dialing, ringing, answered) gets its
    /// last attempt closed as `lost` and is queued again at `now` if attempts remain, or ends
    /// `lost`. Queued and final requests are untouched.
    pub fn recover(&self, now: UnixMillis) -> Result<Recovery, StoreError> {
        let mut out = Recovery::default();
        let interrupted: Vec<RequestRecord> = self
            .all()
            .filter(|r| r.as_ref().map_or(true, |r| r.state.in_call()))
            .collect::<Result<_, _>>()?;
        for rec in interrupted {
            let new = self.transition(rec.id, rec.state, |r| {
                close_lost(r.attempts.last_mut(), now);
                r.updated_at = now;
                if r.attempts_left() > 0 {
                    r.state = RequestState::Queued;
                    r.due_at = now;
                } else {
                    r.state = RequestState::Lost;
                }
            })?;
            if new.state == RequestState::Queued {
                out.requeued.push(new.id);
            } else {
                out.lost.push(new.id);
            }
        }
        self.db.flush()?;
        Ok(out)
    }
}

fn close_lost(a: Option<&mut Attempt>, now: UnixMillis) {
    if let Some(a) = a {
        if a.outcome.is_none() {
            a.outcome = Some("lost".into());
            a.ended_at = Some(now);
            a.hung_up_by = Some(HungUpBy::Unknown);
        }
    }
}

fn flatten<T: Into<StoreError>>(e: TransactionError<T>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e.into(),
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

#[cfg(test)]
mod tests;
