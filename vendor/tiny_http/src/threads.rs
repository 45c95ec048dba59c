//! Connection threads, kept for the next connection instead of exiting (three-tier patch).
//!
//! Each connection runs on a thread of its own, which parses its requests and
//! runs the handler on them. Starting a thread costs more than serving a
//! short request, so a thread whose connection closed waits a while for the
//! next one. A new connection goes to a waiting thread if there is one, else
//! a new thread starts, with a fixed small stack and a name a process listing
//! shows. The number of connections is bounded by the registry, so the
//! number of threads is too. A thread that cannot be started hands the
//! connection back, to be refused instead of panicking in the accept thread
//! (upstream's `thread::spawn` panicked there and ended accepting for good).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long a thread waits for another connection before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Work for a connection thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    idle: usize,
}

/// The set of connection threads.
pub(crate) struct Threads {
    state: Mutex<State>,
    work: Condvar,
    name: String,
    stack_size: usize,
}

impl Threads {
    pub fn new(name: String, stack_size: usize) -> Arc<Threads> {
        Arc::new(Threads {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
            }),
            work: Condvar::new(),
            name,
            stack_size,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` on a waiting thread or a new one; hands it back if no thread can start.
    pub fn run(self: &Arc<Self>, job: Job) -> Result<(), (Job, io::Error)> {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            self.work.notify_one();
            return Ok(());
        }
        let threads = Arc::clone(self);
        match thread::Builder::new()
            .name(self.name.clone())
            .stack_size(self.stack_size)
            .spawn(move || threads.work_loop())
        {
            Ok(_) => Ok(()),
            Err(e) => match state.queue.pop_back() {
                Some(job) => Err((job, e)),
                None => Ok(()),
            },
        }
    }

    fn work_loop(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_finished_thread_takes_the_next_job() {
        let threads = Threads::new("test-conn".into(), 64 * 1024);
        let (tx, rx) = mpsc::channel();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..5 {
            let tx = tx.clone();
            threads
                .run(Box::new(move || {
                    let me = thread::current();
                    tx.send((me.id(), me.name().map(str::to_string))).unwrap();
                }))
                .map_err(|(_, e)| e)
                .unwrap();
            let (id, name) = rx.recv().unwrap();
            assert_eq!(name.as_deref(), Some("test-conn"));
            ids.insert(id);
            // Wait for the thread to be back, idle, before the next job.
            while threads.lock().idle == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(ids.len(), 1, "one thread served all five in turn");
    }
}
