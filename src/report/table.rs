//! Terminal tables (comfy-table), one look for every command.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

/// A table with the project's look; columns named in `header`. Columns whose header is in
/// `numeric` are right-aligned.
pub fn new_table(header: &[&str], numeric: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for (i, name) in header.iter().enumerate() {
        if numeric.contains(name) {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    table
}
