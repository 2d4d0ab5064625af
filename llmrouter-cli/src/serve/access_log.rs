//! The access log's writer: request handlers hand their line to one thread that writes to
//! standard error through a buffer, flushed whenever no more lines are waiting, so a burst of
//! requests costs one write, not one per request, and no handler waits on the pipe. The queue
//! holds at most [`QUEUE`] lines: when standard error is not read, handlers wait for it (as a
//! direct write would) rather than the queue growing without bound.

use std::io::Write as _;
use std::sync::mpsc;

/// Lines waiting at most.
const QUEUE: usize = 16 * 1024;

enum Message {
    Line(String),
    /// Answered once every line sent before it is written out.
    Flush(mpsc::Sender<()>),
}

/// Where the access-log lines go.
pub struct AccessLog {
    sender: mpsc::SyncSender<Message>,
}

impl AccessLog {
    /// Starts the writer thread.
    pub fn start() -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Message>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
                while let Ok(first) = receiver.recv() {
                    let mut next = Some(first);
                    while let Some(message) = next.take() {
                        match message {
                            Message::Line(line) => {
                                let _ = out.write_all(line.as_bytes());
                                let _ = out.write_all(b"\n");
                            }
                            Message::Flush(done) => {
                                let _ = out.flush();
                                let _ = done.send(());
                            }
                        }
                        next = receiver.try_recv().ok();
                    }
                    let _ = out.flush();
                }
            })
            .map_or_else(
                |_| {
                    // No thread: lines are dropped rather than the server refusing to start.
                    eprintln!("access log: cannot start its writer thread; no access log");
                    AccessLog { sender: mpsc::sync_channel(0).0 }
                },
                |_| AccessLog { sender },
            )
    }

    /// Queues one line (without its newline).
    pub fn write(&self, line: String) {
        let _ = self.sender.send(Message::Line(line));
    }

    /// Waits (at most a second) until every line queued so far is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}
