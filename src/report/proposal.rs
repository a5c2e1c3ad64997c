//! `mapping.proposed.csv`: a mapping file (its first three columns) with the proposal's
//! reason and confidence, and the unmatched numbers as comment lines the mapping reader skips.

use std::path::Path;

use crate::audit::proposal::{Proposal, PROPOSAL_HEADER};
use crate::error::{Error, Result};
use crate::output::{csv_bytes, write_atomic};

pub fn render_proposal(proposal: &Proposal) -> Result<Vec<u8>> {
    let mut bytes = csv_bytes(&PROPOSAL_HEADER, &proposal.rows)?;
    if !proposal.unmatched.is_empty() {
        bytes.extend_from_slice(
            b"# Unmatched numbers: no customer found. They stay in the parent; to move one, remove the\n\
# leading \"# \" and fill in its customer (and subaccount_sid if it exists).\n",
        );
        for u in &proposal.unmatched {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            writer
                .write_record([
                    u.number.as_str(),
                    "",
                    "",
                    u.number_sid.as_str(),
                    u.friendly_name.as_str(),
                    u.reason.as_str(),
                    "none",
                ])
                .map_err(|e| Error::failed("cannot render CSV", e))?;
            let line = writer
                .into_inner()
                .map_err(|e| Error::failed("cannot render CSV", e))?;
            bytes.extend_from_slice(b"# ");
            bytes.extend_from_slice(&line);
        }
    }
    Ok(bytes)
}

pub fn write_proposal(path: &Path, proposal: &Proposal) -> Result<()> {
    write_atomic(path, &render_proposal(proposal)?)
}
