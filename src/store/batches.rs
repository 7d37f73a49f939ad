//! Batches in SQLite. Every change of an item's state is one statement or one transaction, so
//! a crash at any point leaves each item either still owed (queued or running, retried on the
//! next start) or ended exactly once with its analysis.

use anyhow::Context;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{insert_analysis_on, write_atomic, Store};
use crate::domain::{
    Analysis, Batch, BatchItem, BatchOptions, BatchStatus, BatchSummary, ItemState, PipelineKind, SideError,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    created_at TEXT NOT NULL,
    options TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch_files (
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    filename TEXT NOT NULL,
    document_id TEXT NOT NULL,
    upload_ext TEXT,
    PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS batch_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    file_idx INTEGER NOT NULL,
    pipeline TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    analysis_id TEXT,
    error_code TEXT,
    error_message TEXT,
    started_at TEXT,
    finished_at TEXT,
    UNIQUE (batch_id, idx)
);
CREATE INDEX IF NOT EXISTS batch_items_by_state ON batch_items(state, seq);
";

/// A document a new batch reads: one already stored, or an upload to ingest under `document_id`.
pub struct NewBatchFile<'a> {
    pub filename: &'a str,
    pub document_id: &'a str,
    /// The uploaded bytes and their extension; `None` for a stored document.
    pub upload: Option<(&'a [u8], &'a str)>,
}

/// An item a worker took: what it must run.
#[derive(Debug, Clone)]
pub struct ClaimedItem {
    pub batch_id: String,
    pub index: usize,
    pub file_index: usize,
    pub filename: String,
    pub document_id: String,
    pub pipeline: PipelineKind,
    pub attempt: u32,
    pub options: BatchOptions,
    /// Where the upload waits to be ingested, while it is not a stored document yet.
    pub upload: Option<std::path::PathBuf>,
    /// The batch's API key, which its documents belong to.
    pub owner: Option<String>,
}

/// A claimed item's file: name, document id, upload extension, batch options, batch owner.
type FileRow = (String, String, Option<String>, String, Option<String>);

/// Items started this many times without ending (the server died each time) fail.
pub const MAX_ATTEMPTS: u32 = 3;

impl Store {
    fn batch_dir(&self, id: &str) -> std::path::PathBuf {
        self.root.join("batches").join(id)
    }

    /// The batch created earlier with this idempotency key, if any.
    pub fn batch_by_key(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn()?
            .query_row("SELECT id FROM batches WHERE idempotency_key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Items of every batch by state, in one pass over the table's state index.
    pub fn item_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT state, count(*) FROM batch_items GROUP BY state")?;
        let counts = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(counts)
    }

    pub fn queued_items(&self) -> anyhow::Result<usize> {
        let n: i64 =
            self.conn()?.query_row("SELECT count(*) FROM batch_items WHERE state = 'queued'", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    /// Store a batch: uploads first (synced files), then every row in one transaction. Returns
    /// the id of the batch that holds `key` when another request created it first.
    pub fn insert_batch(
        &self,
        id: &str,
        key: Option<&str>,
        created_at: &str,
        options: &BatchOptions,
        files: &[NewBatchFile<'_>],
        owner: Option<&str>,
    ) -> anyhow::Result<String> {
        let dir = self.batch_dir(id);
        for (i, f) in files.iter().enumerate() {
            if let Some((bytes, ext)) = f.upload {
                fs_err::create_dir_all(&dir)?;
                write_atomic(&dir, &format!("{i}.{ext}"), bytes)?;
            }
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(key) = key {
            let existing: Option<String> =
                tx.query_row("SELECT id FROM batches WHERE idempotency_key = ?1", [key], |r| r.get(0)).optional()?;
            if let Some(existing) = existing {
                drop(tx);
                if dir.exists() {
                    fs_err::remove_dir_all(&dir)?;
                }
                return Ok(existing);
            }
        }
        tx.execute(
            "INSERT INTO batches (id, idempotency_key, created_at, options, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, key, created_at, serde_json::to_string(options)?, owner],
        )?;
        let mut index = 0usize;
        for (i, f) in files.iter().enumerate() {
            tx.execute(
                "INSERT INTO batch_files (batch_id, idx, filename, document_id, upload_ext) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, i, f.filename, f.document_id, f.upload.map(|u| u.1)],
            )?;
            for p in &options.pipelines {
                tx.execute(
                    "INSERT INTO batch_items (batch_id, idx, file_idx, pipeline, state) VALUES (?1, ?2, ?3, ?4, 'queued')",
                    params![id, index, i, p.as_str()],
                )?;
                index += 1;
            }
        }
        tx.commit()?;
        Ok(id.to_owned())
    }

    pub fn get_batch(&self, id: &str) -> anyhow::Result<Option<Batch>> {
        let conn = self.conn()?;
        let head: Option<(String, String, bool)> = conn
            .query_row("SELECT options, created_at, cancelled FROM batches WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((options, created_at, cancelled)) = head else { return Ok(None) };
        let mut stmt = conn.prepare(
            "SELECT i.idx, f.filename, f.document_id, i.pipeline, i.state, i.attempts, i.analysis_id,
                    i.error_code, i.error_message, i.started_at, i.finished_at
             FROM batch_items i JOIN batch_files f ON f.batch_id = i.batch_id AND f.idx = i.file_idx
             WHERE i.batch_id = ?1 ORDER BY i.idx",
        )?;
        let items = stmt
            .query_map([id], |r| {
                let error = match (r.get::<_, Option<String>>(7)?, r.get::<_, Option<String>>(8)?) {
                    (Some(code), message) => Some(SideError { code, message: message.unwrap_or_default() }),
                    _ => None,
                };
                Ok(BatchItem {
                    index: r.get::<_, i64>(0)? as usize,
                    filename: r.get(1)?,
                    document_id: r.get(2)?,
                    pipeline: parse_pipeline(&r.get::<_, String>(3)?),
                    state: ItemState::parse(&r.get::<_, String>(4)?).unwrap_or(ItemState::Failed),
                    attempts: r.get(5)?,
                    analysis_id: r.get(6)?,
                    error,
                    started_at: r.get(9)?,
                    finished_at: r.get(10)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let options: BatchOptions = serde_json::from_str(&options).context("batch options")?;
        Ok(Some(Batch::new(id.to_owned(), options, created_at, cancelled, items)))
    }

    /// The key a batch belongs to: `None` when there is no such batch, `Some(None)` for one
    /// created without a key.
    pub fn batch_owner(&self, id: &str) -> anyhow::Result<Option<Option<String>>> {
        Ok(self.conn()?.query_row("SELECT owner FROM batches WHERE id = ?1", [id], |r| r.get(0)).optional()?)
    }

    /// The newest batches of one owner, or of everyone for `None` (a server without keys), with
    /// their items counted by state in the same query: a list never loads the items themselves.
    pub fn list_batches(&self, owner: Option<&str>) -> anyhow::Result<Vec<BatchSummary>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT b.id, b.created_at, b.cancelled, count(i.seq),
                    count(*) FILTER (WHERE i.state = 'queued'), count(*) FILTER (WHERE i.state = 'running'),
                    count(*) FILTER (WHERE i.state = 'done'), count(*) FILTER (WHERE i.state = 'failed'),
                    count(*) FILTER (WHERE i.state = 'cancelled'), count(*) FILTER (WHERE i.attempts > 0)
             FROM (SELECT id, created_at, cancelled FROM batches WHERE ?1 IS NULL OR owner = ?1
                   ORDER BY created_at DESC, id LIMIT 200) b
             LEFT JOIN batch_items i ON i.batch_id = b.id
             GROUP BY b.id ORDER BY b.created_at DESC, b.id",
        )?;
        let rows = stmt.query_map([owner], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| usize::try_from(v).unwrap_or_default());
            let (queued, running) = (n(4)?, n(5)?);
            let cancelled: bool = r.get(2)?;
            Ok(BatchSummary {
                id: r.get(0)?,
                status: BatchStatus::of(queued, running, n(9)?, cancelled),
                total: n(3)?,
                queued,
                running,
                done: n(6)?,
                failed: n(7)?,
                cancelled: n(8)?,
                created_at: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Take the oldest queued item: it becomes running, its attempt counted.
    pub fn claim_item(&self, now: &str) -> anyhow::Result<Option<ClaimedItem>> {
        let conn = self.conn()?;
        let claimed: Option<(String, i64, i64, String, u32)> = conn
            .query_row(
                "UPDATE batch_items SET state = 'running', attempts = attempts + 1, started_at = ?1
                 WHERE seq = (SELECT seq FROM batch_items WHERE state = 'queued' ORDER BY seq LIMIT 1)
                 RETURNING batch_id, idx, file_idx, pipeline, attempts",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((batch_id, index, file_idx, pipeline, attempt)) = claimed else { return Ok(None) };
        let (filename, document_id, upload_ext, options, owner): FileRow = conn.query_row(
            "SELECT f.filename, f.document_id, f.upload_ext, b.options, b.owner FROM batch_files f
             JOIN batches b ON b.id = f.batch_id WHERE f.batch_id = ?1 AND f.idx = ?2",
            params![batch_id, file_idx],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let upload = upload_ext.map(|ext| self.batch_dir(&batch_id).join(format!("{file_idx}.{ext}")));
        Ok(Some(ClaimedItem {
            index: index as usize,
            file_index: file_idx as usize,
            batch_id,
            filename,
            document_id,
            pipeline: parse_pipeline(&pipeline),
            attempt,
            options: serde_json::from_str(&options).context("batch options")?,
            upload,
            owner,
        }))
    }

    /// The item's analysis and its end, in one transaction: stored together or not at all.
    pub fn finish_item(&self, batch_id: &str, index: usize, analysis: &Analysis, now: &str) -> anyhow::Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_analysis_on(&tx, analysis)?;
        tx.execute(
            "UPDATE batch_items SET state = 'done', analysis_id = ?1, finished_at = ?2
             WHERE batch_id = ?3 AND idx = ?4 AND state = 'running'",
            params![analysis.id, now, batch_id, index],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn fail_item(&self, batch_id: &str, index: usize, error: &SideError, now: &str) -> anyhow::Result<()> {
        self.conn()?.execute(
            "UPDATE batch_items SET state = 'failed', error_code = ?1, error_message = ?2, finished_at = ?3
             WHERE batch_id = ?4 AND idx = ?5 AND state IN ('running', 'queued')",
            params![error.code, error.message, now, batch_id, index],
        )?;
        Ok(())
    }

    /// Queued items of the batch end as cancelled; running ones finish. Returns how many ended,
    /// or `None` when there is no such batch. Cancelling an ended batch changes nothing.
    pub fn cancel_batch(&self, id: &str, now: &str) -> anyhow::Result<Option<usize>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx.query_row("SELECT 1 FROM batches WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some();
        if !exists {
            return Ok(None);
        }
        // A batch that has already ended stays as it ended.
        tx.execute(
            "UPDATE batches SET cancelled = 1 WHERE id = ?1 AND EXISTS
               (SELECT 1 FROM batch_items WHERE batch_id = ?1 AND state IN ('queued', 'running'))",
            [id],
        )?;
        let n = tx.execute(
            "UPDATE batch_items SET state = 'cancelled', finished_at = ?1 WHERE batch_id = ?2 AND state = 'queued'",
            params![now, id],
        )?;
        tx.commit()?;
        Ok(Some(n))
    }

    /// After a restart: items that were running when the server stopped run again, unless they
    /// already started `MAX_ATTEMPTS` times. Returns (requeued, failed).
    pub fn recover_items(&self, now: &str) -> anyhow::Result<(usize, usize)> {
        let conn = self.conn()?;
        let failed = conn.execute(
            "UPDATE batch_items SET state = 'failed', error_code = ?3, finished_at = ?1,
                    error_message = 'the server stopped while this item ran, ' || attempts || ' times'
             WHERE state = 'running' AND attempts >= ?2",
            params![now, MAX_ATTEMPTS, crate::error::ErrorCode::Interrupted.as_str()],
        )?;
        let requeued = conn.execute("UPDATE batch_items SET state = 'queued' WHERE state = 'running'", [])?;
        Ok((requeued, failed))
    }

    /// The upload of a batch file is now a stored document: the batch no longer needs its copy.
    pub fn upload_ingested(&self, item: &ClaimedItem) -> anyhow::Result<()> {
        self.conn()?.execute(
            "UPDATE batch_files SET upload_ext = NULL WHERE batch_id = ?1 AND idx = ?2",
            params![item.batch_id, item.file_index],
        )?;
        if let Some(path) = item.upload.as_deref().filter(|p| p.exists()) {
            fs_err::remove_file(path)?;
        }
        Ok(())
    }
}

fn parse_pipeline(s: &str) -> PipelineKind {
    if s == "chunked" {
        PipelineKind::Chunked
    } else {
        PipelineKind::Full
    }
}
