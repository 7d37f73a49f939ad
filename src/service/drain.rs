//! Graceful shutdown's bookkeeping: the analyses and batch items running now, and the switch
//! after which no new ones start (queued batch items stay queued for the next start).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Docent;

#[derive(Default)]
pub(super) struct Drain {
    draining: AtomicBool,
    working: Arc<AtomicUsize>,
}

/// One analysis or batch item at work, until dropped.
pub(super) struct Working(Arc<AtomicUsize>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drain {
    /// Count new work, unless the server is shutting down. Counted first, checked second: a
    /// shutdown that begins in between sees this work and waits for it.
    pub(super) fn start(&self) -> Option<Working> {
        self.working.fetch_add(1, Ordering::SeqCst);
        let working = Working(Arc::clone(&self.working));
        (!self.draining.load(Ordering::SeqCst)).then_some(working)
    }
}

impl Docent {
    /// Start no new analyses or batch items; those running finish.
    pub fn drain(&self) {
        self.drain.draining.store(true, Ordering::SeqCst);
        // Idle batch workers wake, see the switch and end.
        self.work.notify_waiters();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.draining.load(Ordering::SeqCst)
    }

    /// Analyses and batch items running now.
    pub fn working(&self) -> usize {
        self.drain.working.load(Ordering::SeqCst)
    }

    /// Wait until nothing runs, or `deadline`; `false` when something still did.
    pub async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        while self.working() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}
