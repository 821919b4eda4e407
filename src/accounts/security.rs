//! A tenant admin's support security question: the provider's operators ask it when an
//! admin who is locked out calls. The answer is kept only as an argon2id hash of its folded
//! form; setting it needs the portal password.

use secrecy::SecretString;

use super::sessions::NotConfirmed;
use super::{Accounts, Client, ProvisionError, SessionUser, Unexpected};
use crate::audit::{Event, EventKind};
use crate::domain::{SecurityAnswer, SecurityQuestion};
use crate::store::{UserId, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum SecurityQuestionError {
    /// Only tenant admins keep a support question.
    #[error("forbidden")]
    NotAdmin,
    /// The question or answer was refused; each message belongs to its field.
    #[error("invalid")]
    Invalid {
        question: Option<String>,
        answer: Option<String>,
    },
    #[error("wrong password")]
    WrongPassword,
    #[error("locked")]
    Locked { retry_after: std::time::Duration },
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<crate::store::StoreError> for SecurityQuestionError {
    fn from(e: crate::store::StoreError) -> Self {
        SecurityQuestionError::Unexpected(e.into())
    }
}

impl Accounts {
    /// The admin's current question, if one is set (never the answer).
    pub async fn security_question_of(
        &self,
        su: &SessionUser,
    ) -> Result<Option<String>, Unexpected> {
        Ok(self
            .store
            .security_question(su.user.id)
            .await?
            .map(|q| q.question))
    }

    /// Sets or replaces the admin's question and answer, after the portal password.
    pub async fn set_security_question(
        &self,
        su: &SessionUser,
        question: &str,
        answer: &str,
        current_password: &str,
        client: Client,
    ) -> Result<(), SecurityQuestionError> {
        if !su.user.is_admin() {
            return Err(SecurityQuestionError::NotAdmin);
        }
        let question = SecurityQuestion::parse(question);
        let answer = SecurityAnswer::parse(answer);
        let (question, answer) = match (question, answer) {
            (Ok(q), Ok(a)) => (q, a),
            (q, a) => {
                return Err(SecurityQuestionError::Invalid {
                    question: q.err().map(|e| e.to_string()),
                    answer: a.err().map(|e| e.to_string()),
                })
            }
        };
        if current_password.is_empty() {
            return Err(SecurityQuestionError::WrongPassword);
        }
        match self
            .confirm_password(
                &su.user,
                current_password,
                client,
                "wrong password when setting the security question",
            )
            .await?
        {
            Ok(()) => {}
            Err(NotConfirmed::Wrong) => return Err(SecurityQuestionError::WrongPassword),
            Err(NotConfirmed::Locked { retry_after }) => {
                return Err(SecurityQuestionError::Locked { retry_after })
            }
            Err(NotConfirmed::Busy) => return Err(SecurityQuestionError::Busy),
        }
        let name = su.user.username();
        let addr = client.addr_string();
        self.store_security_question(&su.user, &question, &answer, &name, addr.as_deref())
            .await?;
        Ok(())
    }

    /// Sets a question without a password check, for `dialtone demo` (the demo admin's
    /// question is printed with their password).
    pub async fn set_security_question_unchecked(
        &self,
        user: UserId,
        question: &str,
        answer: &str,
        actor: &str,
    ) -> Result<(), ProvisionError> {
        let invalid =
            |e: crate::domain::DomainError| ProvisionError::Unexpected(anyhow::anyhow!(e).into());
        let question = SecurityQuestion::parse(question).map_err(invalid)?;
        let answer = SecurityAnswer::parse(answer).map_err(invalid)?;
        let user =
            self.store.user_by_id(user).await?.ok_or_else(|| {
                ProvisionError::Unexpected(anyhow::anyhow!("no such user").into())
            })?;
        self.store_security_question(&user, &question, &answer, actor, None)
            .await?;
        Ok(())
    }

    async fn store_security_question(
        &self,
        user: &UserRecord,
        question: &SecurityQuestion,
        answer: &SecurityAnswer,
        actor: &str,
        addr: Option<&str>,
    ) -> Result<(), Unexpected> {
        let hash = self
            .hasher
            .hash(SecretString::from(answer.expose().to_owned()))
            .await?;
        self.store
            .set_security_question(user.id, question.as_str(), &hash, self.now())
            .await?;
        let subject = user.username();
        self.audit(Event {
            tenant: Some(user.tenant_id),
            actor: Some(actor),
            subject: Some(&subject),
            client_addr: addr,
            ..Event::new(EventKind::SecurityQuestionSet)
        })
        .await
    }
}
