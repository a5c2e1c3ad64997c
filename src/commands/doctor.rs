//! `subaudit doctor`: checks the credentials and what they can reach, one line per check.

use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::pull::TwilioArgs;
use crate::client::{ApiError, Client, ClientConfig, CredentialKind, Product};
use crate::error::{Error, Result};
use crate::exit_code;

/// Check the Twilio credentials and what they can reach, before a pull.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...\n  subaudit doctor\n\n\
Exit codes: 0 every check passed, 1 a check failed or the API could not be\n\
reached (one line: nothing was checked), 2 credentials missing or malformed."
)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub twilio: TwilioArgs,
}

pub fn run(args: DoctorArgs) -> Result<i32> {
    let creds = args.twilio.credentials()?;
    let hosts = args.twilio.hosts()?;
    let config = ClientConfig {
        concurrency: 4,
        max_retries: 2,
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let client = Client::new(creds, hosts, config)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::failed("cannot start the async runtime", e))?;
    let failures = runtime.block_on(checks(&client))?;
    if failures == 0 {
        println!("all checks passed: `subaudit pull` can fetch this account");
        Ok(exit_code::OK)
    } else {
        println!("{} failed", crate::plural(failures, "check", "checks"));
        Ok(exit_code::RUNTIME)
    }
}

fn report(name: &str, result: &std::result::Result<String, ApiError>) -> usize {
    match result {
        Ok(text) => {
            println!("ok    {name}: {text}");
            0
        }
        Err(e) => {
            println!("FAIL  {name}: {e}");
            1
        }
    }
}

async fn first_page(
    client: &Client,
    product: Product,
    path: &str,
    key: &str,
) -> std::result::Result<Vec<Value>, ApiError> {
    let mut url = client.url(product, path);
    url.query_pairs_mut().append_pair("PageSize", "1");
    let mut pager = client.pages(url, key);
    Ok(pager.next_page().await?.unwrap_or_default())
}

/// The checks, one line each; the number that failed. When the first request gets no answer
/// at all (no route, refused, timed out, after the retries), nothing can be checked: one error
/// says so instead of a failure per check.
async fn checks(client: &Client) -> Result<usize> {
    let creds = client.credentials();
    let ac = creds.account_sid.clone();
    let kind = match creds.kind {
        CredentialKind::AuthToken => "account SID and auth token",
        CredentialKind::ApiKey => "API key and secret",
    };
    let origin = client.hosts().origin(Product::Api);
    let mut failures = 0;

    let account = client
        .get_json(&client.url(Product::Api, &format!("/2010-04-01/Accounts/{ac}.json")))
        .await;
    if let Err(e) = &account {
        if e.status.is_none() {
            return Err(Error::Runtime(format!(
                "cannot reach {origin}: {e}; nothing was checked"
            )));
        }
    }
    // The API answered: the credentials line says what was used, and the account line whether
    // it was accepted.
    println!("using {kind} for {ac}; API at {origin}");
    let account = account.map(|a| {
        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        format!(
            "{:?}, status {}, type {}",
            s("friendly_name"),
            s("status"),
            s("type")
        )
    });
    failures += report("account", &account);
    if account
        .as_ref()
        .is_err_and(|e| matches!(e.status, Some(401)))
    {
        // Nothing else can work with rejected credentials.
        println!("nothing else was checked: every other check needs accepted credentials");
        return Ok(failures);
    }

    let mut url = client.url(Product::Api, "/2010-04-01/Accounts.json");
    url.query_pairs_mut().append_pair("PageSize", "1000");
    let accounts = client.pages(url, "accounts").collect_all().await;
    let subaccounts: Vec<Value> = accounts
        .as_ref()
        .map(|all| {
            all.iter()
                .filter(|a| a.get("sid").and_then(Value::as_str) != Some(ac.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    failures += report(
        "subaccounts",
        &accounts
            .as_ref()
            .map(|_| {
                let count = |status: &str| {
                    subaccounts
                        .iter()
                        .filter(|a| a.get("status").and_then(Value::as_str) == Some(status))
                        .count()
                };
                format!(
                    "{} ({} active, {} suspended, {} closed)",
                    subaccounts.len(),
                    count("active"),
                    count("suspended"),
                    count("closed")
                )
            })
            .map_err(Clone::clone),
    );

    let reach = |r: std::result::Result<Vec<Value>, ApiError>| {
        r.map(|page| {
            if page.is_empty() {
                "reachable (none)".to_string()
            } else {
                "reachable".to_string()
            }
        })
    };
    failures += report(
        "phone numbers",
        &reach(
            first_page(
                client,
                Product::Api,
                &format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json"),
                "incoming_phone_numbers",
            )
            .await,
        ),
    );
    let messages = first_page(
        client,
        Product::Api,
        &format!("/2010-04-01/Accounts/{ac}/Messages.json"),
        "messages",
    )
    .await;
    failures += report(
        "messages",
        &messages.map(|page| {
            match page
                .first()
                .and_then(|m| m.get("date_sent"))
                .and_then(Value::as_str)
            {
                Some(d) => format!("reachable (newest sent {d})"),
                None => "reachable".to_string(),
            }
        }),
    );
    failures += report(
        "usage records",
        &reach(
            first_page(
                client,
                Product::Api,
                &format!(
                    "/2010-04-01/Accounts/{ac}/Usage/Records/Monthly.json?IncludeSubaccounts=false"
                ),
                "usage_records",
            )
            .await,
        ),
    );
    failures += report(
        "messaging services",
        &reach(first_page(client, Product::Messaging, "/v1/Services", "services").await),
    );
    if let Some(sub) = subaccounts
        .iter()
        .find(|a| a.get("status").and_then(Value::as_str) != Some("closed"))
        .and_then(|a| a.get("sid").and_then(Value::as_str))
    {
        let result = first_page(
            client,
            Product::Api,
            &format!(
                "/2010-04-01/Accounts/{sub}/Usage/Records/Monthly.json?IncludeSubaccounts=false"
            ),
            "usage_records",
        )
        .await;
        failures += report(
            "subaccounts' resources",
            &result.map(|_| format!("reachable (tried {sub})")),
        );
    }
    Ok(failures)
}
