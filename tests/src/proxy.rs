//! A TCP proxy in front of a backend, which a test can cut (new
//! connections refused, open ones dropped) and restore: the backend looks
//! dead to coffer, and comes back with its data. It also keeps every byte
//! that crossed it, both ways, for tests of what an intermediary sees.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    target: u16,
    state: Arc<State>,
}

struct State {
    cut: AtomicBool,
    /// Open connections (both sides), by connection number.
    open: Mutex<HashMap<u64, [TcpStream; 2]>>,
    /// Connections accepted so far (their numbers).
    next: AtomicU64,
    listener: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Every byte that crossed the proxy, either way.
    seen: Mutex<Vec<u8>>,
}

impl Proxy {
    /// A proxy on a free port forwarding to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            state: Arc::new(State {
                cut: AtomicBool::new(false),
                open: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                listener: Mutex::new(None),
                seen: Mutex::new(Vec::new()),
            }),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let state = self.state.clone();
        let target = self.target;
        let handle = std::thread::spawn(move || {
            while !state.cut.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let id = state.next.fetch_add(1, Ordering::SeqCst);
                        let both = [client.try_clone().unwrap(), server.try_clone().unwrap()];
                        state.open.lock().unwrap().insert(id, both);
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            state.clone(),
                            None,
                        );
                        pipe(server, client, state.clone(), Some(id));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        *self.state.listener.lock().unwrap() = Some(handle);
    }

    /// Connections accepted so far: requests, for a backend that closes
    /// every connection after one (as moto does).
    pub fn connections(&self) -> u64 {
        self.state.next.load(Ordering::SeqCst)
    }

    /// Every byte that crossed the proxy so far, both ways.
    pub fn seen(&self) -> Vec<u8> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The backend goes dark: the port refuses connections and every open
    /// one is dropped.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Some(handle) = self.state.listener.lock().unwrap().take() {
            let _ = handle.join();
        }
        for (_, streams) in self.state.open.lock().unwrap().drain() {
            for stream in streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// The backend is back on the same port.
    pub fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.state.cut.store(false, Ordering::SeqCst);
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Copies `from` to `to` on a thread until either side closes, keeping
/// what crossed; then forgets connection `done`, if given.
fn pipe(mut from: TcpStream, mut to: TcpStream, state: Arc<State>, done: Option<u64>) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            state
                .seen
                .lock()
                .unwrap()
                .extend_from_slice(&buffer[..read]);
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        if let Some(id) = done {
            state.open.lock().unwrap().remove(&id);
        }
    });
}
