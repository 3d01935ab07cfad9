//! Collects the figures as they are measured, prints each at once and a markdown table at the end.

use std::fmt::Write as _;

/// Whether a figure met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Miss,
    /// Not measured (the reason is in the result).
    Skip,
    /// Measured and printed, with no target of its own (the target column says what it shows).
    Info,
}

impl Status {
    /// `Pass` if `ok`, else `Miss`.
    pub fn of(ok: bool) -> Status {
        if ok {
            Status::Pass
        } else {
            Status::Miss
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Miss => "MISS",
            Status::Skip => "SKIP",
            Status::Info => "INFO",
        }
    }
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub what: String,
    pub strata: String,
    pub peer: String,
    pub result: String,
    pub target: String,
    pub status: Status,
}

#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Records a figure and prints it.
    pub fn add(&mut self, row: Row) {
        println!(
            "  => [{}] {}: strata {} | peer {} | result {} (target {}) {}",
            row.id,
            row.what,
            row.strata,
            row.peer,
            row.result,
            row.target,
            row.status.label()
        );
        self.rows.push(row);
    }

    /// Records a figure that could not be measured.
    pub fn skip(&mut self, id: &str, what: &str, target: &str, why: &str) {
        self.add(Row {
            id: id.into(),
            what: what.into(),
            strata: "-".into(),
            peer: "-".into(),
            result: format!("not measured: {why}"),
            target: target.into(),
            status: Status::Skip,
        });
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The results as a markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| # | figure | strata | peer | result | target | status |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.what,
                r.strata,
                r.peer,
                r.result,
                r.target,
                r.status.label()
            );
        }
        s
    }
}
