//! The facts each service's per-operation table gives about an operation it serves: who may
//! call it, where it runs and whether the audit log records it. One table per service (`catalog::operations`,
//! `proton::operations`, `queue::operations`) is the only place these are said; the request
//! path reads it (served or `UnknownOperationException`, the caller checked before the
//! operation runs, the writer or the blocking pool), and so do the docs' tests.

/// Who may make a call, once its signature is verified with a live key of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Only the account's administrators (`admin create-key --admin`).
    Admin,
    /// Any key of the account.
    AnyKey,
    /// Any key of the account carrying the workflow token of the record it reports on (the
    /// engine callbacks; the token is checked by the operation, SPEC §5.3).
    WorkflowToken,
}

impl Caller {
    /// How `docs/compatibility.md` names the caller.
    pub fn doc_name(self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::AnyKey => "any key",
            Caller::WorkflowToken => "workflow token",
        }
    }
}

/// Where an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A read that never waits: on a store whose reads are local (`Store::local_reads`,
    /// SQLite's microseconds) on the request's own task, with no thread hop; on any other
    /// store on the pool. It must not write (`store::reading_only` refuses it).
    Inline,
    /// On a blocking thread that opens its own transactions.
    OnPool,
    /// Whole on the store's writer (`Store::run_on_writer`): it never blocks, writes in one
    /// transaction and leaves its only outside effect to `store::after_commit`.
    OnWriter,
}

/// What a service's table says about one operation it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub caller: Caller,
    pub runs: Runs,
    /// A write call: each call is an entry of the audit log (`audit.rs`), written in the
    /// transaction of its change.
    pub audited: bool,
}

impl Facts {
    /// The same operation, not audited: a write that is an engine's bookkeeping of a task it
    /// holds (a visibility change), not a change anyone asks who made.
    pub const fn unaudited(self) -> Facts {
        Facts {
            audited: false,
            ..self
        }
    }
}

/// A read any key may make, inline.
pub const ANY_KEY: Facts = Facts {
    caller: Caller::AnyKey,
    runs: Runs::Inline,
    audited: false,
};

/// A read any key may make whose cost grows with the account (a search that must look at
/// every provisioned product to count its matches), on the pool: however long it takes, it
/// never holds one of the threads that answer requests.
pub const ANY_KEY_LONG_READ: Facts = Facts {
    caller: Caller::AnyKey,
    runs: Runs::OnPool,
    audited: false,
};

/// A call any key may make that may wait (a long poll), on the pool; not audited.
pub const ANY_KEY_WAITS: Facts = Facts {
    caller: Caller::AnyKey,
    runs: Runs::OnPool,
    audited: false,
};

/// A write any key may make, on the pool.
pub const ANY_KEY_WRITES: Facts = Facts {
    caller: Caller::AnyKey,
    runs: Runs::OnPool,
    audited: true,
};

/// A write only administrators may make, on the pool.
pub const ADMIN: Facts = Facts {
    caller: Caller::Admin,
    runs: Runs::OnPool,
    audited: true,
};

/// A write any key may make, run on the writer.
pub const ANY_KEY_ON_WRITER: Facts = Facts {
    caller: Caller::AnyKey,
    runs: Runs::OnWriter,
    audited: true,
};

/// An engine callback, run on the writer.
pub const WORKFLOW_TOKEN_ON_WRITER: Facts = Facts {
    caller: Caller::WorkflowToken,
    runs: Runs::OnWriter,
    audited: true,
};

/// The operations of a table audited against what their names say, for a test of each table:
/// a name that changes something (`Create…`, `Delete…`, `Notify…`, `SendMessage`, …) must be
/// audited and one that reads (`Get…`, `List…`, `Describe…`, …) must not. The only writes left
/// out are the engines' visibility changes, made unaudited on purpose ([`Facts::unaudited`]).
pub fn audit_mistakes(named: &[(&str, Facts)]) -> Vec<String> {
    const READS: &[&str] = &["Get", "List", "Describe", "Search", "Scan", "Receive"];
    const UNAUDITED_WRITES: &[&str] = &["ChangeMessageVisibility", "ChangeMessageVisibilityBatch"];
    named
        .iter()
        .filter_map(|(name, facts)| {
            let reads = READS.iter().any(|r| name.starts_with(r));
            let expected = !reads && !UNAUDITED_WRITES.contains(name);
            (facts.audited != expected).then(|| {
                format!(
                    "{name}: audited is {}, its name says {expected}",
                    facts.audited
                )
            })
        })
        .collect()
}

/// The rows of `docs/compatibility.md` for `service` whose status says `served`, as
/// `(operation, caller)`: the operations of a row are its comma-separated names, each without
/// what follows it in parentheses. For the tests that hold each table and the docs together.
pub fn documented(compatibility: &str, service: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in compatibility.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | service | operations | status | caller | validated | tested |
        if cells.len() < 7 || cells[1] != service || !cells[3].starts_with("served") {
            continue;
        }
        for name in cells[2].split(',') {
            let name = name.split('(').next().unwrap_or("").trim();
            if !name.is_empty() {
                out.push((name.to_string(), cells[4].to_string()));
            }
        }
    }
    out
}

/// Checks that `table` (each served operation's name and facts) and `docs/compatibility.md`
/// list the same operations of `service` with the same callers; the differences otherwise.
pub fn disagreements(service: &str, table: &[(&str, Facts)]) -> Vec<String> {
    let docs = documented(include_str!("../../../docs/compatibility.md"), service);
    let mut out = Vec::new();
    for (name, facts) in table {
        match docs.iter().find(|(n, _)| n == name) {
            None => out.push(format!("{name} is served but not in docs/compatibility.md")),
            Some((_, caller)) if caller != facts.caller.doc_name() => out.push(format!(
                "{name}: the table says {:?}, docs/compatibility.md says {caller:?}",
                facts.caller.doc_name()
            )),
            Some(_) => {}
        }
    }
    for (name, _) in &docs {
        if !table.iter().any(|(n, _)| n == name) {
            out.push(format!(
                "{name} is documented as served but the table does not serve it"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_rows_are_read_name_by_name() {
        let doc = "| Service | Operation | Status | Caller | Validated | Tested |\n\
                   |---|---|---|---|---|---|\n\
                   | Svc | A, B (only X), C | served (notes) | admin | model | P |\n\
                   | Svc | D | `UnknownOperationException` | — | — | P |\n\
                   | Other | E | served | any key | model | P |\n";
        assert_eq!(
            documented(doc, "Svc"),
            [
                ("A".to_string(), "admin".to_string()),
                ("B".to_string(), "admin".to_string()),
                ("C".to_string(), "admin".to_string())
            ]
        );
    }
}
