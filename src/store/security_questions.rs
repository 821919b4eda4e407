//! Security questions: a user's support question and the hash of its answer, which an
//! operator checks before acting for a caller.

use super::{record, Store, StoreResult, UserId};
use crate::clock::Timestamp;

/// A stored support question; the answer only as a hash.
#[derive(Clone, sqlx::FromRow)]
pub struct SecurityQuestionRecord {
    pub question: String,
    pub answer_hash: String,
}

impl Store {
    pub async fn security_question(
        &self,
        user: UserId,
    ) -> StoreResult<Option<SecurityQuestionRecord>> {
        self.optional(
            sqlx::query("SELECT question, answer_hash FROM security_questions WHERE user_id = $1")
                .bind(user),
            record,
        )
        .await
    }

    /// Sets or replaces a user's support question and answer hash.
    pub async fn set_security_question(
        &self,
        user: UserId,
        question: &str,
        answer_hash: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.run(
            sqlx::query(
                "INSERT INTO security_questions (user_id, question, answer_hash, set_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
                 question = excluded.question, answer_hash = excluded.answer_hash, set_at = excluded.set_at",
            )
            .bind(user)
            .bind(question)
            .bind(answer_hash)
            .bind(now),
        )
        .await
    }
}
