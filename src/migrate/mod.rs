//! Running a plan: `apply` (journaled, resumable, idempotent writes) and `verify` (after a
//! fresh pull, every moved number is where it belongs and every lost opt-out was re-seeded).
//! docs/migration.md describes both for users.

pub mod apply;
pub mod journal;
pub mod plan;
pub mod verify;

pub use apply::{apply, ApplyOptions, ApplyReport, Outcome};
pub use plan::{journal_path, LoadedPlan};
pub use verify::{verify, VerifyReport, VerifyRow, VERIFY_HEADER};

/// Exit code of `apply` when work is left for blockers or missing placeholders, and of
/// `verify` when a number is not as planned.
pub const EXIT_WORK_LEFT: i32 = crate::exit_code::FINDINGS;
