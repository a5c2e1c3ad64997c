//! Renderers: the audit's results as CSV, JSON, shell and HTML files. The files reach the disk
//! through [`crate::output`].

pub mod html;
pub mod optouts;
pub mod plan;
pub mod proposal;
pub mod table;
pub mod usage;
