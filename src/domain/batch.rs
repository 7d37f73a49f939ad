//! Batches: many documents through one or both pipelines as durable jobs, one item per
//! (document, pipeline), each ending exactly once.

use serde::{Deserialize, Serialize};

use super::{ChunkedModel, PipelineKind, SideError, Task};

/// What every item of a batch runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchOptions {
    pub pipelines: Vec<PipelineKind>,
    pub task: Task,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// Model of the chunked pipeline: `baseline` (default) or `same`.
    #[serde(default)]
    pub chunked_model: ChunkedModel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Done, Self::Failed, Self::Cancelled].into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub index: usize,
    pub filename: String,
    pub document_id: String,
    pub pipeline: PipelineKind,
    pub state: ItemState,
    /// Times a worker started it (more than one after a crash or restart).
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SideError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// No item has started yet.
    Queued,
    Running,
    /// Every item ended (done or failed).
    Done,
    /// Cancelled: no item is left to run.
    Cancelled,
}

impl BatchStatus {
    /// From the item counts: `started` items have had at least one attempt.
    pub fn of(queued: usize, running: usize, started: usize, cancelled: bool) -> Self {
        match (queued + running, cancelled) {
            (0, true) => Self::Cancelled,
            (0, false) => Self::Done,
            _ if running == 0 && started == 0 => Self::Queued,
            _ => Self::Running,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Batch {
    pub id: String,
    pub status: BatchStatus,
    pub total: usize,
    pub queued: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub options: BatchOptions,
    pub created_at: String,
    pub items: Vec<BatchItem>,
}

impl Batch {
    /// Counts and status from the items.
    pub fn new(id: String, options: BatchOptions, created_at: String, cancelled: bool, items: Vec<BatchItem>) -> Self {
        let count = |s: ItemState| items.iter().filter(|i| i.state == s).count();
        let (queued, running) = (count(ItemState::Queued), count(ItemState::Running));
        let started = items.iter().filter(|i| i.attempts > 0).count();
        let status = BatchStatus::of(queued, running, started, cancelled);
        Self {
            id,
            status,
            total: items.len(),
            queued,
            running,
            done: count(ItemState::Done),
            failed: count(ItemState::Failed),
            cancelled: count(ItemState::Cancelled),
            options,
            created_at,
            items,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status, BatchStatus::Done | BatchStatus::Cancelled)
    }
}

/// A batch's counts without its items, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BatchSummary {
    pub id: String,
    pub status: BatchStatus,
    pub total: usize,
    pub queued: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub created_at: String,
}

/// What the event stream of a batch reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BatchEvent {
    ItemStarted {
        batch_id: String,
        item: usize,
        attempt: u32,
    },
    /// A running item, while the model reads: seconds so far, the document's size in tokens, and
    /// how many of the prompt's tokens the model has read (when its engine reports it).
    ItemProgress {
        batch_id: String,
        item: usize,
        elapsed_ms: u64,
        document_tokens: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        prompt_done: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        prompt_total: Option<usize>,
    },
    ItemDone {
        batch_id: String,
        item: usize,
        analysis_id: String,
    },
    ItemFailed {
        batch_id: String,
        item: usize,
        error: SideError,
    },
    /// Items ended without running (cancel).
    Cancelled {
        batch_id: String,
        items: usize,
    },
}

impl BatchEvent {
    pub fn batch_id(&self) -> &str {
        match self {
            Self::ItemStarted { batch_id, .. }
            | Self::ItemProgress { batch_id, .. }
            | Self::ItemDone { batch_id, .. }
            | Self::ItemFailed { batch_id, .. }
            | Self::Cancelled { batch_id, .. } => batch_id,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::ItemStarted { .. } => "item_started",
            Self::ItemProgress { .. } => "item_progress",
            Self::ItemDone { .. } => "item_done",
            Self::ItemFailed { .. } => "item_failed",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}
