//! The store's contract, module by module, through its public API alone: the same checks
//! run on SQLite (default) and on PostgreSQL (`DIALTONE_TEST_DATABASE_URL`), so a query
//! one database reads differently fails here before it fails a page.
//!
//! This is the one suite that names the store directly; the others check it through
//! `tests/common`.

mod common;

use std::time::Duration;

use dialtone::clock::Timestamp;
use dialtone::domain::{Extension, OperatorName, Role, TenantCode, Username};
use dialtone::store::{
    AuditFilter, AuditRow, Burst, CeremonyKind, Claimed, NewMail, NewPasskey, NewResetLink,
    NewTenant, NewUser, NewUserRows, PasswordChange, SealedSecrets, SessionOrigin, Store,
    StoreError, TenantId, TenantUpdate, ThrottleKey, UserId, UserWithoutSecret,
};

const NOW: Timestamp = common::START;

/// A fresh, empty store on the backend under test.
struct Fresh {
    store: Store,
    url: String,
    _dir: tempfile::TempDir,
}

impl Fresh {
    /// Makes the database refuse every new user numbered `extension` (a trigger), as a
    /// write that fails midway would: what a transaction leaves when its last step fails.
    async fn refuse_users_numbered(&self, extension: &str) {
        use sqlx::Connection;
        let statements = if self.url.starts_with("postgres") {
            vec![
                format!(
                    "CREATE FUNCTION refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.extension = '{extension}' THEN RAISE EXCEPTION 'refused'; \
                     END IF; RETURN NEW; END $$"
                ),
                "CREATE TRIGGER refuse_user BEFORE INSERT ON users FOR EACH ROW \
                 EXECUTE FUNCTION refuse_user()"
                    .to_owned(),
            ]
        } else {
            vec![format!(
                "CREATE TRIGGER refuse_user BEFORE INSERT ON users \
                 WHEN NEW.extension = '{extension}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )]
        };
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("a second connection");
        for sql in statements {
            sqlx::query(&sql).execute(&mut conn).await.expect("trigger");
        }
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match common::fresh_database().await {
        Some(url) => url,
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        ),
    };
    let store = Store::connect(&url).await.expect("store connects");
    Fresh {
        store,
        url,
        _dir: dir,
    }
}

fn code(s: &str) -> TenantCode {
    TenantCode::parse(s).expect("tenant code")
}

fn ext(s: &str) -> Extension {
    Extension::parse(s).expect("extension")
}

async fn tenant(store: &Store, c: &str) -> TenantId {
    let c = code(c);
    let domain = format!("{c}.sip.example");
    let new = NewTenant {
        code: &c,
        name: "Wicked Sprockets",
        sip_domain: &domain,
    };
    let made = audit(None, "tenant.created", "cli");
    store.insert_tenant(&new, &made, NOW).await.expect("tenant")
}

async fn user(store: &Store, tenant: TenantId, e: &str, role: Role) -> UserId {
    let e = ext(e);
    let email = format!("{e}@example.com");
    let new = NewUser {
        extension: &e,
        name: "Pat Example",
        email: Some(&email),
        role,
        password_hash: "hash",
        password_expires_at: None,
        sip_secret: Some(b"sealed"),
    };
    let name = ThrottleKey::username(&Username::parse(&format!("{e}-store")).unwrap());
    let rows = NewUserRows {
        user: new,
        username_key: &name,
        audit: audit(Some(tenant), "user.created", "cli"),
    };
    let row = store.insert_user(tenant, &rows, NOW).await;
    row.expect("user").user.id
}

fn mail(user: Option<UserId>) -> NewMail {
    NewMail {
        kind: "test",
        recipient: "201@example.com".into(),
        user_id: user,
        tenant_id: None,
        subject: "Subject".into(),
        body_text: b"text".to_vec(),
        body_html: b"html".to_vec(),
    }
}

fn audit<'a>(tenant: Option<TenantId>, kind: &'a str, actor: &'a str) -> AuditRow<'a> {
    AuditRow {
        at: NOW,
        tenant_id: tenant,
        kind,
        actor: Some(actor),
        subject: None,
        client_addr: Some("192.0.2.1"),
        detail: Some("d"),
    }
}

#[tokio::test]
async fn a_new_user_is_written_with_its_audit_event_or_not_at_all() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let e = ext("201");
    let new = NewUser {
        extension: &e,
        name: "Pat Example",
        email: None,
        role: Role::User,
        password_hash: "hash",
        password_expires_at: Some(NOW.plus(Duration::from_secs(60))),
        sip_secret: Some(b"sealed"),
    };
    let name = ThrottleKey::username(&Username::parse("201-acme").unwrap());
    let rows = NewUserRows {
        user: new,
        username_key: &name,
        audit: AuditRow {
            subject: Some("201-acme"),
            ..audit(Some(t), "user.created", "cli")
        },
    };
    let row = s.insert_user(t, &rows, NOW).await.unwrap();
    assert_eq!(row.user.username().to_string(), "201-acme");
    assert!(row.user.password_temporary && row.locked_until.is_none());
    assert_eq!(row.created_at, NOW);

    let again = s.insert_user(t, &rows, NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict)));
    let made = AuditFilter {
        username: None,
        kind: Some("user.created"),
    };
    let (events, total) = s.audit_page(t, &made, 10, 0).await.unwrap();
    assert_eq!(total, 1, "the refused second insert left no audit event");
    assert_eq!(events[0].subject.as_deref(), Some("201-acme"));
}

#[tokio::test]
async fn a_tenant_and_its_first_admin_are_written_together_or_not_at_all() {
    let f = fresh().await;
    let s = &f.store;
    let taken = tenant(s, "acme").await;
    let e = ext("200");
    let name = ThrottleKey::username(&Username::parse("200-beta").unwrap());
    let first = NewUserRows {
        user: NewUser {
            extension: &e,
            name: "Ada Admin",
            email: None,
            role: Role::Admin,
            password_hash: "hash",
            password_expires_at: Some(NOW.plus(Duration::from_secs(60))),
            sip_secret: None,
        },
        username_key: &name,
        audit: audit(Some(taken), "user.created", "cli"),
    };
    let seal = |id: TenantId| format!("sealed to {}", id.0).into_bytes();
    let made = audit(Some(taken), "tenant.created", "cli");

    // The SIP domain is another tenant's: nothing of it is written.
    let clash = NewTenant {
        code: &code("beta"),
        name: "Beta",
        sip_domain: "ACME.sip.example",
    };
    let refused = s
        .insert_tenant_with_user(&clash, &made, &first, seal, NOW)
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict)));
    assert!(s.tenant_by_code(&code("beta")).await.unwrap().is_none());

    // The tenant is written, then its admin is refused: the tenant goes too, and neither
    // event stays.
    f.refuse_users_numbered("666").await;
    let doomed = ext("666");
    let refused_admin = NewUserRows {
        user: NewUser {
            extension: &doomed,
            ..first.user
        },
        ..first
    };
    let gamma = NewTenant {
        code: &code("gamma"),
        name: "Gamma",
        sip_domain: "gamma.sip.example",
    };
    let failed = s
        .insert_tenant_with_user(&gamma, &made, &refused_admin, seal, NOW)
        .await;
    assert!(failed.is_err());
    assert!(s.tenant_by_code(&code("gamma")).await.unwrap().is_none());
    let creations = s.audit_events(None, Some("tenant.created"), 10).await;
    assert_eq!(creations.unwrap().len(), 1, "only acme's");

    let beta = NewTenant {
        code: &code("beta"),
        name: "Beta",
        sip_domain: "beta.sip.example",
    };
    let (tenant, row) = s
        .insert_tenant_with_user(&beta, &made, &first, seal, NOW)
        .await
        .unwrap();
    let id = tenant.tenant.id;
    assert_eq!(tenant.tenant.code.as_str(), "beta");
    assert_eq!(tenant.created_at, NOW);
    assert_eq!(row.user.tenant_id, id);
    assert_eq!(row.user.username().to_string(), "200-beta");
    assert_eq!(row.user.role, Role::Admin);
    let credential = s.sip_credential("beta.sip.example", &e, NOW).await.unwrap();
    assert_eq!(
        credential
            .expect("the admin has a SIP secret")
            .sealed_secret,
        format!("sealed to {}", id.0).into_bytes(),
        "sealed to the new tenant's id"
    );
    // Both events are the new tenant's, not the one the caller's rows named.
    let all = AuditFilter {
        username: None,
        kind: None,
    };
    let (events, total) = s.audit_page(id, &all, 10, 0).await.unwrap();
    assert_eq!(total, 2);
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["tenant.created", "user.created"]);
    let (_, elsewhere) = s.audit_page(taken, &all, 10, 0).await.unwrap();
    assert_eq!(elsewhere, 1, "only acme's own creation");
}

#[tokio::test]
async fn tenants_are_unique_searchable_and_paged_by_cursor() {
    let f = fresh().await;
    let s = &f.store;
    let acme = tenant(s, "acme").await;
    tenant(s, "beta").await;
    let again = NewTenant {
        code: &code("acme"),
        name: "Other",
        sip_domain: "other.example",
    };
    assert!(matches!(
        s.insert_tenant(&again, &audit(None, "tenant.created", "cli"), NOW)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.tenant_by_code(&code("acme")).await.unwrap().unwrap().id,
        acme
    );
    assert!(s.tenant_by_code(&code("nobody")).await.unwrap().is_none());

    let (found, total) = s.list_tenants(Some("BET"), 10, 0).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].tenant.code.as_str(), "beta");
    let (none, total) = s.list_tenants(Some("%"), 10, 0).await.unwrap();
    assert!(
        none.is_empty() && total == 0,
        "a wildcard is searched literally"
    );

    let after = s.tenants_after(Some("acme"), 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].tenant.code.as_str(), "beta");
    let change = TenantUpdate {
        name: Some("Acme Renamed"),
        sip_domain: Some(("acme.sip.example", "beta.sip.example")),
    };
    assert!(matches!(
        s.update_tenant(acme, &change, NOW).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn a_suspended_tenant_loses_its_sessions_and_queues_notices() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let u = user(s, t, "201", Role::User).await;
    s.insert_session(b"token", u, NOW).await.unwrap();
    let before = s.pbx_queue_depth().await.unwrap();

    assert!(s.suspend_tenant(t, NOW).await.unwrap());
    assert!(
        !s.suspend_tenant(t, NOW).await.unwrap(),
        "already suspended"
    );
    assert_eq!(s.count_user_sessions(u).await.unwrap(), 0);
    assert_eq!(s.pbx_queue_depth().await.unwrap(), before + 1);
    let row = s.tenant_row(&code("acme")).await.unwrap().unwrap();
    assert_eq!(row.suspended_at, Some(NOW));
    assert!(s.resume_tenant(t).await.unwrap());
    assert!(!s.resume_tenant(t).await.unwrap(), "not suspended");

    s.delete_tenant(t, NOW).await.unwrap();
    assert!(s.tenant_by_code(&code("acme")).await.unwrap().is_none());
    assert!(s.user_by_id(u).await.unwrap().is_none());
}

#[tokio::test]
async fn users_stay_in_their_tenant_and_the_last_admin_stays() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let other = tenant(s, "beta").await;
    let admin = user(s, t, "200", Role::Admin).await;
    user(s, t, "9", Role::User).await;
    user(s, t, "10", Role::User).await;
    let stranger = user(s, other, "201", Role::User).await;

    let name = Username::new(ext("200"), code("acme"));
    let found = s.user_by_username(&name).await.unwrap().unwrap();
    assert_eq!((found.id, found.role), (admin, Role::Admin));
    assert!(found.has_sip_secret && !found.has_pin);
    assert!(s.user_in_tenant(t, "201").await.unwrap().is_none());
    assert!(s.user_in_tenant(other, "201").await.unwrap().is_some());
    assert_eq!(
        s.users_by_email("201@example.com").await.unwrap()[0].id,
        stranger
    );

    let order: Vec<_> = s.users_after(t, None, NOW, 10).await.unwrap();
    let order: Vec<_> = order.iter().map(|r| r.user.extension.as_str()).collect();
    assert_eq!(order, ["9", "10", "200"], "shorter numbers first");
    let (page, total) = s.list_users(t, Some("pat"), NOW, 2, 0).await.unwrap();
    assert_eq!((page.len(), total), (2, 3));

    let demoted = s
        .update_user(t, admin, "Pat", None, "user", None)
        .await
        .unwrap();
    assert!(!demoted, "the tenant's last admin keeps the role");
    assert!(!s.delete_user(t, admin, "200@acme", NOW).await.unwrap());
    assert!(
        !s.delete_user(t, stranger, "201@beta", NOW).await.unwrap(),
        "another tenant's user is out of reach"
    );
    assert!(s.user_by_id(stranger).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lockout_shows_in_the_lists_through_the_throttle_key() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    user(s, t, "200", Role::Admin).await;
    let key = ThrottleKey::username(&Username::new(ext("200"), code("acme")));
    let until = NOW.plus(Duration::from_secs(900));
    for _ in 0..3 {
        s.throttle_count(&key, NOW, Duration::from_secs(900))
            .await
            .unwrap();
        s.throttle_fail(&key, 3, until).await.unwrap();
    }
    assert_eq!(s.throttle_locked_until(&key).await.unwrap(), Some(until));

    let (rows, _) = s.list_users(t, None, NOW, 10, 0).await.unwrap();
    assert_eq!(rows[0].locked_until, Some(until));
    assert_eq!(
        s.tenant_admins(t, NOW).await.unwrap()[0].locked_until,
        Some(until)
    );
    assert_eq!(
        s.api_user(t, "200", NOW)
            .await
            .unwrap()
            .unwrap()
            .locked_until,
        Some(until)
    );

    assert!(s.throttle_clear(&key).await.unwrap());
    let (rows, _) = s.list_users(t, None, NOW, 10, 0).await.unwrap();
    assert_eq!(rows[0].locked_until, None);
}

#[tokio::test]
async fn a_new_password_ends_every_session_but_the_one_kept() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let u = user(s, t, "201", Role::User).await;
    s.insert_session(b"one", u, NOW).await.unwrap();
    s.insert_session(b"two", u, NOW).await.unwrap();
    let (session, found) = s.session_with_user(b"one", NOW).await.unwrap().unwrap();
    assert_eq!(found.id, u);
    assert!(s.touch_session(session.id, NOW).await.unwrap());

    let owner = s.user_by_id(u).await.unwrap().unwrap();
    let key = ThrottleKey::username(&owner.username());
    let window = Duration::from_secs(900);
    for _ in 0..3 {
        s.throttle_count(&key, NOW, window).await.unwrap();
    }
    let change = PasswordChange {
        password_hash: "new-hash",
        expires_at: None,
        username_key: &key,
    };
    let kept = s
        .replace_password(
            u,
            &change,
            Some((b"three", &SessionOrigin::default())),
            Some(&mail(Some(u))),
            NOW,
        )
        .await
        .unwrap()
        .expect("the kept session");
    assert!(s.session_with_user(b"one", NOW).await.unwrap().is_none());
    assert_eq!(s.count_user_sessions(u).await.unwrap(), 1);
    assert!(s.session_with_user(b"three", NOW).await.unwrap().is_some());
    s.delete_session(kept).await.unwrap();
    assert!(!s.touch_session(kept, NOW).await.unwrap(), "ended");
    assert_eq!(s.count_user_sessions(u).await.unwrap(), 0);
    assert_eq!(
        s.user_by_id(u).await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    assert_eq!(s.mail_records(10).await.unwrap().len(), 1);
    let counted = s.throttle_count(&key, NOW, window).await.unwrap();
    assert_eq!(counted.attempts, 1, "a new password starts the count again");
}

#[tokio::test]
async fn a_reset_link_is_spent_once() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let u = user(s, t, "201", Role::User).await;
    let link = NewResetLink {
        token_hash: b"link".to_vec(),
        user_id: u,
        expires_at: NOW.plus(Duration::from_secs(3600)),
    };
    s.create_reset_links(&[link], &mail(Some(u)), NOW)
        .await
        .unwrap();
    let (record, owner) = s.reset_link(b"link").await.unwrap().unwrap();
    assert_eq!((owner.id, record.used_at), (u, None));

    let key = ThrottleKey::username(&owner.username());
    let change = PasswordChange {
        password_hash: "reset-hash",
        expires_at: None,
        username_key: &key,
    };
    assert!(s
        .complete_reset(record.id, u, &change, None, NOW)
        .await
        .unwrap());
    assert!(!s
        .complete_reset(record.id, u, &change, None, NOW)
        .await
        .unwrap());
    let (record, _) = s.reset_link(b"link").await.unwrap().unwrap();
    assert_eq!(record.used_at, Some(NOW));
}

#[tokio::test]
async fn operators_their_sessions_and_verified_callers() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let admin = user(s, t, "200", Role::Admin).await;
    s.insert_operator("olivia", "hash", NOW).await.unwrap();
    assert!(matches!(
        s.insert_operator("olivia", "hash", NOW).await,
        Err(StoreError::Conflict)
    ));
    let name = OperatorName::parse("olivia").unwrap();
    let op = s.operator_by_name(&name).await.unwrap().unwrap();
    let id = s.insert_operator_session(b"op", op.id, NOW).await.unwrap();
    let (session, same) = s.operator_session(b"op").await.unwrap().unwrap();
    assert_eq!((session.id, same.id), (id, op.id));
    s.delete_operator_session(id).await.unwrap();
    assert!(!s.touch_operator_session(id, NOW).await.unwrap());

    assert_eq!(
        s.last_caller_verification(op.id, admin).await.unwrap(),
        None
    );
    s.record_caller_verified(op.id, admin, NOW).await.unwrap();
    assert_eq!(
        s.last_caller_verification(op.id, admin).await.unwrap(),
        Some(NOW)
    );
    let verified = s
        .verified_admins(op.id, NOW.minus(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(verified, [("200".to_owned(), "acme".to_owned())]);

    s.set_security_question(admin, "First pet?", "h1", NOW)
        .await
        .unwrap();
    s.set_security_question(admin, "First car?", "h2", NOW)
        .await
        .unwrap();
    let q = s.security_question(admin).await.unwrap().unwrap();
    assert_eq!(
        (q.question.as_str(), q.answer_hash.as_str()),
        ("First car?", "h2")
    );
    assert_eq!(
        s.tenant_admins(t, NOW).await.unwrap()[0]
            .question
            .as_deref(),
        Some("First car?")
    );
}

#[tokio::test]
async fn refusals_fold_into_bursts_and_pages_stay_in_their_tenant() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let other = tenant(s, "beta").await;
    let since = NOW.minus(Duration::from_secs(60));
    for _ in 0..3 {
        s.insert_audit_burst(
            &audit(Some(t), "signin.failed", "201-acme"),
            Burst::PerName,
            since,
        )
        .await
        .unwrap();
    }
    // An address refused as a whole is one burst whatever names it makes up.
    for (tenant, name) in [
        (t, "301-acme"),
        (other, "301-beta"),
        (t, "302-acme"),
        (t, "303-acme"),
    ] {
        s.insert_audit_burst(
            &audit(Some(tenant), "signin.throttled", name),
            Burst::PerAddress,
            since,
        )
        .await
        .unwrap();
    }
    s.insert_audit(&audit(Some(other), "signin.failed", "201-beta"))
        .await
        .unwrap();
    assert!(s
        .insert_audit_once_since(&audit(Some(t), "softphone.credential", "201-acme"), since)
        .await
        .unwrap());
    assert!(!s
        .insert_audit_once_since(&audit(Some(t), "softphone.credential", "201-acme"), since)
        .await
        .unwrap());

    let filter = AuditFilter {
        username: Some("201-acme"),
        kind: Some("signin.failed"),
    };
    let (events, total) = s.audit_page(t, &filter, 10, 0).await.unwrap();
    assert_eq!((events.len(), total), (1, 1));
    assert_eq!(events[0].repeats, 3);
    let throttled = AuditFilter {
        username: None,
        kind: Some("signin.throttled"),
    };
    let (events, total) = s.audit_page(t, &throttled, 10, 0).await.unwrap();
    assert_eq!((events.len(), total), (1, 1));
    assert_eq!(
        events[0].repeats, 3,
        "another tenant's refusal is not in this one's"
    );
    let (events, _) = s.audit_page(other, &throttled, 10, 0).await.unwrap();
    assert_eq!(events.len(), 1, "and shows in its own tenant");
    // Its three kinds of event, and its own creation.
    assert_eq!(s.audit_before(t, None, 10).await.unwrap().len(), 4);
    assert_eq!(
        s.audit_events(None, Some("signin.failed"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.purge_audit(NOW.plus(Duration::from_secs(1)))
            .await
            .unwrap(),
        7,
        "the five events above and the two tenants' creation"
    );
}

#[tokio::test]
async fn mail_is_claimed_once_and_recorded() {
    let f = fresh().await;
    let s = &f.store;
    s.enqueue_mail(&mail(None), NOW).await.unwrap();
    assert_eq!(s.outbox_backlog().await.unwrap(), (1, Some(NOW)));
    let lease = NOW.plus(Duration::from_secs(60));
    let taken = s.claim_mail(NOW, lease, "worker-a", 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(s
        .claim_mail(NOW, lease, "worker-b", 10)
        .await
        .unwrap()
        .is_empty());
    s.mail_sent(taken[0].id, "worker-a", NOW, "250 ok")
        .await
        .unwrap();
    let records = s.mail_records(10).await.unwrap();
    assert_eq!(records[0].status, "sent");
    assert!(!records[0].has_body, "the body goes once sent");
    assert_eq!(s.outbox_backlog().await.unwrap(), (0, None));
}

#[tokio::test]
async fn api_tokens_and_the_first_idempotent_answer() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    s.insert_api_token("ci", Some(t), b"tenant-token", NOW)
        .await
        .unwrap();
    s.insert_api_token("ci", None, b"provider-token", NOW)
        .await
        .unwrap();
    assert!(matches!(
        s.insert_api_token("ci", Some(t), b"again", NOW).await,
        Err(StoreError::Conflict)
    ));
    let token = s.api_token_by_hash(b"tenant-token").await.unwrap().unwrap();
    assert_eq!(token.tenant.as_ref().map(|(id, _)| *id), Some(t));
    assert_eq!(s.api_tokens(None).await.unwrap().len(), 1);

    // A key is claimed (pending) by the first request, which alone keeps its answer.
    let expired = NOW.minus(Duration::from_secs(86_400));
    let id = token.id;
    let claim = |key: &'static str, mine: &'static [u8], now: Timestamp| {
        let abandoned = now.minus(Duration::from_secs(60));
        s.claim_idempotency_key(id, key, b"req", mine, now, expired, abandoned)
    };
    assert!(matches!(
        claim("k", b"one", NOW).await.unwrap(),
        Claimed::Now
    ));
    match claim("k", b"two", NOW).await.unwrap() {
        Claimed::Before(kept) => assert!(kept.is_pending()),
        other => panic!("{other:?}"),
    }
    assert!(!s
        .answer_idempotency_key(id, "k", b"two", 201, b"not mine")
        .await
        .unwrap());
    assert!(s
        .answer_idempotency_key(id, "k", b"one", 201, b"first")
        .await
        .unwrap());
    assert!(!s
        .answer_idempotency_key(id, "k", b"one", 201, b"again")
        .await
        .unwrap());
    match claim("k", b"three", NOW).await.unwrap() {
        Claimed::Before(kept) => assert_eq!((kept.status, kept.body), (201, b"first".to_vec())),
        other => panic!("{other:?}"),
    }
    // A claim is let go only by its own request, or after a minute unanswered; a kept
    // answer stays until it expires, or is let go as one that can no longer be opened.
    assert!(matches!(
        claim("j", b"one", NOW).await.unwrap(),
        Claimed::Now
    ));
    s.release_idempotency_key(id, "j", Some(b"two"))
        .await
        .unwrap();
    assert!(matches!(
        claim("j", b"two", NOW).await.unwrap(),
        Claimed::Before(_)
    ));
    s.release_idempotency_key(id, "j", Some(b"one"))
        .await
        .unwrap();
    assert!(matches!(
        claim("j", b"two", NOW).await.unwrap(),
        Claimed::Now
    ));
    let later = NOW.plus(Duration::from_secs(61));
    assert!(matches!(
        claim("j", b"three", later).await.unwrap(),
        Claimed::Now
    ));
    s.release_idempotency_key(id, "k", Some(b"one"))
        .await
        .unwrap();
    assert!(matches!(
        claim("k", b"four", later).await.unwrap(),
        Claimed::Before(_)
    ));
    s.release_idempotency_key(id, "k", None).await.unwrap();
    assert!(matches!(
        claim("k", b"four", later).await.unwrap(),
        Claimed::Now
    ));

    assert!(s.delete_api_token(Some(t), "ci").await.unwrap());
    assert!(!s.delete_api_token(Some(t), "ci").await.unwrap());
    assert!(s
        .api_token_by_hash(b"tenant-token")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sealed_secrets_and_the_sip_lookup() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let u = user(s, t, "201", Role::User).await;
    s.set_sip_secret_if_missing(u, b"ignored").await.unwrap();
    s.set_voicemail_pin(u, b"pin").await.unwrap();
    let (sip, pin) = s.device_secrets(u).await.unwrap();
    assert_eq!(
        (sip.as_deref(), pin.as_deref()),
        (Some(&b"sealed"[..]), Some(&b"pin"[..]))
    );

    let found = s
        .sip_credential("ACME.SIP.EXAMPLE", &ext("201"), NOW)
        .await
        .unwrap()
        .expect("the domain is matched whatever its case");
    assert_eq!(found.sealed_secret, b"sealed");
    s.replace_sip_secret(u, b"fresh", "201@acme.sip.example", NOW)
        .await
        .unwrap();
    let found = s
        .sip_credential("acme.sip.example", &ext("201"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.sealed_secret, b"fresh",
        "the cached copy was forgotten"
    );

    let read = s.walk_users::<SealedSecrets>(0, 10).await.unwrap();
    assert!(s
        .reseal_secrets(&read[0], Some(b"r1"), Some(b"r2"))
        .await
        .unwrap());
    assert!(
        !s.reseal_secrets(&read[0], Some(b"r3"), None).await.unwrap(),
        "only the secrets that were read are replaced"
    );

    s.insert_pbx_token("kamailio", b"pbx", NOW).await.unwrap();
    assert_eq!(s.pbx_token_hashes().await.unwrap(), [b"pbx".to_vec()]);
    assert!(s.delete_pbx_token("kamailio").await.unwrap());
    assert!(s.pbx_tokens().await.unwrap().is_empty());
}

#[tokio::test]
async fn many_lookups_at_once_each_get_their_own_row() {
    let f = fresh().await;
    let s = &f.store;
    let acme = tenant(s, "acme").await;
    let other = tenant(s, "other").await;
    let mut expected = std::collections::HashMap::new();
    for n in 0..40 {
        let e = format!("{}", 200 + n);
        expected.insert(("acme", e.clone()), user(s, acme, &e, Role::User).await);
        if n % 2 == 0 {
            expected.insert(("other", e.clone()), user(s, other, &e, Role::User).await);
        }
    }
    // Far more lookups at once than reads may run, so they are read together: each must
    // get the row of its own tenant and extension, or none.
    let mut asked = Vec::new();
    for code in ["acme", "other"] {
        for n in 0..48 {
            asked.push((code, format!("{}", 200 + n)));
        }
    }
    let tasks: Vec<_> = asked
        .iter()
        .map(|(code, e)| {
            let (store, domain, e) = (s.clone(), format!("{code}.sip.example"), e.clone());
            tokio::spawn(async move { store.sip_credential(&domain, &ext(&e), NOW).await.unwrap() })
        })
        .collect();
    for ((code, e), task) in asked.iter().zip(tasks) {
        let found = task.await.expect("the lookup ran");
        match expected.get(&(*code, e.clone())) {
            Some(id) => {
                let found = found.unwrap_or_else(|| panic!("{e}@{code} is found"));
                assert_eq!((found.user_id, found.extension.as_str()), (*id, e.as_str()));
                assert_eq!(found.domain, format!("{code}.sip.example"));
            }
            None => assert!(found.is_none(), "{e}@{code} does not exist"),
        }
    }
}

#[tokio::test]
async fn lookups_whose_callers_leave_mid_read_do_not_spoil_later_ones() {
    let f = fresh().await;
    let s = &f.store;
    let acme = tenant(s, "acme").await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(user(s, acme, &format!("{}", 200 + n), Role::User).await);
    }
    // Each round is past the cache's freshness, so every lookup reads; half of the
    // callers leave (their tasks aborted) while the reads run.
    for round in 1..=5 {
        let at = NOW.plus(Duration::from_secs(60 * round));
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let store = s.clone();
                tokio::spawn(async move {
                    store
                        .sip_credential("acme.sip.example", &ext(&format!("{}", 200 + n)), at)
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        for t in tasks.iter().step_by(2) {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    let later = NOW.plus(Duration::from_secs(3600));
    for (n, id) in ids.iter().enumerate() {
        let number = format!("{}", 200 + n);
        let found = s
            .sip_credential("acme.sip.example", &ext(&number), later)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{number} is found"));
        assert_eq!(
            (found.user_id, found.extension.as_str()),
            (*id, number.as_str())
        );
    }
}

#[tokio::test]
async fn a_bulk_load_reads_back_like_any_user() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let exts: Vec<Extension> = (100..130).map(|n| ext(&n.to_string())).collect();
    let users: Vec<NewUser<'_>> = exts
        .iter()
        .map(|e| NewUser {
            extension: e,
            name: "Bulk",
            email: None,
            role: Role::User,
            password_hash: "hash",
            password_expires_at: None,
            sip_secret: None,
        })
        .collect();
    s.insert_users_bulk(t, &users, NOW).await.unwrap();
    s.settle_after_bulk_load().await.unwrap();
    let (_, total) = s.list_users(t, None, NOW, 1, 0).await.unwrap();
    assert_eq!(total, 30);
    assert_eq!(
        s.walk_users::<UserWithoutSecret>(0, 100)
            .await
            .unwrap()
            .len(),
        30
    );
}

#[tokio::test]
async fn passkeys_belong_to_their_user_and_a_ceremony_is_taken_once() {
    let f = fresh().await;
    let s = &f.store;
    let t = tenant(s, "acme").await;
    let owner = user(s, t, "201", Role::User).await;
    let other = user(s, t, "202", Role::User).await;
    let new = NewPasskey {
        user_id: owner,
        credential_id: "cred-1",
        user_handle: "handle",
        name: "Laptop",
        passkey: "{}",
    };
    let id = s.insert_passkey(&new, None, NOW).await.unwrap();
    let again = NewPasskey {
        user_id: other,
        ..new
    };
    assert!(matches!(
        s.insert_passkey(&again, None, NOW).await,
        Err(StoreError::Conflict)
    ));
    assert!(s.has_passkey(owner).await.unwrap());
    assert!(!s.has_passkey(other).await.unwrap());
    assert!(s.passkey_of(other, id).await.unwrap().is_none());
    assert!(!s.rename_passkey(other, id, "Mine").await.unwrap());
    assert!(s.rename_passkey(owner, id, "Work laptop").await.unwrap());
    s.passkey_used(id, None, NOW).await.unwrap();
    let kept = s.passkey_of(owner, id).await.unwrap().unwrap();
    assert_eq!(
        (kept.name.as_str(), kept.last_used_at),
        ("Work laptop", Some(NOW))
    );

    let later = NOW.plus(Duration::from_secs(300));
    s.put_ceremony(owner, CeremonyKind::Register, "state", later, NOW)
        .await
        .unwrap();
    let taken = s
        .take_ceremony(owner, CeremonyKind::Register, NOW)
        .await
        .unwrap();
    assert_eq!(taken.as_deref(), Some("state"));
    assert!(s
        .take_ceremony(owner, CeremonyKind::Register, NOW)
        .await
        .unwrap()
        .is_none());
    s.put_ceremony(owner, CeremonyKind::Authenticate, "old", NOW, NOW)
        .await
        .unwrap();
    assert!(
        s.take_ceremony(owner, CeremonyKind::Authenticate, later)
            .await
            .unwrap()
            .is_none(),
        "an expired ceremony is not answered"
    );

    assert!(!s.delete_passkey(other, id).await.unwrap());
    assert!(s.delete_passkey(owner, id).await.unwrap());
    assert!(s.passkeys_of(owner).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sign_in_counts_its_address_and_its_name_unless_the_address_refuses() {
    let f = fresh().await;
    let s = &f.store;
    let window = Duration::from_secs(900);
    let address = ThrottleKey::address("192.0.2.7".parse().unwrap());
    let name = ThrottleKey::username(&Username::new(ext("200"), code("acme")));
    let since = NOW.minus(window);
    let allow_two = |a: &dialtone::store::ThrottleState| {
        if a.attempts > 2 {
            Err(a.attempts)
        } else {
            Ok(())
        }
    };
    for expected in 1..=2 {
        let counted = s
            .count_sign_in(Some((&address, window)), (&name, window), NOW, allow_two)
            .await
            .unwrap();
        assert_eq!(counted.map(|n| n.attempts), Ok(expected));
    }
    let refused = s
        .count_sign_in(Some((&address, window)), (&name, window), NOW, allow_two)
        .await
        .unwrap();
    assert_eq!(refused.map(|n| n.attempts), Err(3), "the address refused");
    assert_eq!(s.throttle_attempts(&address, since).await.unwrap(), 3);
    assert_eq!(
        s.throttle_attempts(&name, since).await.unwrap(),
        2,
        "a refused address leaves the name uncounted"
    );

    let alone = s
        .count_sign_in(None, (&name, window), NOW, allow_two)
        .await
        .unwrap();
    assert_eq!(
        alone.map(|n| n.attempts),
        Ok(3),
        "no address: the name alone"
    );
}
