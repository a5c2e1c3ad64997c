//! A Twilio simulator: serves a snapshot through the same endpoints, shapes and rules as the
//! real API (both paging styles with opaque tokens, the Messages and Usage Records filters,
//! PageSize limits, Basic auth, Twilio's error bodies), with switches to inject the faults a
//! real pull meets (latency, 429s, 500s, dropped connections, short pages).
//!
//! It is also the project's twin of Twilio for writes (docs/twin.md): it takes the writes a
//! migration makes (subaccounts, number transfers, Messaging Services, Consents Bulk, sends)
//! with Twilio's rules and error codes, keeps opt-out state per account, routes inbound texts,
//! and keeps every change in memory (the snapshot folder is never written).

// Handlers return axum `Response`s as their error values: boxing them would only add noise to
// a test server whose error path is the answer itself.
#![allow(clippy::result_large_err)]

mod accounts;
mod consents;
mod data;
mod faults;
mod inbound;
mod messaging;
mod optout_state;
mod services;
mod state;

pub use data::SimData;
pub use faults::Faults;
pub use state::World;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use clap::Parser;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// `twilio-sim`: serve a snapshot as the Twilio REST API.
#[derive(Debug, Parser)]
#[command(
    name = "twilio-sim",
    version,
    about = "Serve a subaudit snapshot through Twilio's REST endpoints (a test and demo tool)",
    after_help = "Example:\n  twilio-sim --snapshot sample-data/owlie --addr 127.0.0.1:0 --auth-token test-token\n  \
subaudit pull --twilio-base-url http://127.0.0.1:PORT --out /tmp/pulled\n\n\
Prints the bound address (http://HOST:PORT) on the first line of stdout."
)]
pub struct SimArgs {
    /// Snapshot folder to serve.
    #[arg(long, value_name = "DIR")]
    pub snapshot: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// The parent account SID credentials must name (default: the snapshot's parent).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    /// The parent's auth token (reaches the parent and its subaccounts).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: String,
    /// An API key of the parent (SK...): reaches only the parent's own resources.
    #[arg(long, env = "SIM_API_KEY")]
    pub api_key: Option<String>,
    #[arg(long, env = "SIM_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    #[command(flatten)]
    pub faults: Faults,
}

/// Credentials the simulator accepts.
#[derive(Clone)]
pub struct SimAuth {
    pub account_sid: String,
    pub auth_token: String,
    pub api_key: Option<(String, String)>,
}

impl std::fmt::Debug for SimAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAuth")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

pub struct Sim {
    world: RwLock<World>,
    auth: SimAuth,
    faults: Faults,
    rng: AtomicU64,
    pub requests: AtomicU64,
}

/// Runs the simulator until the process ends (the binary's whole job).
pub fn run(args: SimArgs) -> Result<()> {
    let world = World::load(&args.snapshot)?;
    let data = &world.data;
    let auth = SimAuth {
        account_sid: args
            .account_sid
            .clone()
            .unwrap_or_else(|| data.parent.clone()),
        auth_token: args.auth_token.clone(),
        api_key: args.api_key.clone().zip(args.api_secret.clone()),
    };
    if auth.account_sid != data.parent {
        return Err(Error::Input(format!(
            "--account-sid {} is not the snapshot's parent {}",
            auth.account_sid, data.parent
        )));
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::failed("cannot start the async runtime", e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| Error::Input(format!("cannot listen on {}: {e}", args.addr)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::failed("cannot read the bound address", e))?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "http://{addr}");
            let _ = out.flush();
        }
        eprintln!(
            "twilio-sim: serving {} ({} messages) on http://{addr}",
            args.snapshot.display(),
            world.data.message_count()
        );
        let sim = Sim::new(world, auth, args.faults);
        serve(listener, Arc::new(sim))
            .await
            .map_err(|e| Error::failed("the simulator stopped", e))
    })
}

/// Serves until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, sim: Arc<Sim>) -> std::io::Result<()> {
    let app = Router::new().fallback(handle).with_state(sim);
    axum::serve(listener, app).await
}

impl Sim {
    pub fn new(world: World, auth: SimAuth, faults: Faults) -> Sim {
        Sim {
            world: RwLock::new(world),
            auth,
            rng: AtomicU64::new(faults.seed.max(1)),
            faults,
            requests: AtomicU64::new(0),
        }
    }

    /// xorshift64*: deterministic per seed, enough for fault dice.
    fn roll(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self
                .rng
                .compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return (y.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
                }
                Err(now) => x = now,
            }
        }
    }
}

/// Who the request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    /// Parent SID + auth token: the parent and its subaccounts.
    ParentToken,
    /// An API key of the parent: the parent's own resources only.
    ParentKey,
    /// A subaccount's SID + its own auth token: that subaccount's resources only.
    Subaccount(String),
}

impl Principal {
    /// The account whose resources an account-less (v1) request addresses.
    fn account<'a>(&'a self, parent: &'a str) -> &'a str {
        match self {
            Principal::ParentToken | Principal::ParentKey => parent,
            Principal::Subaccount(sid) => sid,
        }
    }
}

/// Marker payload: unwinding the connection's task drops the connection without a response.
struct DropConnection;

async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if uri.path().starts_with("/__twin/") {
        // The twin's own test endpoints: no faults, no credentials (they stand for the
        // outside world, not for an API client).
        return inbound::handle(&sim, &method, uri.path(), &form);
    }
    let faults = &sim.faults;
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.drop_rate > 0.0 && sim.roll() < faults.drop_rate {
        // resume_unwind skips the panic hook: no noise, just a closed connection.
        std::panic::resume_unwind(Box::new(DropConnection));
    }
    if faults.rate_500 > 0.0 && sim.roll() < faults.rate_500 {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        );
    }
    if faults.rate_429 > 0.0 && sim.roll() < faults.rate_429 {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        // Half the 429s carry Retry-After, as some of Twilio's do.
        if let Some(secs) = faults.retry_after {
            if sim.roll() < 0.5 {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    secs.to_string().parse().expect("digits"),
                );
            }
        }
        return response;
    }
    let principal = match authenticate(&sim.auth, &sim.read_world().data, &headers) {
        Some(p) => p,
        None => {
            let mut r = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"Twilio API\"".parse().expect("ascii"),
            );
            return r;
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = Request {
        path: uri.path().to_string(),
        query,
        host,
        form,
    };
    if method == Method::GET {
        let world = sim.read_world();
        return match route(&sim, &world, &principal, &request) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => e,
        };
    }
    let answer = {
        let mut world = sim.write_world();
        write_route(&mut world, &principal, &method, &request)
    };
    match answer {
        Ok((status, body)) => {
            let after_effect = faults.write_5xx_after_effect;
            if after_effect > 0.0 && sim.roll() < after_effect {
                // The write took effect; the client is told it failed.
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    20500,
                    "Internal Server Error",
                );
            }
            json_response(status, body)
        }
        Err(e) => e,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The writes: which handler takes a (method, path).
fn write_route(
    world: &mut World,
    principal: &Principal,
    method: &Method,
    req: &Request,
) -> Written {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let parent = world.data.parent.clone();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["2010-04-01", "Accounts.json"]) => {
            accounts::create_subaccount(world, principal, req)
        }
        ("POST", ["2010-04-01", "Accounts", account]) if account.ends_with(".json") => {
            let sid = account.trim_end_matches(".json");
            check_account(&world.data, principal, sid, &req.path)?;
            accounts::update_account(world, principal, sid, req)
        }
        ("POST", ["2010-04-01", "Accounts", sid, "IncomingPhoneNumbers", pn])
            if pn.ends_with(".json") =>
        {
            check_account(&world.data, principal, sid, &req.path)?;
            accounts::update_number(world, principal, sid, pn.trim_end_matches(".json"), req)
        }
        ("POST", ["2010-04-01", "Accounts", sid, "Messages.json"]) => {
            check_account(&world.data, principal, sid, &req.path)?;
            messaging::send(world, sid, req)
        }
        ("POST", ["v1", "Services"]) => services::create(world, principal.account(&parent), req),
        ("POST", ["v1", "Services", mg]) => {
            services::check_access(&world.data, principal, mg, &req.path)?;
            services::update(world, mg, req)
        }
        ("POST", ["v1", "Services", mg, "PhoneNumbers"]) => {
            services::check_access(&world.data, principal, mg, &req.path)?;
            services::add_number(world, mg, req)
        }
        ("DELETE", ["v1", "Services", mg, "PhoneNumbers", pn]) => {
            services::check_access(&world.data, principal, mg, &req.path)?;
            services::remove_number(world, mg, pn, &req.path)
        }
        ("POST", ["v1", "Consents", "Bulk"]) => {
            let account = principal.account(&parent).to_string();
            consents::bulk(world, &account, req)
        }
        ("GET", _) => unreachable!("reads are routed apart"),
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            &format!("Method {method} not allowed on {}", req.path),
        )),
    }
}

fn authenticate(auth: &SimAuth, data: &SimData, headers: &HeaderMap) -> Option<Principal> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    if user == auth.account_sid && secret == auth.auth_token {
        return Some(Principal::ParentToken);
    }
    if let Some((key, key_secret)) = &auth.api_key {
        if user == key && secret == key_secret {
            return Some(Principal::ParentKey);
        }
    }
    // A subaccount's own credentials (its token is in the create response, and in the
    // account record the parent reads).
    data.account(user)
        .filter(|a| data.is_subaccount(&a.sid) && a.auth_token == secret)
        .map(|a| Principal::Subaccount(a.sid.clone()))
}

/// Twilio's classic error body.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 20001, message)
}

struct Request {
    path: String,
    query: Vec<(String, String)>,
    host: String,
    /// The form-encoded body of a write.
    form: Vec<(String, String)>,
}

impl Request {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A form field of the body (the first, when repeated).
    fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated form field.
    fn fields<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.form
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Handled = std::result::Result<String, Response>;
/// A write's status and JSON body.
type Written = std::result::Result<(StatusCode, String), Response>;

impl Sim {
    fn read_world(&self) -> std::sync::RwLockReadGuard<'_, World> {
        // A panic while holding the lock (a dropped connection unwinds) leaves the state as
        // it was between two whole writes: keep serving it.
        self.world.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_world(&self) -> std::sync::RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn route(sim: &Sim, world: &World, principal: &Principal, req: &Request) -> Handled {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let data = &world.data;
    match segments.as_slice() {
        ["2010-04-01", "Accounts.json"] => {
            let items: Vec<&str> = data
                .accounts
                .iter()
                // Listing accounts is the parent's own resource: a key sees them too (reading
                // a subaccount's resources is what it may not do). A subaccount sees itself.
                .filter(|a| match principal {
                    Principal::Subaccount(own) => &a.sid == own,
                    _ => true,
                })
                .filter(|a| {
                    req.param("FriendlyName")
                        .is_none_or(|n| a.friendly_name == n)
                })
                .filter(|a| req.param("Status").is_none_or(|s| a.status == s))
                .map(|a| a.raw.as_str())
                .collect();
            page_2010(sim, req, "accounts", &items)
        }
        ["2010-04-01", "Accounts", account] if account.ends_with(".json") => {
            let sid = account.trim_end_matches(".json");
            check_account(data, principal, sid, &req.path)?;
            let a = data.account(sid).ok_or_else(|| not_found(&req.path))?;
            Ok(a.raw.clone())
        }
        ["2010-04-01", "Accounts", sid, rest @ ..] => {
            check_account(data, principal, sid, &req.path)?;
            match rest {
                ["IncomingPhoneNumbers.json"] => {
                    let items: Vec<&str> = data
                        .numbers
                        .iter()
                        .filter(|n| n.account == *sid)
                        .filter(|n| req.param("PhoneNumber").is_none_or(|p| n.phone_number == p))
                        .map(|n| n.raw.as_str())
                        .collect();
                    page_2010(sim, req, "incoming_phone_numbers", &items)
                }
                ["IncomingPhoneNumbers", pn] if pn.ends_with(".json") => data
                    .number(pn.trim_end_matches(".json"))
                    .filter(|n| n.account == *sid)
                    .map(|n| n.raw.clone())
                    .ok_or_else(|| not_found(&req.path)),
                ["Messages.json"] => messages(sim, world, sid, req),
                ["Messages", sm] if sm.ends_with(".json") => {
                    let sm = sm.trim_end_matches(".json");
                    world
                        .created_messages
                        .iter()
                        .chain(data.messages_between(i64::MIN, i64::MAX))
                        .find(|m| &*m.sid == sm && &*m.account == *sid)
                        .map(|m| m.raw.to_string())
                        .ok_or_else(|| not_found(&req.path))
                }
                ["Usage", "Records.json"] | ["Usage", "Records", "Monthly.json"] => {
                    usage(sim, data, sid, req)
                }
                _ => Err(not_found(&req.path)),
            }
        }
        ["v1", "Services"] => {
            let account = principal.account(&data.parent);
            let items: Vec<&str> = data
                .services
                .iter()
                .filter(|s| s.account == account)
                .map(|s| s.raw.as_str())
                .collect();
            page_v1(sim, req, "services", &items)
        }
        ["v1", "Services", mg] => {
            services::check_access(data, principal, mg, &req.path)?;
            Ok(data.service(mg).map(|s| s.raw.clone()).unwrap_or_default())
        }
        ["v1", "Services", mg, "PhoneNumbers", pn] => {
            services::check_access(data, principal, mg, &req.path)?;
            data.service_numbers
                .iter()
                .find(|m| m.service == *mg && m.number_sid == *pn)
                .map(|m| m.raw.clone())
                .ok_or_else(|| not_found(&req.path))
        }
        ["v1", "Services", mg, rest @ ..] => {
            services::check_access(data, principal, mg, &req.path)?;
            let (key, items): (&str, Vec<&str>) = match rest {
                ["PhoneNumbers"] => (
                    "phone_numbers",
                    data.service_numbers
                        .iter()
                        .filter(|m| m.service == *mg)
                        .map(|m| m.raw.as_str())
                        .collect(),
                ),
                ["Compliance", "Usa2p"] => (
                    "compliance",
                    data.campaigns
                        .iter()
                        .filter(|(owner, _)| owner == mg)
                        .map(|(_, raw)| raw.as_str())
                        .collect(),
                ),
                _ => return Err(not_found(&req.path)),
            };
            page_v1(sim, req, key, &items)
        }
        _ => Err(not_found(&req.path)),
    }
}

/// The parent's token reaches the parent and its subaccounts; a key only the parent; a
/// subaccount's own credentials only that subaccount.
fn check_account(
    data: &SimData,
    principal: &Principal,
    sid: &str,
    path: &str,
) -> std::result::Result<(), Response> {
    let known = sid == data.parent || data.is_subaccount(sid);
    if !known {
        return Err(not_found(path));
    }
    let allowed = match principal {
        Principal::ParentToken => true,
        Principal::ParentKey => sid == data.parent,
        Principal::Subaccount(own) => own == sid,
    };
    if allowed {
        Ok(())
    } else {
        // What Twilio answers when the credentials' account is not the one in the path.
        Err(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"))
    }
}

/// PageSize (default 50, 1..=1000), capped by the fault switch, and the offset from the
/// opaque PageToken (or a bare Page number).
fn paging(sim: &Sim, req: &Request) -> std::result::Result<(usize, usize, usize), Response> {
    let requested = match req.param("PageSize") {
        None => 50,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n as usize,
            _ => {
                return Err(bad_request(&format!(
                    "Invalid PageSize {text:?}: must be an integer between 1 and 1000"
                )))
            }
        },
    };
    let size = sim
        .faults
        .max_page_size
        .map_or(requested, |cap| requested.min(cap.max(1)));
    let page = match req.param("Page") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad_request(&format!("Invalid Page {t:?}")))?,
    };
    let offset = match req.param("PageToken") {
        Some(token) => decode_token(token).ok_or_else(|| bad_request("Invalid PageToken"))?,
        None => page * size,
    };
    Ok((size, page, offset))
}

/// Tokens are opaque to clients: `PA` + base64 of the offset.
fn encode_token(offset: usize) -> String {
    format!(
        "PA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
    )
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.strip_prefix("PA")?)
        .ok()?;
    String::from_utf8(raw).ok()?.strip_prefix('o')?.parse().ok()
}

/// The request's own filters, in their order, for the links (paging parameters appended).
fn link_query(req: &Request, size: usize, page: usize, token: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &req.query {
        if !matches!(k.as_str(), "PageSize" | "Page" | "PageToken") {
            q.append_pair(k, v);
        }
    }
    q.append_pair("PageSize", &size.to_string());
    q.append_pair("Page", &page.to_string());
    if let Some(t) = token {
        q.append_pair("PageToken", t);
    }
    q.finish()
}

/// The items of the page that starts at `offset`.
fn page_slice<S>(items: &[S], offset: usize, size: usize) -> &[S] {
    items
        .get(offset.min(items.len())..(offset + size).min(items.len()))
        .unwrap_or(&[])
}

/// The previous and next page links (None at either end), with opaque tokens: the same in
/// both paging styles, which differ only in how `link` writes a URL.
fn neighbour_links(
    size: usize,
    page: usize,
    offset: usize,
    len: usize,
    link: &dyn Fn(usize, Option<&str>) -> String,
) -> (Option<String>, Option<String>) {
    let next = (offset + size < len).then(|| link(page + 1, Some(&encode_token(offset + size))));
    let previous = (offset > 0).then(|| {
        link(
            page.saturating_sub(1),
            Some(&encode_token(offset.saturating_sub(size))),
        )
    });
    (previous, next)
}

/// A 2010 list page: relative `*_uri` links, `next_page_uri` null on the last page.
fn page_2010<S: AsRef<str>>(sim: &Sim, req: &Request, key: &str, items: &[S]) -> Handled {
    let (size, page, offset) = paging(sim, req)?;
    let slice = page_slice(items, offset, size);
    let link = |page: usize, token: Option<&str>| {
        format!("{}?{}", req.path, link_query(req, size, page, token))
    };
    let (previous, next) = neighbour_links(size, page, offset, items.len(), &link);
    let mut head = Map::new();
    head.insert("first_page_uri".into(), json!(link(0, None)));
    head.insert(
        "end".into(),
        json!((offset + slice.len()).saturating_sub(1)),
    );
    head.insert("previous_page_uri".into(), json!(previous));
    head.insert("uri".into(), json!(link(page, req.param("PageToken"))));
    head.insert("page_size".into(), json!(size));
    head.insert("start".into(), json!(offset));
    head.insert("next_page_uri".into(), json!(next));
    head.insert("page".into(), json!(page));
    Ok(assemble(key, slice, Value::Object(head), None))
}

/// A v1 list page: absolute links under `meta`.
fn page_v1<S: AsRef<str>>(sim: &Sim, req: &Request, key: &str, items: &[S]) -> Handled {
    let (size, page, offset) = paging(sim, req)?;
    let slice = page_slice(items, offset, size);
    let link = |page: usize, token: Option<&str>| {
        format!(
            "http://{}{}?{}",
            req.host,
            req.path,
            link_query(req, size, page, token)
        )
    };
    let (previous, next) = neighbour_links(size, page, offset, items.len(), &link);
    let meta = json!({
        "page": page,
        "page_size": size,
        "first_page_url": link(0, None),
        "previous_page_url": previous,
        "url": link(page, req.param("PageToken")),
        "next_page_url": next,
        "key": key,
    });
    Ok(assemble(key, slice, meta, Some("meta")))
}

/// `{"key": [raw, raw, ...], <head fields>}` without re-parsing the records.
fn assemble<S: AsRef<str>>(key: &str, items: &[S], head: Value, head_key: Option<&str>) -> String {
    let total: usize = items.iter().map(|s| s.as_ref().len() + 1).sum();
    let mut out = String::with_capacity(total + 512);
    out.push('{');
    out.push_str(&serde_json::to_string(key).expect("a key serializes"));
    out.push_str(":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
    match head_key {
        Some(k) => {
            out.push_str(&format!(",\"{k}\":"));
            out.push_str(&head.to_string());
        }
        None => {
            if let Value::Object(map) = head {
                for (k, v) in map {
                    out.push(',');
                    out.push_str(&serde_json::to_string(&k).expect("a key serializes"));
                    out.push(':');
                    out.push_str(&v.to_string());
                }
            }
        }
    }
    out.push('}');
    out
}

/// A `DateSent` filter value: a day (`YYYY-MM-DD`) or an instant (`YYYY-MM-DDTHH:MM:SSZ`).
enum DateValue {
    Day(NaiveDate),
    Instant(i64),
}

fn parse_date_value(key: &str, text: &str) -> std::result::Result<DateValue, Response> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(DateValue::Day(day));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(DateValue::Instant(t.timestamp()));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(DateValue::Instant(t.and_utc().timestamp()));
    }
    Err(bad_request(&format!(
        "Invalid {key} {text:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
    )))
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp()
}

/// Messages, newest first, with `To`, `From`, `DateSent`, `DateSent>` (on or after) and
/// `DateSent<` (on or before) — all inclusive, a bare day meaning the whole day.
fn messages(sim: &Sim, world: &World, account: &str, req: &Request) -> Handled {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    let mut dated = false;
    for (key, value) in &req.query {
        let (from, to) = match key.as_str() {
            "DateSent" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (day_start(d), day_start(d) + 86_399),
                DateValue::Instant(t) => (t, t),
            },
            "DateSent>" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (day_start(d), i64::MAX),
                DateValue::Instant(t) => (t, i64::MAX),
            },
            "DateSent<" => match parse_date_value(key, value)? {
                DateValue::Day(d) => (i64::MIN, day_start(d) + 86_399),
                DateValue::Instant(t) => (i64::MIN, t),
            },
            _ => continue,
        };
        dated = true;
        lo = lo.max(from);
        hi = hi.min(to);
    }
    if dated {
        // Messages never sent (no date_sent) match no date filter.
        lo = lo.max(i64::MIN + 1);
    }
    let to = req.param("To");
    let from = req.param("From");
    // The twin's own messages are newer than the snapshot's: they come first, newest first.
    let created = world
        .created_messages
        .iter()
        .rev()
        .filter(|m| m.ts >= lo && m.ts <= hi);
    let items: Vec<&str> = created
        .chain(world.data.messages_between(lo, hi))
        .filter(|m| &*m.account == account)
        .filter(|m| to.is_none_or(|t| &*m.to == t))
        .filter(|m| from.is_none_or(|f| &*m.from == f))
        .map(|m| &*m.raw)
        .collect();
    page_2010(sim, req, "messages", &items)
}

/// Usage records: `Category`, `StartDate`, `EndDate` (periods overlapping the range) and
/// `IncludeSubaccounts` (default true: an account's figures include its subaccounts').
fn usage(sim: &Sim, data: &SimData, account: &str, req: &Request) -> Handled {
    let day = |key: &str| -> std::result::Result<Option<NaiveDate>, Response> {
        match req.param(key) {
            None => Ok(None),
            Some(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map(Some)
                .map_err(|_| bad_request(&format!("Invalid {key} {t:?}: expected YYYY-MM-DD"))),
        }
    };
    let start = day("StartDate")?;
    let end = day("EndDate")?;
    let include = match req.param("IncludeSubaccounts") {
        None => true,
        Some(t) if t.eq_ignore_ascii_case("true") => true,
        Some(t) if t.eq_ignore_ascii_case("false") => false,
        Some(t) => {
            return Err(bad_request(&format!(
                "Invalid IncludeSubaccounts {t:?}: expected true or false"
            )))
        }
    };
    let category = req.param("Category");
    let records = data.usage_for(account, include);
    let items: Vec<String> = records
        .into_iter()
        .filter(|r| category.is_none_or(|c| r.category == c))
        .filter(|r| start.is_none_or(|s| r.end_date.is_none_or(|e| e >= s)))
        .filter(|r| end.is_none_or(|e| r.start_date.is_none_or(|s| s <= e)))
        .map(|r| r.raw)
        .collect();
    page_2010(sim, req, "usage_records", &items)
}
