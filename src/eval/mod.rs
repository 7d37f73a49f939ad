//! `docent eval`: a reproducible comparison of the pipelines on gold data. CUAD clause
//! extraction, needles in real haystacks, and summary citation quality; the metrics are pure
//! functions (`metrics`, `score`), the items are built from files and a seed (`items`), `run`
//! drives the service, `report` summarises with intervals and draws the report.

mod charts;
pub mod items;
pub mod listing;
pub mod metrics;
mod report;
pub mod run;
pub mod score;

pub use run::{EvalArgs, EvalPipeline};
