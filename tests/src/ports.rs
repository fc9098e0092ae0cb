//! Free loopback ports, and waiting until something listens on one.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process could take it; that window is
/// accepted for tests. Ports already handed out by this process are never returned twice, so
/// parallel tests in one binary do not collide with each other.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(Default::default);
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if handed_out.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no fresh free port on 127.0.0.1 after 100 tries");
}

/// Waits until a TCP connection to `addr` succeeds, polling every 50 ms.
pub fn wait_for_tcp(addr: impl ToSocketAddrs + std::fmt::Display, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .collect();
    loop {
        for a in &addrs {
            if TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!("nothing listening on {addr} after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_wait_for_tcp_sees_a_listener() {
        let port = free_port();
        assert_ne!(port, free_port(), "a port is handed out once per process");
        let addr = format!("127.0.0.1:{port}");
        assert!(wait_for_tcp(addr.as_str(), Duration::from_millis(200)).is_err());
        let _listener = TcpListener::bind(&addr).unwrap();
        wait_for_tcp(addr.as_str(), Duration::from_secs(2)).unwrap();
    }
}
