//! The demo tenant `wickedsprockets` with admin `200` and user `201`, created when
//! missing, so a newcomer can sign in at once.

use rand::Rng;
use url::Url;

use super::passwords::generate_temporary_password;
use super::provisioning::ProvisionError;
use super::{Services, Unexpected};
use crate::audit::Actor;
use crate::domain::{
    DisplayName, DomainError, Email, Extension, Role, SecurityAnswer, SecurityQuestion, TenantCode,
    Username, SUGGESTED_QUESTIONS,
};

pub const TENANT: &str = "wickedsprockets";

/// Creates what is missing and prints how to sign in.
pub async fn ensure(services: &Services, public_url: &Url) -> Result<(), ProvisionError> {
    let provisioning = &services.provisioning;
    let code = TenantCode::parse(TENANT).map_err(fixed)?;
    if !provisioning.tenant_exists(&code).await? {
        let name = DisplayName::parse("Wicked Sprockets").map_err(fixed)?;
        provisioning
            .create_tenant(&code, &name, None, &Actor::new("demo", None))
            .await?;
    }
    println!("Dialtone demo — open {public_url}login");
    for (extension, name, email, role) in [
        (
            "200",
            "Ada Admin",
            "ada@wickedsprockets.example",
            Role::Admin,
        ),
        (
            "201",
            "Sam Staff",
            "sam@wickedsprockets.example",
            Role::User,
        ),
    ] {
        let username = Username::new(Extension::parse(extension).map_err(fixed)?, code.clone());
        if provisioning.user(&username).await?.is_some() {
            println!("  {username}: created earlier; use the password printed then");
            continue;
        }
        let password = generate_temporary_password(&username);
        let email = Email::parse(email).map_err(fixed)?;
        let shown = password.expose().to_owned();
        let (created, _) = provisioning
            .create_user(
                &username,
                &DisplayName::parse(name).map_err(fixed)?,
                Some(&email),
                role,
                Some(password),
                &Actor::new("demo", None),
            )
            .await?;
        println!("  {username} ({}) password: {shown}", role.as_str());
        if role == Role::Admin {
            let answer = demo_answer();
            services
                .security_questions
                .set_unconfirmed(
                    &created.user,
                    &SecurityQuestion::parse(SUGGESTED_QUESTIONS[0]).map_err(fixed)?,
                    &SecurityAnswer::parse(&answer).map_err(fixed)?,
                    &Actor::new("demo", None),
                )
                .await?;
            println!(
                "  {username} security question: \"{}\" answer: {answer}",
                SUGGESTED_QUESTIONS[0]
            );
        }
    }
    println!(
        "Operators: create one with `dialtone operator add NAME`, then open {public_url}operator/login"
    );
    println!("{}", softphone_hint(services));
    Ok(())
}

/// How to try the Phone tab's softphone: two browsers, extensions 200 and 201.
fn softphone_hint(services: &Services) -> String {
    let how = "two browser profiles (or one private window), sign in as 200 in one and \
               201 in the other, wait for \"Ready\", then type 201 as the Number and Call";
    match services.softphone.ws_url() {
        Some(url) => format!("Softphone: registering at {url}. Try it with {how}."),
        None => format!(
            "Softphone: not set up. To try it, run Kamailio with contrib/kamailio/kamailio.cfg \
             (WS_PORT 8088, EPHEMERAL_SECRET from `openssl rand -hex 32` written to a file), \
             restart the demo with DIALTONE_SIP_WS_URL=ws://127.0.0.1:8088 and \
             DIALTONE_SIP_EPHEMERAL_SECRET_FILE=THAT_FILE, and use {how}."
        ),
    }
}

/// A pet's name and a number, different on every demo database.
fn demo_answer() -> String {
    const PETS: &[&str] = &["Biscuit", "Pepper", "Gizmo", "Mango", "Pickles", "Waffles"];
    let mut rng = rand::rngs::OsRng;
    format!(
        "{} {}",
        PETS[rng.gen_range(0..PETS.len())],
        rng.gen_range(10..100)
    )
}

/// The demo's own fixed values are valid; one that is not is a bug here, not the user's.
fn fixed(e: DomainError) -> Unexpected {
    Unexpected(anyhow::Error::new(e).context("a demo value"))
}
