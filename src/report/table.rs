//! Terminal tables (comfy-table), one look for every command, sized to the terminal: its
//! width, `COLUMNS` when set, 100 columns when stdout is neither. Sids are abbreviated
//! (`AC4167…3a05`) and optional columns dropped before any cell would wrap.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};

/// Width used when stdout is not a terminal and `COLUMNS` is not set.
const DEFAULT_WIDTH: u16 = 100;

/// The width the terminal output fits in.
pub fn terminal_width() -> u16 {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| *c >= 20)
    {
        return columns;
    }
    Table::new().width().unwrap_or(DEFAULT_WIDTH)
}

/// `AC4167c593eb1e01abd9fe399d07823a05` -> `AC4167…3a05`: a Twilio sid (two letters and 32
/// hex digits) short enough for a table cell and still recognisable; other text unchanged.
pub fn short_sid(text: &str) -> String {
    let is_sid = text.len() == 34
        && text[..2].chars().all(|c| c.is_ascii_uppercase())
        && text[2..].chars().all(|c| c.is_ascii_hexdigit());
    if is_sid {
        format!("{}…{}", &text[..6], &text[30..])
    } else {
        text.to_string()
    }
}

/// `text` wrapped at spaces to lines of at most `width` characters (a word longer than a
/// line stays whole on its own line).
pub fn wrap(text: &str, width: u16) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width as usize {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

/// A table with the project's look; columns named in `header`. Columns whose header is in
/// `numeric` are right-aligned. It fits the terminal width, wrapping only at spaces.
pub fn new_table(header: &[&str], numeric: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(terminal_width())
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

/// Gives every column at least the width of its longest word, so that a cell wraps only
/// between words (the table grows past the width rather than split a name). Call it once the
/// rows are in.
pub fn keep_words_whole(table: &mut Table) {
    let columns = table.column_count();
    for i in 0..columns {
        let header = table
            .header()
            .and_then(|h| h.cell_iter().nth(i))
            .map(|c| c.content())
            .unwrap_or_default();
        let longest = table
            .column_cells_iter(i)
            .flatten()
            .map(|c| c.content())
            .chain(std::iter::once(header))
            .flat_map(|text| {
                text.split_whitespace()
                    .map(|w| w.chars().count())
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(1);
        if let Some(column) = table.column_mut(i) {
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(
                // The boundary counts the padding (one space each side) too.
                (longest + 2).min(u16::MAX as usize) as u16,
            )));
        }
    }
}

/// A table of `rows` that fits `width`: while it would be wider, the columns of `droppable`
/// (indices into `header`, the least useful first) are left out, so that no cell wraps.
pub fn fitting_table(
    header: &[&str],
    numeric: &[&str],
    rows: &[Vec<String>],
    droppable: &[usize],
    width: u16,
) -> Table {
    fit(header, numeric, rows, droppable, width, false)
}

/// Like [`fitting_table`], but cells may wrap between words: columns are left out only while
/// the table, its cells wrapped, would still be wider than `width` (no word is ever split).
pub fn wrapping_table(
    header: &[&str],
    numeric: &[&str],
    rows: &[Vec<String>],
    droppable: &[usize],
    width: u16,
) -> Table {
    fit(header, numeric, rows, droppable, width, true)
}

fn fit(
    header: &[&str],
    numeric: &[&str],
    rows: &[Vec<String>],
    droppable: &[usize],
    width: u16,
    wrap_cells: bool,
) -> Table {
    let mut keep: Vec<usize> = (0..header.len()).collect();
    let build = |keep: &[usize], dynamic: bool| {
        let names: Vec<&str> = keep.iter().map(|i| header[*i]).collect();
        let mut table = new_table(&names, numeric);
        table.set_content_arrangement(if dynamic {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        });
        for row in rows {
            table.add_row(
                keep.iter()
                    .map(|i| row.get(*i).cloned().unwrap_or_default()),
            );
        }
        if dynamic {
            table.set_width(width);
            keep_words_whole(&mut table);
        }
        table
    };
    for drop in droppable.iter().copied().chain(std::iter::once(usize::MAX)) {
        let widest = build(&keep, wrap_cells)
            .to_string()
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        if widest <= width as usize || drop == usize::MAX {
            break;
        }
        keep.retain(|i| *i != drop);
    }
    build(&keep, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_abbreviated_and_other_text_kept() {
        assert_eq!(
            short_sid("AC4167c593eb1e01abd9fe399d07823a05"),
            "AC4167…3a05"
        );
        assert_eq!(short_sid("(to create)"), "(to create)");
        assert_eq!(short_sid("AC123"), "AC123");
    }

    #[test]
    fn prose_wraps_between_words() {
        assert_eq!(wrap("one two three four", 9), "one two\nthree\nfour");
        assert_eq!(
            wrap("AC4167c593eb1e01abd9fe399d07823a05 x", 10),
            "AC4167c593eb1e01abd9fe399d07823a05\nx"
        );
    }

    #[test]
    fn columns_are_dropped_before_a_cell_wraps() {
        let rows = vec![vec![
            "Falcon Flights".to_string(),
            "a rather long note that would wrap".to_string(),
            "96".to_string(),
        ]];
        let table = fitting_table(&["customer", "note", "lost"], &["lost"], &rows, &[1], 40);
        let text = table.to_string();
        assert!(!text.contains("note"), "{text}");
        assert!(
            text.contains("Falcon Flights") && text.contains("96"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
    }
}
