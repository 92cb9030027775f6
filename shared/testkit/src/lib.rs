//! Test support: starts a real `nats-server` for a test.
//!
//! Owns: finding the `nats-server` binary, running it on a random loopback port with JetStream in a temporary store
//! (fsync always, as production), stopping and restarting it on the same port and store, killing it on drop.
//! Never: mocks. Tests that touch the bus get a real server.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use caselink_runtime::find_nats_server;

/// A running `nats-server` with JetStream, owned by a test. Killed (and its store deleted) on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl NatsServer {
    /// Starts a server on a random loopback port with a fresh temporary JetStream store.
    pub fn start() -> io::Result<NatsServer> {
        let binary = find_nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("caselink-nats-")
            .tempdir()?;
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir,
            binary,
        };
        server.spawn(None)?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on (stable across [`NatsServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (for tests that scan what the server wrote).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// Kills the server (SIGKILL: as a crash would). The store is kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn(Some(self.port))
    }

    fn spawn(&mut self, port: Option<u16>) -> io::Result<()> {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)?;
        let config = self.dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{}\"\nports_file_dir: {:?}\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
                port.map_or(-1, i32::from),
                ports_dir,
                self.store_dir(),
            ),
        )?;
        let log = std::fs::File::create(self.dir.path().join("nats.log"))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports_file = ports_dir.join(format!("nats-server_{pid}.ports"));
        loop {
            if let Some(found) = read_port(&ports_file) {
                if TcpStream::connect(("127.0.0.1", found)).is_ok() {
                    self.port = found;
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("nats.log"))
                        .unwrap_or_default();
                    return Err(io::Error::other(format!(
                        "nats-server exited with {status}: {log}"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not become ready in 20 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_port(ports_file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = json.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_starts_restarts_on_same_port_and_stops() {
        let mut server = NatsServer::start().expect("nats-server starts");
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.stop();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart().expect("restarts");
        assert_eq!(server.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}
