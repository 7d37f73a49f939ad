//! The chunk index: every document's chunks in one persistent tantivy index (BM25). One thread
//! owns the `IndexWriter` and takes commands over a channel; searches run on a shared reader.

mod tokenizer;

pub use tokenizer::{is_cjk, tokenize, MixedTokenizer};

use std::path::Path;
use std::sync::mpsc;

use anyhow::{anyhow, Context};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{Language, LowerCaser, Stemmer, TextAnalyzer};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::oneshot;

use crate::domain::{Chunk, Span};

const TOKENIZER: &str = "docent_mixed";
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
const SNIPPET_CHARS: usize = 240;

#[derive(Clone, Copy)]
struct Fields {
    doc_id: Field,
    chunk: Field,
    start: Field,
    end: Field,
    page: Field,
    last_page: Field,
    tokens: Field,
    text: Field,
}

/// A chunk found by a search, with its BM25 score and a highlighted snippet (HTML-escaped text
/// with matches in `<b>`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Hit {
    #[serde(flatten)]
    pub chunk: Chunk,
    pub score: f32,
    pub snippet_html: String,
}

enum Command {
    Replace { doc_id: String, chunks: Vec<(Chunk, String)>, reply: oneshot::Sender<anyhow::Result<()>> },
    Delete { doc_id: String, reply: oneshot::Sender<anyhow::Result<()>> },
    Clear { reply: oneshot::Sender<anyhow::Result<()>> },
}

pub struct ChunkIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    commands: mpsc::Sender<Command>,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        chunk: b.add_u64_field("chunk", STORED | FAST),
        start: b.add_u64_field("start", STORED),
        end: b.add_u64_field("end", STORED),
        page: b.add_u64_field("page", STORED),
        last_page: b.add_u64_field("last_page", STORED),
        tokens: b.add_u64_field("tokens", STORED | INDEXED),
        text: b.add_text_field("text", text_options),
    };
    (b.build(), fields)
}

impl ChunkIndex {
    /// Open the index in `dir`, creating it when missing.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        fs_err::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let open = |schema: Schema| -> anyhow::Result<Index> {
            let directory = tantivy::directory::MmapDirectory::open(dir)
                .with_context(|| format!("opening the search index in {}", dir.display()))?;
            Ok(Index::open_or_create(directory, schema)?)
        };
        let index = match open(schema.clone()) {
            Ok(index) => index,
            // An index written by another version of docent: it is derived data, so start it
            // afresh; `docent serve` re-indexes every document that has no chunks.
            Err(e) if matches!(e.downcast_ref(), Some(tantivy::TantivyError::SchemaError(_))) => {
                tracing::warn!(dir = %dir.display(), "the search index has an older schema; rebuilding it");
                fs_err::remove_dir_all(dir)?;
                fs_err::create_dir_all(dir)?;
                open(schema).context("creating the search index")?
            }
            Err(e) => return Err(e.context("opening the search index")),
        };
        let analyzer =
            TextAnalyzer::builder(MixedTokenizer).filter(LowerCaser).filter(Stemmer::new(Language::English)).build();
        index.tokenizers().register(TOKENIZER, analyzer);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let writer = lock_writer(&index)?;
        let (commands, receiver) = mpsc::channel();
        std::thread::Builder::new().name("index-writer".into()).spawn(move || write_loop(writer, fields, receiver))?;
        Ok(Self { index, reader, fields, commands })
    }

    async fn send(&self, make: impl FnOnce(oneshot::Sender<anyhow::Result<()>>) -> Command) -> anyhow::Result<()> {
        let (reply, done) = oneshot::channel();
        self.commands.send(make(reply)).map_err(|_| anyhow!("the index writer has stopped"))?;
        done.await.map_err(|_| anyhow!("the index writer has stopped"))??;
        self.reader.reload()?;
        Ok(())
    }

    /// Index a document's chunks, replacing any it had.
    pub async fn replace(&self, doc_id: &str, chunks: Vec<(Chunk, String)>) -> anyhow::Result<()> {
        let doc_id = doc_id.to_owned();
        self.send(|reply| Command::Replace { doc_id, chunks, reply }).await
    }

    pub async fn delete(&self, doc_id: &str) -> anyhow::Result<()> {
        let doc_id = doc_id.to_owned();
        self.send(|reply| Command::Delete { doc_id, reply }).await
    }

    pub async fn clear(&self) -> anyhow::Result<()> {
        self.send(|reply| Command::Clear { reply }).await
    }

    fn doc_filter(&self, doc_id: &str) -> Box<dyn Query> {
        let term = TermQuery::new(Term::from_field_text(self.fields.doc_id, doc_id), IndexRecordOption::Basic);
        // Only restricts the results; the score is the text query's BM25 alone.
        Box::new(BoostQuery::new(Box::new(term), 0.0))
    }

    /// Number of chunks indexed for a document.
    pub fn count(&self, doc_id: &str) -> anyhow::Result<usize> {
        Ok(self.reader.searcher().search(&*self.doc_filter(doc_id), &tantivy::collector::Count)?)
    }

    /// Every chunk of a document, in order.
    pub fn chunks(&self, doc_id: &str) -> anyhow::Result<Vec<Chunk>> {
        let searcher = self.reader.searcher();
        let filter = self.doc_filter(doc_id);
        let n = searcher.search(&*filter, &tantivy::collector::Count)?;
        let top = searcher.search(&*filter, &TopDocs::with_limit(n.max(1)).order_by_score())?;
        let mut chunks = top
            .into_iter()
            .map(|(_, address)| self.chunk_of(&searcher.doc::<TantivyDocument>(address)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        chunks.sort_by_key(|c| c.id);
        Ok(chunks)
    }

    /// The `k` chunks of one document that best match `query` (BM25), best first. Blocking.
    pub fn search(&self, doc_id: &str, query: &str, k: usize) -> anyhow::Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.fields.text]);
        // Lenient: a question is plain text, and its quotes or colons are not query syntax errors.
        let (text_query, _) = parser.parse_query_lenient(query);
        let query =
            BooleanQuery::new(vec![(Occur::Must, self.doc_filter(doc_id)), (Occur::Must, text_query.box_clone())]);
        let top = searcher.search(&query, &TopDocs::with_limit(k.max(1)).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, self.fields.text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let chunk = self.chunk_of(&doc)?;
            hits.push(Hit { chunk, score, snippet_html: snippets.snippet_from_doc(&doc).to_html() });
        }
        Ok(hits)
    }

    fn chunk_of(&self, doc: &TantivyDocument) -> anyhow::Result<Chunk> {
        let f = &self.fields;
        let num = |field: Field| {
            doc.get_first(field).and_then(|v| v.as_u64()).ok_or_else(|| anyhow!("a chunk lacks a stored field"))
        };
        Ok(Chunk {
            id: u32::try_from(num(f.chunk)?)?,
            span: Span { start: usize::try_from(num(f.start)?)?, end: usize::try_from(num(f.end)?)? },
            page: u32::try_from(num(f.page)?)?,
            last_page: u32::try_from(num(f.last_page)?)?,
            tokens: usize::try_from(num(f.tokens)?)?,
        })
    }
}

/// The index's one writer. A service that just stopped may still be releasing it (its writer
/// thread ends when the last handle drops), so a busy lock is retried for a few seconds.
fn lock_writer(index: &Index) -> anyhow::Result<IndexWriter> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match index.writer(WRITER_HEAP_BYTES) {
            Ok(writer) => return Ok(writer),
            Err(tantivy::TantivyError::LockFailure(..)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(
                    anyhow::Error::from(e).context("locking the search index (is another docent using this data dir?)")
                )
            }
        }
    }
}

fn write_loop(mut writer: IndexWriter, f: Fields, commands: mpsc::Receiver<Command>) {
    for command in commands {
        let (result, reply) = match command {
            Command::Replace { doc_id, chunks, reply } => {
                let result = (|| {
                    writer.delete_term(Term::from_field_text(f.doc_id, &doc_id));
                    for (chunk, text) in chunks {
                        writer.add_document(doc!(
                            f.doc_id => doc_id.as_str(),
                            f.chunk => u64::from(chunk.id),
                            f.start => chunk.span.start as u64,
                            f.end => chunk.span.end as u64,
                            f.page => u64::from(chunk.page),
                            f.last_page => u64::from(chunk.last_page),
                            f.tokens => chunk.tokens as u64,
                            f.text => text,
                        ))?;
                    }
                    writer.commit()?;
                    Ok(())
                })();
                (result, reply)
            }
            Command::Delete { doc_id, reply } => {
                writer.delete_term(Term::from_field_text(f.doc_id, &doc_id));
                (writer.commit().map(drop).map_err(anyhow::Error::from), reply)
            }
            Command::Clear { reply } => {
                let result = writer.delete_all_documents().and_then(|_| writer.commit()).map(drop);
                (result.map_err(anyhow::Error::from), reply)
            }
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "index write failed; rolling back");
            let _ = writer.rollback();
        }
        let _ = reply.send(result);
    }
}
