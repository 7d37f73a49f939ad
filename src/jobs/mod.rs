//! Batch workers: tasks that take queued batch items one at a time and run them to their end,
//! as long as the process lives. The queue itself is in the store, so it survives restarts.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::service::Docent;

/// How long an idle worker sleeps before looking at the queue again, in case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Requeue the items a previous run left running, then start `workers` worker tasks.
pub async fn start(docent: Arc<Docent>, workers: usize) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let (requeued, failed) = docent.recover_batches().await?;
    if requeued + failed > 0 {
        tracing::warn!(requeued, failed, "batch items interrupted by the last shutdown");
    }
    Ok((0..workers).map(|worker| tokio::spawn(work(Arc::downgrade(&docent), worker))).collect())
}

/// One worker. It holds the service only while it runs an item, so that a server shutting down
/// releases the store and the index; once the service is gone, the worker ends.
async fn work(docent: Weak<Docent>, worker: usize) {
    while let Some(service) = docent.upgrade() {
        if service.is_draining() {
            return;
        }
        match service.run_next_item().await {
            Ok(true) => {}
            Ok(false) => {
                let wake = service.work_signal();
                drop(service);
                let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
            }
            Err(e) => {
                drop(service);
                // The store failed; the item stays running and is retried after a restart.
                tracing::error!(worker, "batch worker: {e}");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}
