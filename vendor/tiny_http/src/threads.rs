//! Connection threads, kept for the next connection instead of exiting (three-tier patch).
//!
//! Each connection runs on a thread of its own, which parses its requests and
//! runs the handler on them. Starting a thread costs more than serving a
//! short request, so a thread whose connection closed waits a while for the
//! next one. A new connection goes to a waiting thread if there is one, else
//! a new thread starts, with a fixed small stack and a name a process listing
//! shows. The threads are at most as many as the registry lets connections
//! exist at once ([`Registry::most`](crate::registry::Registry::most)): at
//! that number a new connection waits in the queue for a thread to finish,
//! since one whose connection has closed is about to (without the cap, threads
//! still leaving their closed connections were added on top: 1,037 connection
//! threads for 1,024 connections under a flood on a busy two-core machine). A
//! thread that cannot be started hands the connection back, to be refused
//! instead of panicking in the accept thread (upstream's `thread::spawn`
//! panicked there and ended accepting for good).

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
    /// Threads started and not yet exited, idle or not.
    running: usize,
}

/// The set of connection threads.
pub(crate) struct Threads {
    state: Mutex<State>,
    work: Condvar,
    name: String,
    stack_size: usize,
    most: usize,
}

impl Threads {
    /// Threads named `name`, at most `most` of them (at least one).
    pub fn new(name: String, stack_size: usize, most: usize) -> Arc<Threads> {
        Arc::new(Threads {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                running: 0,
            }),
            work: Condvar::new(),
            name,
            stack_size,
            most: most.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` on a waiting thread or a new one, or, with `most` running,
    /// on the next to finish; hands it back if no thread can start.
    pub fn run(self: &Arc<Self>, job: Job) -> Result<(), (Job, io::Error)> {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            self.work.notify_one();
            return Ok(());
        }
        if state.running >= self.most {
            return Ok(());
        }
        match self.start(&mut state) {
            Ok(()) => Ok(()),
            Err(e) => match state.queue.pop_back() {
                Some(job) => Err((job, e)),
                None => Ok(()),
            },
        }
    }

    /// Starts one more thread, counted in `state.running`.
    fn start(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        let threads = Arc::clone(self);
        thread::Builder::new()
            .name(self.name.clone())
            .stack_size(self.stack_size)
            .spawn(move || threads.work_loop())?;
        state.running += 1;
        Ok(())
    }

    fn work_loop(self: Arc<Self>) {
        let _running = Running(Arc::clone(&self));
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

/// Counts its thread out when it exits, by returning or by a panic in a job
/// (a thread counted for ever would lower the cap for good). A thread leaves
/// with work queued only by a panic: then a replacement takes the work, which
/// might otherwise wait for a thread that never comes.
struct Running(Arc<Threads>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.running -= 1;
        if state.queue.len() > state.idle {
            // No thread can start: the work waits for the next `run` to try again.
            let _ = self.0.start(&mut state);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_finished_thread_takes_the_next_job() {
        let threads = Threads::new("test-conn".into(), 64 * 1024, 8);
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

    /// Runs a job that reports its thread, then waits for its `release` channel.
    fn held(threads: &Arc<Threads>, started: &mpsc::Sender<thread::ThreadId>) -> mpsc::Sender<()> {
        let (release, wait) = mpsc::channel::<()>();
        let started = started.clone();
        let job = move || {
            started.send(thread::current().id()).unwrap();
            let _ = wait.recv_timeout(Duration::from_secs(10));
        };
        threads.run(Box::new(job)).map_err(|(_, e)| e).unwrap();
        release
    }

    #[test]
    fn at_the_cap_a_job_waits_for_a_running_thread() {
        let threads = Threads::new("test-conn".into(), 64 * 1024, 2);
        let (started, seen) = mpsc::channel();
        let first = held(&threads, &started);
        let _second = held(&threads, &started);
        let _third = held(&threads, &started);
        let a = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        let b = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        {
            let state = threads.lock();
            assert_eq!(
                (state.running, state.queue.len()),
                (2, 1),
                "the third job waits"
            );
        }
        drop(first);
        let c = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            c == a || c == b,
            "the third job ran on a thread of the first two"
        );
        assert_eq!(threads.lock().running, 2);
    }

    #[test]
    fn a_panicking_job_at_the_cap_leaves_a_thread_for_the_queue() {
        let threads = Threads::new("test-conn".into(), 64 * 1024, 1);
        let (go, wait) = mpsc::channel::<()>();
        let panics = move || {
            let _ = wait.recv_timeout(Duration::from_secs(10));
            panic!("a job's bug");
        };
        threads.run(Box::new(panics)).map_err(|(_, e)| e).unwrap();
        let (started, seen) = mpsc::channel();
        let _queued = held(&threads, &started);
        go.send(()).unwrap();
        seen.recv_timeout(Duration::from_secs(5))
            .expect("the queued job ran after the panic");
        assert_eq!(threads.lock().running, 1);
    }
}
