//! The engine queues' per-operation table: every SQS operation provisiond serves, who may call
//! it and where it runs. Operations not in it answer `UnknownOperationException`.
//! `docs/compatibility.md` says the same (a test holds them together).

use crate::served::{Facts, ANY_KEY, ANY_KEY_ON_WRITER};
use provisiond_model::sqs::Operation::{self, *};

/// The served operations. On the writer: the queue writes that never wait. `ReceiveMessage`
/// is not, since it may long-poll.
pub const TABLE: &[(Operation, Facts)] = &[
    (GetQueueUrl, ANY_KEY),
    (ListQueues, ANY_KEY),
    (GetQueueAttributes, ANY_KEY),
    (ReceiveMessage, ANY_KEY),
    (DeleteMessage, ANY_KEY_ON_WRITER),
    (DeleteMessageBatch, ANY_KEY_ON_WRITER),
    (ChangeMessageVisibility, ANY_KEY_ON_WRITER),
    (ChangeMessageVisibilityBatch, ANY_KEY_ON_WRITER),
    (SendMessage, ANY_KEY_ON_WRITER),
    (SendMessageBatch, ANY_KEY_ON_WRITER),
    (PurgeQueue, ANY_KEY_ON_WRITER),
    (StartMessageMoveTask, ANY_KEY),
    (ListMessageMoveTasks, ANY_KEY),
    (CancelMessageMoveTask, ANY_KEY),
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
    fn the_table_and_the_compatibility_doc_agree() {
        let named: Vec<(&str, Facts)> = TABLE.iter().map(|(op, f)| (op.name(), *f)).collect();
        let wrong = crate::served::disagreements("SQS", &named);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
