//! Paging, retry, error mapping and redaction against a mocked HTTP server. Retries never
//! really sleep: the sleeper records the delays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const SUB: &str = "ACfedcba9876543210fedcba9876543210";
const SK: &str = "SK0123456789abcdef0123456789abcdef";
const TOKEN: &str = "the-auth-token-never-shown";

fn client_for(server: &MockServer, creds: Credentials) -> (Client, Arc<Mutex<Vec<Duration>>>) {
    let slept = Arc::new(Mutex::new(Vec::new()));
    let record = slept.clone();
    let sleeper: Sleeper = Arc::new(move |d| {
        record.lock().unwrap().push(d);
        Box::pin(async {})
    });
    let config = ClientConfig {
        concurrency: 4,
        max_retries: 3,
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    };
    let client = Client::with_sleeper(
        creds,
        Hosts::single(&server.uri()).unwrap(),
        config,
        sleeper,
    )
    .unwrap();
    (client, slept)
}

fn token_creds() -> Credentials {
    Credentials::resolve(Some(AC), Some(TOKEN), None, None).unwrap()
}

fn key_creds() -> Credentials {
    Credentials::resolve(Some(AC), None, Some(SK), Some(TOKEN)).unwrap()
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{AC}/Messages.json")
}

#[tokio::test]
async fn follows_relative_next_page_uri_with_basic_auth() {
    let server = MockServer::start().await;
    let p = messages_path();
    // Basic base64("AC...:token")
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{AC}:{TOKEN}")
        )
    );
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .and(query_param("PageToken", "PA2"))
        .and(wiremock::matchers::header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [{"sid": "SM2"}], "next_page_uri": null, "page": 1, "page_size": 1
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .and(query_param("PageSize", "1"))
        .and(wiremock::matchers::header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [{"sid": "SM1"}],
            "next_page_uri": format!("{p}?PageSize=1&Page=1&PageToken=PA2"), "page": 0, "page_size": 1
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server, token_creds());
    let mut first = client.url(Product::Api, &p);
    first.query_pairs_mut().append_pair("PageSize", "1");
    let all = client.pages(first, "messages").collect_all().await.unwrap();
    assert_eq!(all, vec![json!({"sid": "SM1"}), json!({"sid": "SM2"})]);
    assert_eq!(client.stats().pages.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn follows_absolute_meta_next_page_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/Services"))
        .and(query_param("PageToken", "PT1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "services": [{"sid": "MG2"}], "meta": {"next_page_url": null, "key": "services"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/Services"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "services": [{"sid": "MG1"}],
            "meta": {"next_page_url": format!("{}/v1/Services?PageSize=1&Page=1&PageToken=PT1", server.uri()), "key": "services"}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server, token_creds());
    let all = client
        .pages(
            client.url(Product::Messaging, "/v1/Services?PageSize=1"),
            "services",
        )
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn refuses_a_next_link_to_another_origin() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/Services"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "services": [{"sid": "MG1"}],
            "meta": {"next_page_url": "https://evil.example.com/v1/Services?PageToken=x"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server, token_creds());
    let mut pager = client.pages(client.url(Product::Messaging, "/v1/Services"), "services");
    assert!(pager
        .next_page()
        .await
        .unwrap_err()
        .to_string()
        .contains("evil.example.com"));
}

#[tokio::test]
async fn stops_when_a_next_link_repeats_a_page() {
    let server = MockServer::start().await;
    let p = messages_path();
    // A mock built from the spec's examples: every page says the next is page 1.
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [{"sid": "SM1"}],
            "next_page_uri": format!("{p}?PageSize=50&Page=1&PageToken=PAx")
        })))
        .expect(2)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server, token_creds());
    let err = client
        .pages(client.url(Product::Api, &p), "messages")
        .collect_all()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("repeats a page already fetched"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_429_and_500_honouring_retry_after() {
    let server = MockServer::start().await;
    let p = messages_path();
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_json(json!({"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messages": [], "next_page_uri": null})),
        )
        .mount(&server)
        .await;
    let (client, slept) = client_for(&server, token_creds());
    let all = client
        .pages(client.url(Product::Api, &p), "messages")
        .collect_all()
        .await
        .unwrap();
    assert!(all.is_empty());
    let slept = slept.lock().unwrap().clone();
    assert_eq!(slept.len(), 2);
    assert_eq!(slept[0], Duration::from_secs(3), "Retry-After honoured");
    // Second retry: backoff base*2^1 = 200 ms, jittered into [100, 200).
    assert!(
        slept[1] >= Duration::from_millis(100) && slept[1] < Duration::from_millis(200),
        "{slept:?}"
    );
    assert_eq!(client.stats().retries.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn gives_up_after_the_limit_naming_the_request_without_secrets() {
    let server = MockServer::start().await;
    let p = messages_path();
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let (client, slept) = client_for(&server, token_creds());
    let mut url = client.url(Product::Api, &p);
    url.query_pairs_mut()
        .append_pair("DateSent>", "2026-01-02T00:00:00Z");
    let err = client.get_json(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("failed after 4 attempts"), "{text}");
    assert!(
        text.contains("Messages.json?DateSent>=2026-01-02T00:00:00Z"),
        "{text}"
    );
    assert!(text.contains("HTTP 503"), "{text}");
    assert!(!text.contains(TOKEN));
    // Exponential: each delay in [base*2^n/2, base*2^n).
    let slept = slept.lock().unwrap().clone();
    for (n, d) in slept.iter().enumerate() {
        let full = Duration::from_millis(100 << n);
        assert!(*d >= full / 2 && *d < full, "{n}: {d:?}");
    }
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port nothing listens on any more (wiremock pools its servers, so not one of those).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slept = Arc::new(Mutex::new(Vec::new()));
    let record = slept.clone();
    let sleeper: Sleeper = Arc::new(move |d| {
        record.lock().unwrap().push(d);
        Box::pin(async {})
    });
    let config = ClientConfig {
        max_retries: 3,
        ..ClientConfig::default()
    };
    let hosts = Hosts::single(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = Client::with_sleeper(token_creds(), hosts, config, sleeper).unwrap();
    let err = client
        .get_json(&client.url(Product::Api, &messages_path()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed after 4 attempts (last: cannot connect"),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN));
    assert_eq!(slept.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let server = MockServer::start().await;
    let p = format!("/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/PN1.json");
    Mock::given(method("POST"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let (client, slept) = client_for(&server, token_creds());
    let err = client
        .post_form(&client.url(Product::Api, &p), &[("AccountSid", SUB)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not retried"), "{err}");
    assert!(slept.lock().unwrap().is_empty());
}

#[tokio::test]
async fn maps_401_403_404_in_both_error_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts.json"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/2010-04-01/Accounts/{SUB}/Usage/Records/Monthly.json"
        )))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "type": "https://www.twilio.com/docs/errors/20403", "title": "Forbidden", "status": 403,
            "code": 20403, "detail": "Access to the account is forbidden", "instance": "/x"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/Services/MG00000000000000000000000000000000/PhoneNumbers",
        ))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404, "message": "The requested resource was not found", "status": 404
        })))
        .mount(&server)
        .await;

    let (client, slept) = client_for(&server, token_creds());
    let e = client
        .get_json(&client.url(Product::Api, "/2010-04-01/Accounts.json"))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.code), (Some(401), Some(20003)));
    assert!(
        e.to_string().starts_with("the credentials were rejected"),
        "{e}"
    );
    assert!(
        e.to_string().contains("Twilio error 20003: Authenticate"),
        "{e}"
    );
    assert!(slept.lock().unwrap().is_empty(), "401 is not retried");

    let sub = client.url(
        Product::Api,
        &format!("/2010-04-01/Accounts/{SUB}/Usage/Records/Monthly.json"),
    );
    let e = client.get_json(&sub).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("HTTP 403, Twilio error 20403: Access to the account is forbidden"),
        "{e}"
    );

    let (key_client, _) = client_for(&server, key_creds());
    let e = key_client.get_json(&sub).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("an API key cannot read subaccounts' resources"),
        "{e}"
    );
    assert!(!e.to_string().contains(TOKEN));

    let e = client
        .get_json(&client.url(
            Product::Messaging,
            "/v1/Services/MG00000000000000000000000000000000/PhoneNumbers",
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("not found (HTTP 404"), "{e}");
    let as_error: crate::error::Error = e.into();
    assert_eq!(as_error.exit_code(), 1);
}

#[test]
fn error_bodies_parse_in_both_shapes() {
    let classic = TwilioErrorBody::parse(br#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}"#);
    assert_eq!(classic.code, Some(20429));
    assert_eq!(classic.message.as_deref(), Some("Too Many Requests"));
    let rfc = TwilioErrorBody::parse(br#"{"type":"https://www.twilio.com/docs/errors/20001","title":"Bad request","status":400,"code":20001,"detail":"PageSize too large","instance":"/v1/x"}"#);
    assert_eq!(rfc.code, Some(20001));
    assert_eq!(rfc.message.as_deref(), Some("PageSize too large"));
    assert_eq!(
        rfc.more_info.as_deref(),
        Some("https://www.twilio.com/docs/errors/20001")
    );
    assert_eq!(
        TwilioErrorBody::parse(b"<html>"),
        TwilioErrorBody::default()
    );
}

#[test]
fn client_debug_redacts_the_secret() {
    let c = Client::new(
        token_creds(),
        Hosts::twilio(None, None).unwrap(),
        ClientConfig::default(),
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains(AC));
}

#[tokio::test]
async fn a_download_goes_to_its_file_whole_after_a_retry_and_without_credentials() {
    use std::io::{Read, Seek, Write};
    let server = MockServer::start().await;
    let p = "/files/2026-03-10.json.gz";
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ResponseTemplate::new(500).set_body_string("busy"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // Bigger than any one read, so that it arrives in several chunks.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(content.clone()))
        .mount(&server)
        .await;
    let (client, slept) = client_for(&server, token_creds());
    // Whatever the file held before is gone: each attempt starts it afresh.
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&vec![b'x'; 400_000]).unwrap();
    let url = Url::parse(&format!("{}{p}?Signature=s3cr3t", server.uri())).unwrap();
    client.get_public_into(&url, &mut file).await.unwrap();
    file.rewind().unwrap();
    let mut written = Vec::new();
    file.read_to_end(&mut written).unwrap();
    assert!(written == content, "{} bytes written", written.len());
    assert_eq!(slept.lock().unwrap().len(), 1, "the 500 was retried");
    for request in server.received_requests().await.unwrap() {
        assert!(!request.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn a_client_for_other_credentials_shares_the_bound_on_requests_in_flight() {
    // One request in flight at most: the parent's and a subaccount's request, each answered
    // after 300 ms, go one after the other (600 ms at least), not side by side.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"services": [], "meta": {"next_page_url": null}}))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&server)
        .await;
    let config = ClientConfig {
        concurrency: 1,
        ..ClientConfig::default()
    };
    let parent = Client::new(token_creds(), Hosts::single(&server.uri()).unwrap(), config).unwrap();
    let sub = parent.with_credentials(Credentials::for_account(SUB, TOKEN));
    let url = |c: &Client| c.url(Product::Messaging, "/v1/Services");
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        parent.pages(url(&parent), "services").collect_all(),
        sub.pages(url(&sub), "services").collect_all()
    );
    assert!(a.is_ok() && b.is_ok());
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "both in flight at once: {:?}",
        started.elapsed()
    );
}
