//! outcalld's run loop: configuration, store and recovery, the control socket, signals, the
//! watchdog, reload and the drain on SIGTERM. Calls are placed by the dispatcher it drives.

use crate::config::{Config, ConfigErrors};
use crate::control::server::{self, Access};
use crate::service::{LoopCommand, Service};
use crate::store::{Store, StoreError};
use crate::systemd;
use crate::time::UnixMillis;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Why outcalld stopped with an error; each maps to a sysexits code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (EX_CONFIG, 78).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The store could not be opened or recovered (EX_CANTCREAT, 73).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The control socket could not be bound (EX_NOPERM 77 for permissions, else EX_OSERR 71).
    #[error("control socket: {0}")]
    Socket(std::io::Error),
}

impl RunError {
    /// The sysexits code to exit with.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 78,
            RunError::Store(_) => 73,
            RunError::Socket(e) if e.kind() == std::io::ErrorKind::PermissionDenied => 77,
            RunError::Socket(_) => 71,
        }
    }
}

/// Runs the daemon with the configuration at `config_path` until SIGTERM/SIGINT.
pub async fn run(config_path: PathBuf) -> Result<(), RunError> {
    let config = Arc::new(Config::load(&config_path)?);
    let store = Store::open(&config.daemon.store)?;
    let rec = store.recover(UnixMillis::now())?;
    if !rec.requeued.is_empty() || !rec.lost.is_empty() {
        warn!(
            requeued = ?rec.requeued, lost = ?rec.lost,
            "recovered requests whose call was interrupted by a stop"
        );
    }
    let listener = bind_socket(&config.daemon.socket, config.daemon.socket_mode())?;
    let access = Arc::new(RwLock::new(access_of(&config)));
    let (svc, mut wake) = Service::new(store, config.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        listener,
        svc.clone(),
        access.clone(),
        stopped(stop_rx.clone()),
    ));

    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");
    let mut watchdog = systemd::watchdog_interval().map(tokio::time::interval);

    systemd::notify("READY=1\nSTATUS=accepting requests");
    info!(socket = %config.daemon.socket.display(), "outcalld {} ready", crate::VERSION);

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Err(e) = reload(&config_path, &svc, &access) {
                    error!("reload refused, keeping the running configuration:\n{e}");
                }
            }
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                systemd::notify("WATCHDOG=1");
            }
            cmd = wake.commands.recv() => match cmd {
                Some(LoopCommand::Reload(reply)) => {
                    let r = reload(&config_path, &svc, &access).map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        error!("reload refused, keeping the running configuration:\n{e}");
                    }
                    let _ = reply.send(r);
                }
                Some(LoopCommand::HangUp(id)) => info!(request = %id, "hang-up requested"),
                None => break,
            },
            _ = wake.queued.notified() => {}
        }
    }

    info!("stopping: no new requests, draining calls");
    systemd::notify("STOPPING=1\nSTATUS=draining");
    svc.start_draining();
    let _ = stop_tx.send(true);
    let _ = server.await;
    svc.store().flush().await?;
    let _ = std::fs::remove_file(&config.daemon.socket);
    info!("stopped");
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn access_of(c: &Config) -> Access {
    Access {
        uids: c.daemon.allowed_uids.clone(),
        gids: c.daemon.allowed_gids.clone(),
        own_uid: nix_uid(),
    }
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is our effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn bind_socket(path: &Path, mode: u32) -> Result<tokio::net::UnixListener, RunError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(RunError::Socket)?;
    }
    server::bind(path, mode).map_err(RunError::Socket)
}

fn reload(path: &Path, svc: &Service, access: &RwLock<Access>) -> Result<(), ConfigErrors> {
    let new = Config::load(path)?;
    *access.write().expect("access lock") = access_of(&new);
    svc.set_config(Arc::new(new));
    info!(config = %path.display(), "configuration reloaded");
    Ok(())
}
