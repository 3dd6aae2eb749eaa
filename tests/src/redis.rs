//! A throwaway `redis-server` on a spare port, nothing kept on disk.

use std::time::{Duration, Instant};

/// Killed when dropped.
pub struct Redis {
    child: std::process::Child,
    pub port: u16,
    pub url: String,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_on(super::free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start redis-server ({err}); scripts/test installs it"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
