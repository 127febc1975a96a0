//! A fault-injecting TCP proxy on loopback, in front of a real server (the S3
//! server in the object-store fault tests): it adds delay to each request,
//! drops connections or answers `503` at random (seeded), stalls requests, or
//! goes down and comes back on the same port. It counts what it injected, so a
//! test can prove its fault fired.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::reliability::Seeded;

/// What the proxy does to each request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Passes everything through.
    None,
    /// Holds each request this long before passing it on.
    Delay(Duration),
    /// Drops the connection for `drop_percent` of requests and answers `503`
    /// for `unavailable_percent` of them.
    Flaky {
        drop_percent: usize,
        unavailable_percent: usize,
    },
    /// Never passes a request on, and never answers.
    Stall,
}

/// What the proxy injected so far.
#[derive(Debug, Default)]
pub struct Injected {
    pub requests: AtomicUsize,
    pub delayed: AtomicUsize,
    pub dropped: AtomicUsize,
    pub unavailable: AtomicUsize,
    pub stalled: AtomicUsize,
    pub refused_while_down: AtomicBool,
}

#[derive(Debug)]
struct State {
    upstream: String,
    fault: Mutex<Fault>,
    random: Mutex<Seeded>,
    down: AtomicBool,
    /// The connections being relayed (client side, upstream side), by number.
    open: Mutex<HashMap<usize, [TcpStream; 2]>>,
    connections: AtomicUsize,
    injected: Injected,
}

/// A running proxy; stops with the test process.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`), passing everything through at first.
    pub fn start(upstream: &str, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            fault: Mutex::new(Fault::None),
            random: Mutex::new(Seeded::quiet(seed)),
            down: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            injected: Injected::default(),
        });
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || accept(listener, addr.to_string(), accepting));
        FaultProxy {
            endpoint: format!("http://{addr}"),
            state,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Goes down: open connections are cut and new ones refused.
    pub fn down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for stream in self.state.open.lock().unwrap().drain().flat_map(|(_, s)| s) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Comes back on the same port.
    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    pub fn injected(&self) -> &Injected {
        &self.state.injected
    }
}

/// Accepts until the process ends; while down, the port is closed (refused).
fn accept(listener: TcpListener, addr: String, state: Arc<State>) {
    let mut listener = Some(listener);
    loop {
        if state.down.load(Ordering::SeqCst) {
            if listener.take().is_some() {
                state
                    .injected
                    .refused_while_down
                    .store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let open = match &listener {
            Some(open) => open,
            None => {
                // back up on the same port (std sets SO_REUSEADDR)
                match TcpListener::bind(&addr) {
                    Ok(bound) => listener.insert(bound),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                }
            }
        };
        open.set_nonblocking(true).unwrap();
        match open.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(client, state));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Relays one client connection, applying the fault to each request it sends.
fn serve(client: TcpStream, state: Arc<State>) {
    let Ok(upstream) = TcpStream::connect(&state.upstream) else {
        return;
    };
    let id = state.connections.fetch_add(1, Ordering::SeqCst);
    let both = [client.try_clone().unwrap(), upstream.try_clone().unwrap()];
    state.open.lock().unwrap().insert(id, both);
    let (mut from_upstream, mut to_client) =
        (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let (mut from_client, mut to_upstream) = (client, upstream);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if starts_request(&buf[..n]) {
            state.injected.requests.fetch_add(1, Ordering::SeqCst);
            let fault = *state.fault.lock().unwrap();
            match fault {
                Fault::None => {}
                Fault::Delay(d) => {
                    state.injected.delayed.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(d);
                }
                Fault::Flaky {
                    drop_percent,
                    unavailable_percent,
                } => {
                    let roll = state.random.lock().unwrap().below(100);
                    if roll < drop_percent {
                        state.injected.dropped.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if roll < drop_percent + unavailable_percent {
                        state.injected.unavailable.fetch_add(1, Ordering::SeqCst);
                        let _ = from_client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        break;
                    }
                }
                Fault::Stall => {
                    state.injected.stalled.fetch_add(1, Ordering::SeqCst);
                    // hold the connection, answer nothing, until the client goes
                    while matches!(from_client.read(&mut buf), Ok(n) if n > 0) {}
                    break;
                }
            }
        }
        if to_upstream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from_client.shutdown(Shutdown::Both);
    let _ = to_upstream.shutdown(Shutdown::Both);
    state.open.lock().unwrap().remove(&id);
}

/// Whether `chunk` begins an HTTP/1.1 request (object_store sends one at a
/// time per connection, headers first).
fn starts_request(chunk: &[u8]) -> bool {
    ["GET ", "PUT ", "POST ", "HEAD ", "DELETE "]
        .iter()
        .any(|method| chunk.starts_with(method.as_bytes()))
}
