//! The server of the Rust Book's final chapter ("Building a Multithreaded
//! Web Server"), std only: a `ThreadPool` of 4 workers sharing one
//! `Mutex<mpsc::Receiver<Job>>`, and a handler that reads one request,
//! answers and closes the connection.
//!
//! It is the learner's server that `dispatchlab` compares its strategies
//! with, so it stays the Book's design; the changes are the ones a server on
//! the network needs: nothing a client sends can panic it (no `unwrap` on
//! input), a read times out, the request head is bounded, and every response
//! carries `Content-Length` and `Connection: close`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;
use std::{io, iter};

/// The Book's pool size.
pub const WORKERS: usize = 4;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of request head read.
const MAX_HEAD: u64 = 8 * 1024;
/// How long to wait after a failed accept (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves every connection `incoming` yields on a pool of [`WORKERS`]
/// threads; returns when `incoming` ends, after the workers finished.
pub fn serve(incoming: impl Iterator<Item = io::Result<TcpStream>>) {
    let pool = ThreadPool::new(WORKERS);
    for stream in incoming {
        match stream {
            Ok(stream) => pool.execute(|| handle_connection(stream)),
            Err(err) => {
                eprintln!("book_server: accept failed: {err}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Reads one request head, answers `GET /` with `Hello, World!` and anything
/// else with 404, then closes. A client that sends nothing readable gets no
/// answer; one that is gone by the time of the answer is not an error.
fn handle_connection(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let head: Vec<String> = BufReader::new((&stream).take(MAX_HEAD))
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.is_empty())
        .collect();
    let Some(request_line) = head.first() else {
        return;
    };
    let (status, body) = match request_line.as_str() {
        "GET / HTTP/1.1" | "GET / HTTP/1.0" => ("200 OK", "Hello, World!"),
        _ => ("404 NOT FOUND", "Not Found"),
    };
    let length = body.len();
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}");
    let _ = stream.write_all(response.as_bytes());
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The Book's thread pool: jobs go through one channel whose receiver the
/// workers share behind a mutex.
pub struct ThreadPool {
    workers: Vec<Worker>,
    sender: Option<mpsc::Sender<Job>>,
}

impl ThreadPool {
    /// Starts `size` workers.
    ///
    /// # Panics
    ///
    /// If `size` is zero.
    pub fn new(size: usize) -> ThreadPool {
        assert!(size > 0);
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..size).map(|id| Worker::new(id, Arc::clone(&receiver))).collect();
        ThreadPool {
            workers,
            sender: Some(sender),
        }
    }

    /// Runs `f` on one of the workers.
    pub fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let sender = self.sender.as_ref().expect("the sender lives until drop");
        sender.send(Box::new(f)).expect("the workers outlive the pool's sender");
    }
}

impl Drop for ThreadPool {
    /// Closes the channel, so that each worker ends after the queued jobs,
    /// and joins them.
    fn drop(&mut self) {
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            if worker.thread.join().is_err() {
                eprintln!("book_server: worker {} panicked", worker.id);
            }
        }
    }
}

struct Worker {
    id: usize,
    thread: thread::JoinHandle<()>,
}

impl Worker {
    fn new(id: usize, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) -> Worker {
        let thread = thread::spawn(move || {
            for job in iter::from_fn(|| receiver.lock().expect("jobs run outside the lock").recv().ok()) {
                job();
            }
        });
        Worker { id, thread }
    }
}
