//! Sessions: a sliding idle timer (written at most once a minute), an absolute cap, and
//! sign-out that ends the session on the server. The one liveness rule serves tenant and
//! operator sessions alike. "Your sessions" in Settings: a user's own live sessions
//! (device, address, signed in, last seen), any one of which — or all the others — they
//! may end.

use std::time::Duration;

use super::guard::Refusal;
use super::{service, Client, Context, Policy, Unexpected};
use crate::audit::{Actor, Event, EventKind};
use crate::auth::token;
use crate::clock::Timestamp;
use crate::store::{SessionId, SessionOrigin, SessionRecord, UserRecord};

/// What a browser says it is, in a few words for "Your sessions". Read from the
/// User-Agent once, at the edge; the header itself is never kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Device {
    browser: Option<&'static str>,
    system: Option<&'static str>,
}

/// User-Agent marks and the browser they name, the first match winning (Edge and Opera
/// also say "Chrome", Chrome also says "Safari").
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
];

/// User-Agent marks and the operating system they name (Android says "Linux" too).
const SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
];

impl Device {
    pub fn from_user_agent(user_agent: &str) -> Device {
        let find = |table: &[(&str, &'static str)]| {
            table
                .iter()
                .find(|(mark, _)| user_agent.contains(mark))
                .map(|(_, name)| *name)
        };
        Device {
            browser: find(BROWSERS),
            system: find(SYSTEMS),
        }
    }

    /// "Firefox on Linux", "Safari", "A browser on Windows", "Unknown device".
    pub fn describe(self) -> String {
        match (self.browser, self.system) {
            (Some(b), Some(s)) => format!("{b} on {s}"),
            (Some(b), None) => b.to_owned(),
            (None, Some(s)) => format!("A browser on {s}"),
            (None, None) => "Unknown device".to_owned(),
        }
    }
}

impl Client {
    /// Where a session opened for this client comes from, to keep with it.
    pub(crate) fn session_origin(&self) -> SessionOrigin {
        SessionOrigin {
            device: self.device.describe(),
            client_addr: self.addr_string(),
        }
    }
}

/// One of the user's own live sessions, as "Your sessions" lists it.
#[derive(Debug, Clone)]
pub struct OwnSession {
    /// The row's id: opaque enough to name it in a form, and useless without the user's
    /// own session (only the owner may end it). Never the token.
    pub id: SessionId,
    pub device: String,
    pub address: Option<String>,
    pub signed_in: Timestamp,
    pub last_seen: Timestamp,
    /// The session of the request that asked.
    pub current: bool,
}

/// What ending one of one's sessions came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Another of the user's sessions ended.
    Other,
    /// The asking session itself ended: the browser is signed out.
    Current,
    /// No session of this user has that id (another user's, or already gone); nothing changed.
    NotFound,
}

/// What [`Policy::liveness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Ended,
    Live { slide: bool },
}

impl Policy {
    /// Whether a session (tenant or operator) created and last seen at these times is
    /// still live at `now` — inside both the idle time and the cap — and whether its idle
    /// timer is due to be written again.
    fn liveness(&self, created_at: Timestamp, last_seen_at: Timestamp, now: Timestamp) -> Liveness {
        let idle_end = last_seen_at.plus(self.session_idle);
        let hard_end = created_at.plus(self.session_max);
        if now >= idle_end || now >= hard_end {
            Liveness::Ended
        } else {
            Liveness::Live {
                slide: last_seen_at.until(now) >= self.session_touch_every,
            }
        }
    }
}

/// Which table a session lives in, for [`keep_alive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionOf {
    User,
    Operator,
}

/// The one liveness rule, applied to a session read at `now`: past the idle time or the
/// cap it is deleted and not live; when its idle timer is due it slides, and a session
/// ended meanwhile elsewhere (nothing to touch) is not live either.
pub(crate) async fn keep_alive(
    ctx: &Context,
    of: SessionOf,
    id: SessionId,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    now: Timestamp,
) -> Result<bool, Unexpected> {
    match ctx.policy.liveness(created_at, last_seen_at, now) {
        Liveness::Ended => {
            match of {
                SessionOf::User => ctx.store.delete_session(id).await?,
                SessionOf::Operator => ctx.store.delete_operator_session(id).await?,
            }
            Ok(false)
        }
        Liveness::Live { slide: true } => Ok(match of {
            SessionOf::User => ctx.store.touch_session(id, now).await?,
            SessionOf::Operator => ctx.store.touch_operator_session(id, now).await?,
        }),
        Liveness::Live { slide: false } => Ok(true),
    }
}

/// A live session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl SessionUser {
    /// The signed-in user as the audit log names them, acting from `client`.
    pub fn actor(&self, client: &Client) -> Actor {
        Actor::new(self.user.username().to_string(), client.addr)
    }

    /// Whether the password was proven in this session (at sign-in, or typed again)
    /// within [`RECENT_SIGN_IN`] of `now`.
    pub fn signed_in_recently(&self, now: Timestamp) -> bool {
        self.session.authenticated_at.until(now) < RECENT_SIGN_IN
    }
}

/// How recently the password must have been proven in a session for what a borrowed
/// session must not do without it: reveal the SIP secret, add a second factor.
pub const RECENT_SIGN_IN: Duration = Duration::from_secs(15 * 60);

/// Why a step that needs a recent sign-in did not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfirm {
    /// Not signed in recently and no password given: the page asks for it.
    PasswordNeeded,
    /// The password typed was refused (wrong, locked, busy).
    Refused(Refusal),
}

/// Proof that whoever holds `su` knows the password now: a sign-in within
/// [`RECENT_SIGN_IN`], or `password`, checked against the same lockout as a sign-in
/// (`why` goes to the audit log on a failure), which renews the session's proof.
pub(crate) async fn prove_recent_sign_in(
    ctx: &Context,
    su: &SessionUser,
    password: Option<&str>,
    client: Client,
    why: &'static str,
) -> Result<Result<(), Reconfirm>, Unexpected> {
    let now = ctx.now();
    if su.signed_in_recently(now) {
        return Ok(Ok(()));
    }
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(Err(Reconfirm::PasswordNeeded));
    };
    if let Err(r) = ctx
        .guard()
        .confirm_password(su, password, client, why)
        .await?
    {
        return Ok(Err(Reconfirm::Refused(r)));
    }
    ctx.store
        .session_reauthenticated(su.session.id, now)
        .await?;
    Ok(Ok(()))
}

service!(
    /// Tenant users' sessions.
    Sessions
);

impl Sessions {
    /// Whether a step that needs a recent sign-in (see [`RECENT_SIGN_IN`]) must ask
    /// `su` for the password now.
    pub fn password_needed(&self, su: &SessionUser) -> bool {
        !su.signed_in_recently(self.ctx.now())
    }

    /// The session behind a cookie value, if it is live; slides its idle timer.
    pub async fn authenticate(&self, cookie: &str) -> Result<Option<SessionUser>, Unexpected> {
        if !token::looks_like_token(cookie) {
            return Ok(None);
        }
        let ctx = &self.ctx;
        let now = ctx.now();
        let Some((session, user)) = ctx
            .store
            .session_with_user(&token::token_hash(cookie), now)
            .await?
        else {
            return Ok(None);
        };
        // A suspended tenant's sessions were ended; none may outlive it in a cache.
        if user.tenant_suspended {
            return Ok(None);
        }
        let (id, created, seen) = (session.id, session.created_at, session.last_seen_at);
        if !keep_alive(ctx, SessionOf::User, id, created, seen, now).await? {
            return Ok(None);
        }
        Ok(Some(SessionUser { session, user }))
    }

    /// Ends this session on the server.
    pub async fn sign_out(&self, su: &SessionUser, client: Client) -> Result<(), Unexpected> {
        self.ctx.store.delete_session(su.session.id).await?;
        let name = su.user.username().to_string();
        let addr = client.addr_string();
        self.ctx
            .audit(Event::from_addr(
                EventKind::SignOut,
                su.user.tenant_id,
                &name,
                addr.as_deref(),
            ))
            .await
    }

    /// The user's live sessions: the asking one first, then the most recently seen.
    pub async fn own_sessions(&self, su: &SessionUser) -> Result<Vec<OwnSession>, Unexpected> {
        let ctx = &self.ctx;
        let now = ctx.now();
        let mut sessions: Vec<OwnSession> = ctx
            .store
            .user_sessions(su.user.id)
            .await?
            .into_iter()
            .filter(|s| ctx.policy.liveness(s.created_at, s.last_seen_at, now) != Liveness::Ended)
            .map(|s| OwnSession {
                current: s.id == su.session.id,
                id: s.id,
                device: s.device.unwrap_or_else(|| "Unknown device".to_owned()),
                address: s.client_addr,
                signed_in: s.created_at,
                last_seen: s.last_seen_at,
            })
            .collect();
        sessions.sort_by_key(|s| !s.current);
        Ok(sessions)
    }

    /// Ends one of the user's own sessions (the asking one included: that is signing out).
    pub async fn end_own(
        &self,
        su: &SessionUser,
        id: SessionId,
        client: Client,
    ) -> Result<Ended, Unexpected> {
        if !self.ctx.store.end_user_session(su.user.id, id).await? {
            return Ok(Ended::NotFound);
        }
        let current = id == su.session.id;
        let detail = if current {
            "this session, from Your sessions"
        } else {
            "another session, from Your sessions"
        };
        self.audit_ended(su, client, detail).await?;
        Ok(if current {
            Ended::Current
        } else {
            Ended::Other
        })
    }

    /// Ends every session of the user but the asking one; how many ended.
    pub async fn end_others(&self, su: &SessionUser, client: Client) -> Result<u64, Unexpected> {
        let ended = self
            .ctx
            .store
            .end_other_sessions(su.user.id, su.session.id)
            .await?;
        let detail = format!("{ended} other session(s), from Your sessions");
        self.audit_ended(su, client, &detail).await?;
        Ok(ended)
    }

    async fn audit_ended(
        &self,
        su: &SessionUser,
        client: Client,
        detail: &str,
    ) -> Result<(), Unexpected> {
        let name = su.user.username().to_string();
        let addr = client.addr_string();
        self.ctx
            .audit(Event {
                detail: Some(detail),
                ..Event::from_addr(
                    EventKind::SignOut,
                    su.user.tenant_id,
                    &name,
                    addr.as_deref(),
                )
            })
            .await
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn database_answers(&self) -> bool {
        match self.ctx.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "health check: the database does not answer");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_becomes_a_few_words() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1", "Chrome on iPhone"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0 Safari/537.36", "Chrome on Linux"),
            ("curl/8.5.0", "curl"),
            ("Mozilla/5.0 (Windows NT 10.0)", "A browser on Windows"),
            ("", "Unknown device"),
            ("\u{0}<script>", "Unknown device"),
        ];
        for (ua, words) in cases {
            assert_eq!(Device::from_user_agent(ua).describe(), words, "{ua:?}");
        }
    }
}
