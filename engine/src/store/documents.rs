//! The documents a store keeps for the layers above it: JSON texts of a kind the store does not
//! read, written to its journal as `Document` records (see `format.md`) and rebuilt from it at
//! open. The policy executor ([`crate::Managed`]) keeps its policy, per-volume assignments,
//! state and audit trail here; the store only makes them durable, carries them through journal
//! checkpoints and gives them back.
//!
//! Of most kinds only the latest document counts (a policy replaces the previous one); the
//! audit kind is a trail, every document of it kept, the newest [`DOCUMENT_TRAIL_MAX`] in
//! memory and through checkpoints.

use std::collections::VecDeque;

use super::*;
use crate::format::meta::{META_KIND_AUDIT, META_KIND_BRANCHES};

/// Most documents of the trail kind (the audit) kept in memory and written by a checkpoint.
pub const DOCUMENT_TRAIL_MAX: usize = 10_000;

/// One document: its kind (a `META_KIND_*` of `format::meta`) and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// What it is; the store keeps the latest of each kind, and every audit document.
    pub kind: u16,
    /// The JSON text (empty for "none", e.g. a removed policy).
    pub json: String,
}

/// The documents of a store, as its journal holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Documents {
    /// The latest document of each kind, by kind (a handful of kinds: a sorted list, not a map,
    /// which would cost the browser module a map instantiation of its own).
    latest: Vec<(u16, String)>,
    trail: VecDeque<String>,
}

impl Documents {
    /// The documents replayed from a journal, in journal order.
    pub(super) fn from_journal(documents: Vec<(u16, String)>) -> Self {
        let mut out = Documents::default();
        for (kind, json) in documents {
            out.apply(kind, json);
        }
        out
    }

    pub(super) fn apply(&mut self, kind: u16, json: String) {
        if kind == META_KIND_AUDIT {
            if self.trail.len() >= DOCUMENT_TRAIL_MAX {
                self.trail.pop_front();
            }
            self.trail.push_back(json);
        } else {
            match self.latest.binary_search_by_key(&kind, |(k, _)| *k) {
                Ok(i) => self.latest[i].1 = json,
                Err(i) => self.latest.insert(i, (kind, json)),
            }
        }
    }

    /// The latest document of `kind`, if one was ever written.
    pub fn latest(&self, kind: u16) -> Option<&str> {
        self.latest
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, json)| json.as_str())
    }

    /// The trail (audit) documents, oldest first.
    pub fn trail(&self) -> impl Iterator<Item = &str> {
        self.trail.iter().map(String::as_str)
    }

    /// The journal records that rebuild these documents (for a checkpoint).
    pub(super) fn records(&self) -> Vec<MetaRecord> {
        let latest = self.latest.iter().map(|(kind, json)| (*kind, json));
        let trail = self.trail.iter().map(|json| (META_KIND_AUDIT, json));
        latest
            .chain(trail)
            .map(|(kind, json)| MetaRecord::Document {
                kind,
                json: json.clone(),
            })
            .collect()
    }
}

impl<S: Storage> Store<S> {
    /// The documents the layers above keep in this store's journal.
    pub fn documents(&self) -> &Documents {
        &self.documents
    }

    /// Appends `documents` to the journal, in order, as one durable commit, and keeps them.
    /// Durable on return.
    pub async fn append_documents(&mut self, documents: &[Document]) -> Result<()> {
        self.check_writable()?;
        if documents.iter().any(|d| d.kind == META_KIND_BRANCHES) {
            return Err(Error::InvalidArgument(
                "the branch registry is the store's own document; use the branch operations".into(),
            ));
        }
        let records: Vec<MetaRecord> = documents
            .iter()
            .map(|d| MetaRecord::Document {
                kind: d.kind,
                json: d.json.clone(),
            })
            .collect();
        self.append_journal(&records).await?;
        for d in documents {
            self.documents.apply(d.kind, d.json.clone());
        }
        self.maybe_checkpoint_journal().await
    }
}
