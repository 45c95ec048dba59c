//! Request threads that are kept for the next request instead of exiting.
//!
//! The design card's model stays: one request per thread at a time, and at
//! most `MAX_IN_FLIGHT` of them (admission happens before a job gets here).
//! What changes is that a thread which finished its request waits for the
//! next one instead of exiting: a profile of the relay under load showed
//! thread creation and teardown (clone, stack unmapping, malloc arena trims)
//! among its largest costs. A job goes to an idle thread if there is one, else
//! a new thread starts; a thread idle for [`IDLE_EXIT`] exits, so a burst does
//! not leave threads behind forever.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long an idle thread waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(30);

/// Stack size of request threads: enough for the handlers, small in memory.
const STACK_SIZE: usize = 256 * 1024;

/// Work for one thread: run once, by value.
pub trait Job: Send + 'static {
    /// Does the work.
    fn run(self);
}

struct State<J> {
    queue: VecDeque<J>,
    idle: usize,
    threads: usize,
}

/// A set of request threads that grows on demand and shrinks when idle.
pub struct Workers<J> {
    state: Mutex<State<J>>,
    work: Condvar,
}

impl<J: Job> Workers<J> {
    /// No threads yet; they start with the first jobs.
    pub fn new() -> Arc<Workers<J>> {
        Arc::new(Workers {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                threads: 0,
            }),
            work: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` on an idle thread or a new one. If no thread can be
    /// started, the job is handed back.
    pub fn run(self: &Arc<Self>, job: J) -> Result<(), (J, io::Error)> {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            self.work.notify_one();
            return Ok(());
        }
        let workers = Arc::clone(self);
        match thread::Builder::new()
            .name("request".into())
            .stack_size(STACK_SIZE)
            .spawn(move || workers.work_loop())
        {
            Ok(_) => {
                state.threads += 1;
                Ok(())
            }
            Err(e) => {
                let job = state
                    .queue
                    .pop_back()
                    .unwrap_or_else(|| unreachable!("pushed above"));
                Err((job, e))
            }
        }
    }

    fn work_loop(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job.run();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }

    /// Threads alive now (idle or busy).
    #[cfg(test)]
    pub fn threads(&self) -> usize {
        self.lock().threads
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::mpsc;

    type Task = Box<dyn FnOnce() + Send>;

    impl Job for Task {
        fn run(self) {
            self()
        }
    }

    #[test]
    fn sequential_jobs_reuse_one_thread() {
        let workers: Arc<Workers<Task>> = Workers::new();
        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            workers
                .run(Box::new(move || {
                    tx.send((i, thread::current().id())).unwrap()
                }))
                .map_err(|(_, e)| e)
                .unwrap();
            // Wait for each job, so the next finds the thread idle.
            let (n, _) = rx.recv().unwrap();
            assert_eq!(n, i);
            while workers.lock().idle == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(workers.threads(), 1);
    }

    #[test]
    fn concurrent_jobs_get_threads_of_their_own() {
        let workers: Arc<Workers<Task>> = Workers::new();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            workers
                .run(Box::new(move || {
                    tx.send(thread::current().id()).unwrap();
                    let (open, cv) = &*gate;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = cv.wait(open).unwrap();
                    }
                }))
                .map_err(|(_, e)| e)
                .unwrap();
        }
        // All four run at once (each blocks until the gate opens): four threads.
        let ids: std::collections::HashSet<_> = (0..4).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(workers.threads(), 4);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }
}
