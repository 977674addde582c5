//! The engine queues' per-operation table: every SQS operation provisiond serves, who may call
//! it and where it runs. Operations not in it answer `UnknownOperationException`.
//! `docs/compatibility.md` says the same (a test holds them together).

use crate::served::{Facts, ANY_KEY, ANY_KEY_ON_WRITER, ANY_KEY_WAITS, ANY_KEY_WRITES};
use provisiond_model::sqs::Operation::{self, *};

/// The served operations. On the writer: the queue writes that never wait. `ReceiveMessage`
/// is not, since it may long-poll, and it claims messages, so it is no inline read either.
pub const TABLE: &[(Operation, Facts)] = &[
    (GetQueueUrl, ANY_KEY),
    (ListQueues, ANY_KEY),
    (GetQueueAttributes, ANY_KEY),
    (ReceiveMessage, ANY_KEY_WAITS),
    (DeleteMessage, ANY_KEY_ON_WRITER),
    (DeleteMessageBatch, ANY_KEY_ON_WRITER),
    (ChangeMessageVisibility, ANY_KEY_ON_WRITER.unaudited()),
    (ChangeMessageVisibilityBatch, ANY_KEY_ON_WRITER.unaudited()),
    (SendMessage, ANY_KEY_ON_WRITER),
    (SendMessageBatch, ANY_KEY_ON_WRITER),
    (PurgeQueue, ANY_KEY_ON_WRITER),
    (StartMessageMoveTask, ANY_KEY_WRITES),
    (ListMessageMoveTasks, ANY_KEY),
    (CancelMessageMoveTask, ANY_KEY_WRITES),
    (ListDeadLetterSourceQueues, ANY_KEY),
];

/// What the table says of `operation`; `None` when it is not served.
pub fn facts(operation: Operation) -> Option<Facts> {
    TABLE
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, facts)| *facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_is_audited_and_no_read() {
        let named: Vec<(&str, Facts)> = TABLE.iter().map(|(op, f)| (op.name(), *f)).collect();
        let wrong = crate::served::audit_mistakes(&named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_table_and_the_compatibility_doc_agree() {
        let named: Vec<(&str, Facts)> = TABLE.iter().map(|(op, f)| (op.name(), *f)).collect();
        let wrong = crate::served::disagreements("SQS", &named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
