//! A Twilio simulator: serves a snapshot through the same endpoints, shapes and rules as the
//! real API (both paging styles with opaque tokens, the Messages and Usage Records filters,
//! PageSize limits, Basic auth, Twilio's error bodies), with switches to inject the faults a
//! real pull meets (latency, 429s, 500s, dropped connections, short pages).
//!
//! It is also the project's twin of Twilio for writes (docs/twin.md): it takes the writes a
//! migration makes (subaccounts, number transfers, Messaging Services, Consents Bulk, sends)
//! with Twilio's rules and error codes, keeps opt-out state per account, routes inbound texts,
//! and keeps every change in memory (the snapshot folder is never written).
//!
//! Here: the command line, the server, authentication, faults and the routing of writes. The
//! concerns live apart: `reads` (lists and fetches), `state` (the world behind the lock),
//! `accounts` (subaccounts, number updates and transfers), `services` (Messaging v1),
//! `messaging` (sends), `consents` (Consents Bulk), `optout_state`, `inbound` (routing),
//! `writes` (the log of writes served, which the deterministic write faults count).

// Handlers return axum `Response`s as their error values: boxing them would only add noise to
// a test server whose error path is the answer itself.
#![allow(clippy::result_large_err)]

mod accounts;
mod bulk;
mod consents;
mod data;
mod faults;
mod inbound;
mod messaging;
mod optout_state;
mod reads;
mod services;
mod state;
mod writes;

pub use bulk::BulkArgs;
pub use data::SimData;
pub use faults::{Faults, FirstAttempt};
pub use state::World;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use clap::Parser;
use serde_json::json;

use crate::error::{Error, Result};
use writes::Answer;

/// `twilio-sim`: serve a snapshot as the Twilio REST API.
#[derive(Debug, Parser)]
#[command(
    name = "twilio-sim",
    version,
    about = "Serve a subaudit snapshot through Twilio's REST endpoints (a test and demo tool)",
    after_help = "Example:\n  twilio-sim --snapshot sample-data/owlie --addr 127.0.0.1:0 \\\n      --auth-token test-token\n  \
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
    /// The secret of --api-key.
    #[arg(long, env = "SIM_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    #[command(flatten)]
    pub faults: Faults,
    #[command(flatten)]
    pub bulk: BulkArgs,
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
    bulk_args: BulkArgs,
    exports: Mutex<bulk::Exports>,
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
        // Say which credentials work, never their secret values (they may be real-looking).
        let key = match &auth.api_key {
            Some((sid, _)) => format!("; API key {sid} with its secret reaches the parent only"),
            None => String::new(),
        };
        eprintln!(
            "twilio-sim: parent {parent}: accepts {parent} with the --auth-token given (it reaches \
the parent and its subaccounts){key}; a subaccount's own token comes from \
GET /2010-04-01/Accounts/{{AC}}.json\n\
twilio-sim: try  TWILIO_ACCOUNT_SID={parent} TWILIO_AUTH_TOKEN=<that token> \
subaudit pull --twilio-base-url http://{addr} --out pulled/",
            parent = auth.account_sid
        );
        let sim = Sim::new(world, auth, args.faults).with_bulk(args.bulk);
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
            bulk_args: BulkArgs::default(),
            exports: Mutex::new(bulk::Exports::default()),
        }
    }

    /// The Bulk Export switches (default: enabled, jobs complete on their second fetch).
    pub fn with_bulk(mut self, bulk: BulkArgs) -> Sim {
        self.bulk_args = bulk;
        self
    }

    /// Whether a fault of this rate strikes now. A rate of 0 rolls no die, so a fault
    /// switched off leaves the others' sequence as it was.
    fn strikes(&self, rate: f64) -> bool {
        rate > 0.0 && self.roll() < rate
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

/// Closes the connection without an answer. resume_unwind skips the panic hook: no noise,
/// just a closed connection.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(DropConnection))
}

/// Twilio's answer to a request that failed on its side.
fn internal_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        20500,
        "Internal Server Error",
    )
}

async fn handle(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let bulk_file = uri.path().starts_with("/__twin/bulk-files/");
    if uri.path().starts_with("/__twin/") && !bulk_file {
        // The twin's own test endpoints: no faults, no credentials (they stand for the
        // outside world, not for an API client).
        if uri.path() == "/__twin/writes" && method == Method::GET {
            return writes::list(&sim.read_world().writes);
        }
        return inbound::handle(&sim, &method, uri.path(), &form);
    }
    let faults = &sim.faults;
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if sim.strikes(faults.drop_rate) {
        drop_connection();
    }
    if sim.strikes(faults.rate_500) {
        return internal_error();
    }
    if sim.strikes(faults.rate_429) {
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
    if bulk_file {
        // Bulk Export's day files stand for the storage host a redirect points at: faulted
        // like every request, but reached without credentials.
        return bulk::file(&sim, &sim.read_world(), uri.path());
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
    let exports = request.path.starts_with("/v1/Exports");
    if method == Method::GET {
        if exports {
            let mut world = sim.write_world();
            return match bulk::route(&sim, &mut world, &principal, method.as_str(), &request) {
                Ok(answer) | Err(answer) => answer,
            };
        }
        let world = sim.read_world();
        return match reads::route(&sim, &world, &principal, &request) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => e,
        };
    }
    serve_write(&sim, &principal, &method, &request, exports).await
}

/// A write: logged, held or dropped before its effect when a fault says so, served by the
/// twin's rules, then answered unless a fault takes the answer away.
async fn serve_write(
    sim: &Sim,
    principal: &Principal,
    method: &Method,
    request: &Request,
    exports: bool,
) -> Response {
    let faults = &sim.faults;
    let kind = writes::kind(method, &request.path);
    let (at, first, arrived) = {
        let mut world = sim.write_world();
        let account = principal.account(&world.data.parent).to_string();
        world.writes.arrive(writes::WriteRecord {
            kind,
            method: method.to_string(),
            path: request.path.clone(),
            account,
            form: request.form.clone(),
            took_effect: false,
            status: None,
            answer: Answer::Answered,
        })
    };
    if Faults::holds(&faults.write_hold_before_effect, kind, arrived) {
        sim.write_world().writes.answered(at, Answer::Held);
        std::future::pending::<()>().await;
    }
    if first && faults.write_first_attempt == Some(FirstAttempt::DropBeforeEffect) {
        sim.write_world().writes.answered(at, Answer::Dropped);
        drop_connection();
    }
    let (answer, effects) = {
        let mut world = sim.write_world();
        let answer = if exports {
            match bulk::route(sim, &mut world, principal, method.as_str(), request) {
                Ok(answer) | Err(answer) => answer,
            }
        } else {
            match write_route(&mut world, principal, method, request) {
                Ok((status, body)) => json_response(status, body),
                Err(e) => e,
            }
        };
        let effects = world.writes.served(at, answer.status().as_u16());
        (answer, effects)
    };
    let Some(effects) = effects else {
        return answer;
    };
    let fault = after_write_took_effect(sim, kind, first, effects);
    sim.write_world().writes.answered(at, fault);
    match fault {
        Answer::Held => std::future::pending().await,
        Answer::Dropped => drop_connection(),
        Answer::Status500 => internal_error(),
        Answer::Answered => answer,
    }
}

/// What the client gets for a write that took effect: the rules' answer, or what a fault
/// leaves of it (a 500, a closed connection, no answer ever). Either way
/// the effect stays. `effects`: how many writes of its kind took effect so far, itself
/// included.
fn after_write_took_effect(sim: &Sim, kind: &str, first: bool, effects: usize) -> Answer {
    let faults = &sim.faults;
    if Faults::holds(&faults.write_hold_after_effect, kind, effects) {
        return Answer::Held;
    }
    if first {
        match faults.write_first_attempt {
            Some(FirstAttempt::Status500AfterEffect) => return Answer::Status500,
            Some(FirstAttempt::DropAfterEffect) => return Answer::Dropped,
            _ => {}
        }
    }
    if sim.strikes(faults.write_5xx_after_effect) {
        return Answer::Status500;
    }
    if sim.strikes(faults.write_drop_after_effect) {
        return Answer::Dropped;
    }
    Answer::Answered
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
