//! The control-socket listener: accepts connections, checks the peer's credentials
//! (SO_PEERCRED), reads size-capped lines and passes commands to a [`Handler`].
//!
//! It holds no daemon state of its own. Bad input gets an error reply and the connection goes
//! on; a peer that is not allowed gets one `forbidden` reply and is disconnected.

use super::proto::{self, Command, ErrorCode, Event, Reply, MAX_LINE};
use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Semaphore};
use tracing::{debug, info, warn};

/// The most connections served at once; more get an `unavailable` reply.
pub const MAX_CONNECTIONS: usize = 64;

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Process id, when the kernel reports one.
    pub pid: Option<i32>,
    /// Supplementary groups (from /proc/PID/status), when readable.
    pub groups: Vec<u32>,
}

/// Which peers may use the socket. Root and the daemon's own uid always may.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Allowed uids.
    pub uids: Vec<u32>,
    /// Allowed gids (primary or supplementary).
    pub gids: Vec<u32>,
    /// The daemon's own uid.
    pub own_uid: u32,
}

impl Access {
    /// Whether `peer` may send commands.
    pub fn allows(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || peer.uid == self.own_uid
            || self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
            || peer.groups.iter().any(|g| self.gids.contains(g))
    }
}

/// What the daemon does with a command.
pub trait Handler: Send + Sync + 'static {
    /// Executes one command for `peer` and returns the reply line.
    fn handle(&self, peer: &Peer, cmd: Command) -> impl Future<Output = Reply> + Send;
    /// A receiver of live events for `watch`.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// Binds the socket at `path` with `mode` (0660): an existing *socket* there is a stale one and
/// is removed; any other file is left alone and binding fails naming it.
pub fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket: not removing it",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Serves connections until `shutdown` completes. `access` is read per connection, so a
/// reload takes effect for the next one.
pub async fn serve<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    access: Arc<RwLock<Access>>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!("control socket accept: {e}");
                    continue;
                }
            },
        };
        let (handler, access) = (handler.clone(), access.clone());
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let access = access.read().expect("access lock").clone();
                    if let Err(e) = connection(stream, &*handler, &access).await {
                        debug!("control connection ended: {e}");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut s = stream;
                    let msg = format!("more than {MAX_CONNECTIONS} connections: try again");
                    let _ = write_reply(&mut s, &Reply::err(ErrorCode::Unavailable, msg)).await;
                });
            }
        }
    }
}

fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid();
    let groups = pid.map(supplementary_groups).unwrap_or_default();
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid,
        groups,
    })
}

/// The `Groups:` line of /proc/PID/status (empty if unreadable).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

async fn write_reply<W: AsyncWriteExt + Unpin>(w: &mut W, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).expect("replies serialise");
    line.push(b'\n');
    w.write_all(&line).await
}

/// One line read with a cap.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without its newline) in the buffer.
    Complete,
    /// The line was longer than the cap; it was read and discarded up to its newline.
    TooLong(usize),
    /// End of stream.
    Eof,
}

/// Reads one `\n`-terminated line into `buf` (cleared first), never holding more than `max`
/// bytes of it.
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if total == 0 {
                Line::Eof
            } else if total > max {
                Line::TooLong(total)
            } else {
                Line::Complete
            });
        }
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        total += chunk.len();
        if total <= max {
            buf.extend_from_slice(chunk);
        } else {
            buf.clear();
        }
        let used = done.unwrap_or(avail.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if total > max {
                Line::TooLong(total)
            } else {
                Line::Complete
            });
        }
    }
}

async fn connection<H: Handler>(
    stream: UnixStream,
    handler: &H,
    access: &Access,
) -> io::Result<()> {
    let peer = peer_of(&stream)?;
    let (rd, mut wr) = stream.into_split();
    if !access.allows(&peer) {
        warn!(uid = peer.uid, gid = peer.gid, pid = ?peer.pid, "control socket: peer not allowed");
        let msg = format!(
            "uid {} / gid {} may not use this socket (see [daemon] allowed-uids, allowed-gids)",
            peer.uid, peer.gid
        );
        return write_reply(&mut wr, &Reply::err(ErrorCode::Forbidden, msg)).await;
    }
    debug!(uid = peer.uid, pid = ?peer.pid, "control connection");
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        let reply = match read_line_capped(&mut rd, &mut buf, MAX_LINE).await? {
            Line::Eof => return Ok(()),
            Line::TooLong(n) => {
                warn!(uid = peer.uid, bytes = n, "control socket: line too long");
                Reply::err(
                    ErrorCode::LineTooLong,
                    format!("line of {n} bytes is longer than {MAX_LINE}"),
                )
            }
            Line::Complete if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Complete => match proto::parse_line(&buf) {
                Err(reply) => {
                    let e = reply.error.as_ref().expect("parse errors carry a body");
                    info!(uid = peer.uid, code = ?e.code, "control socket: refused line: {}", e.message);
                    reply
                }
                Ok(Command::Watch) => return watch(handler, &mut wr).await,
                Ok(cmd) => handler.handle(&peer, cmd).await,
            },
        };
        write_reply(&mut wr, &reply).await?;
    }
}

async fn watch<H: Handler>(
    handler: &H,
    wr: &mut tokio::net::unix::OwnedWriteHalf,
) -> io::Result<()> {
    let mut rx = handler.subscribe();
    write_reply(wr, &Reply::ok(serde_json::json!({"watching": true}))).await?;
    loop {
        match rx.recv().await {
            Ok(ev) => {
                let mut line = serde_json::to_vec(&ev).expect("events serialise");
                line.push(b'\n');
                wr.write_all(&line).await?;
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let line = format!("{{\"event\":\"lagged\",\"missed\":{n}}}\n");
                wr.write_all(line.as_bytes()).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_reader_discards_long_lines_and_goes_on() {
        let input = format!("short\n{}\nafter\nlast", "x".repeat(100));
        let mut r = BufReader::with_capacity(7, input.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"short");
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::TooLong(100)
        );
        assert!(buf.len() <= 10);
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"after");
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::Eof
        );
    }

    #[test]
    fn access_rules() {
        let a = Access {
            uids: vec![1001],
            gids: vec![500],
            own_uid: 999,
        };
        let p = |uid, gid, groups: Vec<u32>| Peer {
            uid,
            gid,
            pid: None,
            groups,
        };
        assert!(a.allows(&p(0, 0, vec![])));
        assert!(a.allows(&p(999, 1, vec![])));
        assert!(a.allows(&p(1001, 1, vec![])));
        assert!(a.allows(&p(2000, 500, vec![])));
        assert!(a.allows(&p(2000, 1, vec![7, 500])));
        assert!(!a.allows(&p(2000, 1, vec![7])));
    }

    #[test]
    fn bind_refuses_to_remove_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("outcall-bind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("not-a-socket");
        std::fs::write(&f, b"precious").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = bind(&f, 0o660).unwrap_err();
            assert!(e.to_string().contains("not a socket"), "{e}");
            assert_eq!(std::fs::read(&f).unwrap(), b"precious");
            // A stale socket is replaced.
            let s = dir.join("sock");
            drop(bind(&s, 0o660).unwrap());
            let l = bind(&s, 0o660).unwrap();
            let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o660);
            drop(l);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
