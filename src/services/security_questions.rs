//! A tenant admin's support security question: the provider's operators ask it when an
//! admin who is locked out calls. The answer is kept only as an argon2id hash of its folded
//! form; setting it needs the portal password.

use super::guard::Refusal;
use super::tenant_admin::{Admin, TenantActor};
use super::{service, store_error_is_unexpected, Client, SessionUser, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::domain::{SecurityAnswer, SecurityQuestion};
use crate::store::UserRecord;

#[derive(Debug, thiserror::Error)]
pub enum SecurityQuestionError {
    /// The password was wrong or missing, the name is locked, or the pool is busy.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

store_error_is_unexpected!(SecurityQuestionError);

service!(
    /// Admins' support security questions.
    SecurityQuestions
);

impl SecurityQuestions {
    /// The question the user has set, if any (never the answer).
    pub async fn question_of(&self, su: &SessionUser) -> Result<Option<String>, Unexpected> {
        Ok(self
            .ctx
            .store
            .security_question(su.user.id)
            .await?
            .map(|q| q.question))
    }

    /// Sets the admin's question and answer, with their portal password confirmed (counted
    /// toward the lockout like any other password check).
    pub async fn set(
        &self,
        admin: &Admin,
        question: &SecurityQuestion,
        answer: &SecurityAnswer,
        current_password: &str,
        client: Client,
    ) -> Result<(), SecurityQuestionError> {
        if current_password.is_empty() {
            return Err(SecurityQuestionError::Refused(Refusal::WrongPassword));
        }
        let user = &admin.session().user;
        self.ctx
            .guard()
            .confirm_password(
                admin.session(),
                current_password,
                client,
                "wrong password when setting the security question",
            )
            .await?
            .map_err(SecurityQuestionError::Refused)?;
        self.set_unconfirmed(user, question, answer, &admin.actor())
            .await?;
        Ok(())
    }

    /// Sets an admin's question and answer without a password: the provider's own tools
    /// (the demo tenant), and [`Self::set`] once the admin's password is confirmed; never
    /// called from a page directly.
    pub async fn set_unconfirmed(
        &self,
        user: &UserRecord,
        question: &SecurityQuestion,
        answer: &SecurityAnswer,
        actor: &Actor,
    ) -> Result<(), Unexpected> {
        let ctx = &self.ctx;
        let hash = ctx.hasher.hash(answer.expose()).await?;
        ctx.store
            .set_security_question(user.id, question.as_str(), &hash, ctx.now())
            .await?;
        let subject = user.username().to_string();
        ctx.audit(Event::on(
            EventKind::SecurityQuestionSet,
            user.tenant_id,
            actor,
            &subject,
        ))
        .await
    }
}
