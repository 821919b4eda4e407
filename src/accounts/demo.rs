//! The demo tenant `wickedsprockets` with admin `200` and user `201`, created when
//! missing, so a newcomer can sign in at once.

use rand::Rng;
use url::Url;

use super::{generate_temporary_password, Accounts, ProvisionError};
use crate::domain::{DisplayName, Email, Role, TenantCode, Username, SUGGESTED_QUESTIONS};

pub const TENANT: &str = "wickedsprockets";

/// Creates what is missing and prints how to sign in.
pub async fn ensure(accounts: &Accounts, public_url: &Url) -> Result<(), ProvisionError> {
    let code = TenantCode::parse(TENANT)
        .map_err(|e| ProvisionError::Unexpected(anyhow::anyhow!(e).into()))?;
    if accounts.store().tenant_by_code(TENANT).await?.is_none() {
        let name = display("Wicked Sprockets")?;
        accounts.create_tenant(&code, &name, None, "demo").await?;
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
        let username = Username::parse(&format!("{extension}-{TENANT}"))
            .map_err(|e| ProvisionError::Unexpected(anyhow::anyhow!(e).into()))?;
        let existing = accounts.store().user_by_username(TENANT, extension).await?;
        if existing.is_some() {
            println!("  {username}: created earlier; use the password printed then");
            continue;
        }
        let password = generate_temporary_password(&username);
        let email = Email::parse(email)
            .map_err(|e| ProvisionError::Unexpected(anyhow::anyhow!(e).into()))?;
        let shown = password.expose().to_owned();
        let (id, _) = accounts
            .create_user(
                &username,
                &display(name)?,
                Some(&email),
                role,
                Some(password),
                "demo",
            )
            .await?;
        println!("  {username} ({}) password: {shown}", role.as_str());
        if role == Role::Admin {
            let answer = demo_answer();
            accounts
                .set_security_question_unchecked(id, SUGGESTED_QUESTIONS[0], &answer, "demo")
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
    Ok(())
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

fn display(name: &str) -> Result<DisplayName, ProvisionError> {
    DisplayName::parse(name).map_err(|e| ProvisionError::Unexpected(anyhow::anyhow!(e).into()))
}
