//! The Twilio REST client: authentication, hosts, a bound on requests in flight, retries with
//! backoff, error mapping and paging. Credentials go into the Authorization header only: URLs,
//! errors and logs never hold them.

mod auth;
mod gate;
mod hosts;
pub mod trace;

pub use auth::{CredentialKind, Credentials};
pub use hosts::{Hosts, Product};

use gate::{Gate, Lane};

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

/// Sleeps between retries. Injectable, so that tests check the delays without waiting them.
pub type Sleeper = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub fn tokio_sleeper() -> Sleeper {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// How the client behaves under pressure.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Requests in flight at most (Twilio limits concurrency per account, unpublished).
    pub concurrency: usize,
    /// Retries of one GET after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry, with jitter, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Whole-request timeout (a stalled connection counts as a connection error).
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            concurrency: 8,
            max_retries: 8,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Counters for the progress display.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub retries: AtomicU64,
}

/// A failed request, after retries where they apply. `Display` is the user-facing message:
/// what happened, what to do, which request (method and URL, never credentials).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Twilio's error code (e.g. 20003, 20429), when the body had one.
    pub code: Option<i64>,
    pub message: String,
}

/// Twilio's error body, in either shape: `{code, message, more_info, status}` or RFC 9457
/// `{type, title, status, code, detail, instance}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TwilioErrorBody {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub more_info: Option<String>,
}

impl TwilioErrorBody {
    pub fn parse(body: &[u8]) -> TwilioErrorBody {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return TwilioErrorBody::default();
        };
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let code = map.get("code").and_then(|c| match c {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        TwilioErrorBody {
            code,
            message: text("message")
                .or_else(|| text("detail"))
                .or_else(|| text("title")),
            more_info: text("more_info").or_else(|| text("type")),
        }
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(code) = self.code {
            out.push_str(&format!("Twilio error {code}"));
        }
        if let Some(m) = &self.message {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(m);
        }
        if let Some(more) = &self.more_info {
            out.push_str(&format!(" (see {more})"));
        }
        out
    }
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    creds: Credentials,
    hosts: Hosts,
    /// Shared with the clients made from this one for other credentials
    /// ([`Client::with_credentials`]): `--concurrency` bounds the pull's requests in flight
    /// in all.
    in_flight: Arc<Gate>,
    config: ClientConfig,
    sleeper: Sleeper,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("creds", &self.inner.creds)
            .field("hosts", &self.inner.hosts)
            .field("config", &self.inner.config)
            .finish()
    }
}

/// How a GET authenticates and what it takes for an answer.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// Send the credentials (never to a storage host a redirect names).
    credentials: bool,
    /// Take a 3xx as the answer (its body names the target).
    redirect: bool,
    /// Where it waits for a slot: a listing's next page goes before new requests.
    lane: Lane,
}

impl Mode {
    const API: Mode = Mode {
        credentials: true,
        redirect: false,
        lane: Lane::New,
    };
    const NEXT_PAGE: Mode = Mode {
        lane: Lane::Continuation,
        ..Mode::API
    };
    const REDIRECT: Mode = Mode {
        credentials: true,
        redirect: true,
        lane: Lane::New,
    };
    const PUBLIC: Mode = Mode {
        credentials: false,
        redirect: false,
        lane: Lane::New,
    };

    /// The URL as errors show it: a storage host's without its query (a signed URL's
    /// signature is a credential of sorts).
    fn show(&self, url: &Url) -> String {
        if self.credentials {
            return display_url(url);
        }
        let mut shown = url.clone();
        shown.set_query(None);
        display_url(&shown)
    }
}

/// What one attempt gave: an answer to keep (the body of a 2xx), or a reason to try again.
enum Attempt {
    Done(Result<Vec<u8>, ApiError>),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
        /// The HTTP status, when the server answered (429, 5xx); none for a transport error.
        status: Option<u16>,
    },
}

/// What one write request, sent once, gave. Only [`WriteOutcome::Unknown`] leaves the
/// account's state in doubt: the caller reads it back before sending again.
#[derive(Debug)]
pub enum WriteOutcome {
    /// 2xx: the body (JSON null for an empty one, e.g. a DELETE's 204).
    Done(Value),
    /// A 4xx other than 429: Twilio refused; nothing changed.
    Refused(ApiError),
    /// 429: not processed, safe to send again after waiting.
    Throttled { retry_after: Option<Duration> },
    /// 5xx, a timeout or a dropped connection: the write may or may not have happened.
    Unknown(String),
}

impl Client {
    pub fn new(
        creds: Credentials,
        hosts: Hosts,
        config: ClientConfig,
    ) -> crate::error::Result<Client> {
        Client::with_sleeper(creds, hosts, config, tokio_sleeper())
    }

    pub fn with_sleeper(
        creds: Credentials,
        hosts: Hosts,
        config: ClientConfig,
        sleeper: Sleeper,
    ) -> crate::error::Result<Client> {
        let http = reqwest::Client::builder()
            // A redirect could carry the Authorization header elsewhere: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(config.timeout)
            .user_agent(crate::created_by())
            .build()
            .map_err(|e| crate::error::Error::failed("cannot set up the HTTP client", e))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                creds,
                hosts,
                in_flight: Arc::new(Gate::new(config.concurrency)),
                config,
                sleeper,
                stats: Arc::new(Stats::default()),
            }),
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.inner.creds
    }

    pub fn hosts(&self) -> &Hosts {
        &self.inner.hosts
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    pub fn url(&self, product: Product, path: &str) -> Url {
        self.inner.hosts.url(product, path)
    }

    /// GET a JSON object, retrying 429, 5xx and connection errors with backoff.
    pub async fn get_json(&self, url: &Url) -> Result<Value, ApiError> {
        let body = self.get_body(url).await?;
        parse_json(&Method::GET, url, &body)
    }

    /// GET the body of a 2xx answer as bytes (a page is parsed lazily by [`Pager`]), retrying
    /// 429, 5xx and connection errors with backoff.
    pub async fn get_body(&self, url: &Url) -> Result<Vec<u8>, ApiError> {
        self.get_with(url, Mode::API, None).await
    }

    /// Where a Bulk Export day redirects to (a 307 whose body is `{"redirect_to": URL}`, also
    /// in `Location`): the redirect is read, never followed with the credentials.
    pub async fn get_redirect(&self, url: &Url) -> Result<Url, ApiError> {
        let body = self.get_with(url, Mode::REDIRECT, None).await?;
        let target = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("redirect_to")?.as_str().map(String::from));
        let unexpected = |what: String| ApiError {
            status: None,
            code: None,
            message: format!("GET {}: {what}", display_url(url)),
        };
        let target = target.ok_or_else(|| unexpected("no redirect_to in the answer".into()))?;
        let target = url
            .join(&target)
            .map_err(|e| unexpected(format!("redirect_to is not a URL ({e})")))?;
        if !matches!(target.scheme(), "https" | "http") {
            return Err(unexpected("redirect_to is not an http(s) URL".into()));
        }
        Ok(target)
    }

    /// GET a file from a storage host (where a Bulk Export day redirects) without credentials,
    /// with the same retries; errors show the URL without its query (a signed URL's signature).
    pub async fn get_public(&self, url: &Url) -> Result<Vec<u8>, ApiError> {
        self.get_with(url, Mode::PUBLIC, None).await
    }

    /// [`Client::get_public`] into `file` (emptied before each attempt) instead of memory: a
    /// Bulk Export day can be gigabytes, and the pull's memory must not grow with it.
    pub async fn get_public_into(
        &self,
        url: &Url,
        file: &mut std::fs::File,
    ) -> Result<(), ApiError> {
        self.get_with(url, Mode::PUBLIC, Some(file)).await.map(drop)
    }

    async fn get_with(
        &self,
        url: &Url,
        mode: Mode,
        mut sink: Option<&mut std::fs::File>,
    ) -> Result<Vec<u8>, ApiError> {
        let config = &self.inner.config;
        let mut retries = 0u32;
        loop {
            match self
                .attempt_with(Method::GET, url, None, mode, sink.as_deref_mut())
                .await
            {
                Attempt::Done(result) => return result,
                Attempt::Retry {
                    reason,
                    retry_after,
                    ..
                } => {
                    if retries >= config.max_retries {
                        return Err(ApiError {
                            status: None,
                            code: None,
                            message: format!(
                                "GET {} failed after {} attempts (last: {reason}); Twilio or the network is struggling",
                                mode.show(url),
                                retries + 1
                            ),
                        });
                    }
                    let delay = retry_after.unwrap_or_else(|| backoff(config, retries));
                    self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                    retries += 1;
                    (self.inner.sleeper)(delay).await;
                }
            }
        }
    }

    /// POST a form, once: a POST that failed midway may have been applied, so it is never
    /// retried blindly; the caller decides after checking the state.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<Value, ApiError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        match self.attempt(Method::POST, url, Some(body)).await {
            Attempt::Done(result) => result.and_then(|b| parse_json(&Method::POST, url, &b)),
            Attempt::Retry { reason, .. } => Err(ApiError {
                status: None,
                code: None,
                message: format!(
                    "POST {} failed ({reason}); not retried, since it may have been applied: check the account's state before trying again",
                    display_url(url)
                ),
            }),
        }
    }

    /// Sends a write (POST or DELETE) once and says what is known of its effect; never retries
    /// (the caller reads the state back after [`WriteOutcome::Unknown`]).
    pub async fn write_once(
        &self,
        method: Method,
        url: &Url,
        form: &[(String, String)],
    ) -> WriteOutcome {
        let body = (method != Method::DELETE).then(|| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish()
        });
        match self.attempt(method.clone(), url, body).await {
            Attempt::Done(Ok(body)) => match parse_json(&method, url, &body) {
                Ok(value) => WriteOutcome::Done(value),
                Err(e) => WriteOutcome::Refused(e),
            },
            Attempt::Done(Err(e)) => WriteOutcome::Refused(e),
            Attempt::Retry {
                status: Some(429),
                retry_after,
                ..
            } => WriteOutcome::Throttled { retry_after },
            Attempt::Retry { reason, .. } => WriteOutcome::Unknown(reason),
        }
    }

    /// GET one resource: `None` when Twilio answers 404 (it does not exist, or not there).
    pub async fn get_optional(&self, url: &Url) -> Result<Option<Value>, ApiError> {
        match self.get_json(url).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The same client (hosts, limits, retries) speaking with other credentials, e.g. a
    /// subaccount's own for its Messaging Services. Its requests count against the same bound
    /// on requests in flight.
    pub fn with_credentials(&self, creds: Credentials) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                creds,
                hosts: inner.hosts.clone(),
                in_flight: inner.in_flight.clone(),
                config: inner.config.clone(),
                sleeper: inner.sleeper.clone(),
                stats: inner.stats.clone(),
            }),
        }
    }

    async fn attempt(&self, method: Method, url: &Url, form: Option<String>) -> Attempt {
        self.attempt_with(method, url, form, Mode::API, None).await
    }

    async fn attempt_with(
        &self,
        method: Method,
        url: &Url,
        form: Option<String>,
        mode: Mode,
        sink: Option<&mut std::fs::File>,
    ) -> Attempt {
        let inner = &self.inner;
        let permit = inner.in_flight.acquire(mode.lane).await;
        let began = trace::now();
        inner.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = inner.http.request(method.clone(), url.clone());
        if mode.credentials {
            request = request
                .basic_auth(inner.creds.username(), Some(inner.creds.secret()))
                .header(ACCEPT, "application/json");
        }
        if let Some(form) = form {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    reason: describe_transport(&e),
                    retry_after: None,
                    status: None,
                }
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if let (Some(file), true) = (sink, status.is_success()) {
            return match stream_into(response, file).await {
                Ok(()) => Attempt::Done(Ok(Vec::new())),
                Err(StreamError::Transport(reason)) => Attempt::Retry {
                    reason,
                    retry_after: None,
                    status: None,
                },
                Err(StreamError::Local(e)) => Attempt::Done(Err(ApiError {
                    status: None,
                    code: None,
                    message: format!(
                        "GET {}: cannot write the download to a temporary file ({e})",
                        mode.show(url)
                    ),
                })),
            };
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    reason: describe_transport(&e),
                    retry_after: None,
                    status: None,
                }
            }
        };
        drop(permit);
        trace::request(began, &method, status.as_u16(), &mode.show(url));
        if status.is_success() || (mode.redirect && status.is_redirection()) {
            return Attempt::Done(Ok(Vec::from(body)));
        }
        let error = TwilioErrorBody::parse(&body);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {}{}", status.as_u16(), with_detail(&error)),
                retry_after: retry_after(&headers, &self.inner.config),
                status: Some(status.as_u16()),
            };
        }
        let mut e = self.map_error(&method, url, status, &error);
        if !mode.credentials {
            e.message = format!(
                "the download of {} failed (HTTP {})",
                mode.show(url),
                status.as_u16()
            );
        }
        Attempt::Done(Err(e))
    }

    /// Turns a final HTTP error into a message that says what to do.
    fn map_error(
        &self,
        method: &Method,
        url: &Url,
        status: StatusCode,
        body: &TwilioErrorBody,
    ) -> ApiError {
        let creds = &self.inner.creds;
        let request = format!("{method} {}", display_url(url));
        let detail = with_detail(body);
        let other_account = account_in_path(url).is_some_and(|sid| sid != creds.account_sid);
        let message = match status.as_u16() {
            401 | 403 if creds.kind == CredentialKind::ApiKey && other_account => format!(
                "an API key cannot read subaccounts' resources: use the parent account's SID and auth token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) instead (HTTP {}{detail}; {request})",
                status.as_u16()
            ),
            401 => format!(
                "the credentials were rejected (HTTP 401{detail}): check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY with TWILIO_API_SECRET ({request})"
            ),
            403 => format!(
                "the credentials may not read this resource (HTTP 403{detail}): use the parent account's own credentials ({request})"
            ),
            404 => format!(
                "not found (HTTP 404{detail}): the account or resource does not exist or these credentials cannot see it ({request})"
            ),
            code => format!("Twilio refused the request (HTTP {code}{detail}) ({request})"),
        };
        ApiError {
            status: Some(status.as_u16()),
            code: body.code,
            message,
        }
    }

    /// Pages through a list, starting at `first`, yielding the array under `key` page by page.
    pub fn pages(&self, first: Url, key: &str) -> Pager {
        Pager {
            client: self.clone(),
            origin: first.origin().ascii_serialization(),
            next: Some(first),
            key: key.to_string(),
            seen: HashSet::new(),
            first_mode: Mode::API,
        }
    }

    /// [`Client::pages`] for a list the caller waits on before it can go on (the pull's
    /// probes, which plan the rest of the window): its first page, too, takes a freed slot
    /// before any new request.
    pub fn pages_ahead(&self, first: Url, key: &str) -> Pager {
        Pager {
            first_mode: Mode::NEXT_PAGE,
            ..self.pages(first, key)
        }
    }
}

/// Follows `next_page_uri` (2010 API, relative) or `meta.next_page_url` (v1 APIs, absolute)
/// exactly as given, with two guards: a link must stay on the origin first called (the
/// credentials go nowhere else), and a link to a page already fetched stops the listing.
pub struct Pager {
    client: Client,
    origin: String,
    next: Option<Url>,
    key: String,
    seen: HashSet<String>,
    /// How the first page waits for a slot ([`Client::pages_ahead`]).
    first_mode: Mode,
}

impl Pager {
    /// The next page's records, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ApiError> {
        let Some(page) = self.next_raw_page().await? else {
            return Ok(None);
        };
        let records = page.records()?;
        records
            .iter()
            .map(|r| {
                serde_json::from_str(r)
                    .map_err(|e| page.shape_error(&format!("a record is not JSON ({e})")))
            })
            .collect::<Result<Vec<Value>, ApiError>>()
            .map(Some)
    }

    /// The next page as Twilio sent it, its records not yet parsed (the pull copies message
    /// records through without building a `Value` of each), or `None` after the last page.
    pub async fn next_raw_page(&mut self) -> Result<Option<RawPage>, ApiError> {
        self.next_raw_page_read(|_, _| None).await
    }

    /// [`Pager::next_raw_page`], the page read by `reader` where it can (one pass that also
    /// notes what the caller needs of each record: [`RawPage::notes`]); where it returns
    /// `None` the general reading takes the page.
    pub async fn next_raw_page_read<T: Send + 'static>(
        &mut self,
        reader: PageReader<T>,
    ) -> Result<Option<RawPage<T>>, ApiError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        // A listing's later pages go before new listings' first ones (`gate`).
        let mode = match self.seen.is_empty() {
            true => self.first_mode,
            false => Mode::NEXT_PAGE,
        };
        self.seen.insert(url.as_str().to_string());
        let body = self.client.get_with(&url, mode, None).await?;
        self.client
            .inner
            .stats
            .pages
            .fetch_add(1, Ordering::Relaxed);
        // A page of a thousand messages is a megabyte to read: off the async threads, which
        // meanwhile take in the other answers (a page read there holds up every request in
        // flight, and their slots with them).
        let key = self.key.clone();
        let page = tokio::task::spawn_blocking(move || RawPage::new(url, key, body, reader))
            .await
            .map_err(|e| ApiError {
                status: None,
                code: None,
                message: format!("reading a page failed: {e}"),
            })??;
        if let Some(link) = &page.next {
            let origin = Url::parse(&self.origin).expect("an origin is a URL");
            let next = origin.join(link).map_err(|e| {
                page.shape_error(&format!("next-page link {link:?} is not a URL ({e})"))
            })?;
            if next.origin().ascii_serialization() != self.origin {
                return Err(page.shape_error(&format!(
                    "the next-page link points at {}, not at {} which was called; not following it (credentials are only sent to the origin called)",
                    next.origin().ascii_serialization(),
                    self.origin
                )));
            }
            if self.seen.contains(next.as_str()) {
                return Err(page.shape_error(&format!(
                    "the next-page link {} repeats a page already fetched; stopping rather than looping (is this a mock server?)",
                    display_url(&next)
                )));
            }
            self.next = Some(next);
        }
        Ok(Some(page))
    }

    /// Whether another page follows the last one fetched.
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }

    /// Every record of the list (small lists only).
    pub async fn collect_all(mut self) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page().await? {
            out.extend(page);
        }
        Ok(out)
    }
}

/// A caller's own reading of a page's body (its second argument is the list's key): each
/// record's place in the body with what the caller noted of it, and the next-page link
/// (`next_page_uri`; none when null or empty). It must accept only JSON text and find what
/// the general reading finds; `None` hands the page to the general reading, which also
/// says what is wrong with a page.
pub type PageReader<T> = fn(&str, &str) -> Option<PageRead<T>>;

/// What a [`PageReader`] found.
pub struct PageRead<T> {
    pub records: Vec<(std::ops::Range<usize>, T)>,
    pub next: Option<String>,
}

/// One page of a list, as received: the records are borrowed from the body on demand.
pub struct RawPage<T = ()> {
    url: Url,
    key: String,
    body: String,
    /// Where each record of the list lies in `body`, found by the one pass over the page
    /// that also read the next link; `None` when that pass failed (`records` tells why).
    records: Option<Vec<std::ops::Range<usize>>>,
    /// What the caller's [`PageReader`] noted of each record, when it read the page.
    notes: Option<Vec<T>>,
    /// `next_page_uri` (relative), else `meta.next_page_url` (absolute); none when null or
    /// empty.
    next: Option<String>,
}

/// The page's top level: the list under its key, the 2010 API's `next_page_uri`, the v1 APIs'
/// `meta`; every other member is skipped unparsed.
type PageFields<'a> = std::collections::HashMap<&'a str, &'a serde_json::value::RawValue>;

/// What one pass over a page finds: the records' places in the body and the next link.
struct PageIndex {
    records: Option<Vec<std::ops::Range<usize>>>,
    next: Option<String>,
}

/// Reads a page in one pass: a page of a thousand messages is a megabyte, read once here and
/// once more by whoever reads its records (a page cut into a map of its members, then the
/// list, then the records, reads it three times).
struct PageIndexer<'k> {
    key: &'k str,
    base: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageIndexer<'_> {
    type Value = PageIndex;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<PageIndex, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageIndexer<'_> {
    type Value = PageIndex;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageIndex, A::Error> {
        use serde_json::value::RawValue;
        #[derive(serde::Deserialize)]
        struct Meta {
            next_page_url: Option<String>,
        }
        let text = |raw: &RawValue| -> Option<String> {
            serde_json::from_str::<Option<String>>(raw.get())
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
        };
        let (mut records, mut next_uri, mut next_url) = (None, None, None);
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if name == self.key {
                let list: Vec<&'de RawValue> = map.next_value()?;
                records = Some(
                    list.iter()
                        .map(|r| {
                            let start = r.get().as_ptr() as usize - self.base;
                            start..start + r.get().len()
                        })
                        .collect(),
                );
            } else if name == "next_page_uri" {
                next_uri = text(map.next_value()?);
            } else if name == "meta" {
                let meta: &RawValue = map.next_value()?;
                next_url = serde_json::from_str::<Meta>(meta.get())
                    .ok()
                    .and_then(|m| m.next_page_url)
                    .filter(|s| !s.is_empty());
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(PageIndex {
            records,
            next: next_uri.or(next_url),
        })
    }
}

impl<T> RawPage<T> {
    fn new(
        url: Url,
        key: String,
        body: Vec<u8>,
        reader: PageReader<T>,
    ) -> Result<RawPage<T>, ApiError> {
        let mut page = RawPage {
            url,
            key,
            body: String::new(),
            records: None,
            notes: None,
            next: None,
        };
        page.body = String::from_utf8(body)
            .map_err(|e| page.shape_error(&format!("the page is not UTF-8 text ({e})")))?;
        if let Some(read) = reader(&page.body, &page.key) {
            let (records, notes) = read.records.into_iter().unzip();
            page.records = Some(records);
            page.notes = Some(notes);
            page.next = read.next;
            return Ok(page);
        }
        let indexer = PageIndexer {
            key: &page.key,
            base: page.body.as_ptr() as usize,
        };
        let mut de = serde_json::Deserializer::from_str(&page.body);
        let index = serde::de::DeserializeSeed::deserialize(indexer, &mut de)
            .and_then(|index| de.end().map(|()| index));
        match index {
            Ok(index) => {
                page.records = index.records;
                page.next = index.next;
            }
            // Something odd (not an object, the list not an array): the member by member
            // reading below says what, or reads the link where the list alone is wrong.
            Err(_) => page.next = page.next_link()?,
        }
        Ok(page)
    }

    fn fields(&self) -> Result<PageFields<'_>, ApiError> {
        serde_json::from_str(&self.body)
            .map_err(|e| self.shape_error(&format!("the page is not a JSON object ({e})")))
    }

    /// What the caller's [`PageReader`] noted of each record, in the records' order; `None`
    /// when the general reading took the page.
    pub fn notes(&self) -> Option<&[T]> {
        self.notes.as_deref()
    }

    /// The records under the list's key, each its JSON text.
    pub fn records(&self) -> Result<Vec<&str>, ApiError> {
        if let Some(ranges) = &self.records {
            return Ok(ranges.iter().map(|r| &self.body[r.clone()]).collect());
        }
        let key = &self.key;
        let fields = self.fields()?;
        let list = fields
            .get(key.as_str())
            .ok_or_else(|| self.shape_error(&format!("no \"{key}\" array")))?;
        serde_json::from_str::<Vec<&serde_json::value::RawValue>>(list.get())
            .map(|records| records.into_iter().map(|r| r.get()).collect())
            .map_err(|_| self.shape_error(&format!("no \"{key}\" array")))
    }

    /// `next_page_uri` (relative), else `meta.next_page_url` (absolute); none when null or empty.
    fn next_link(&self) -> Result<Option<String>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Meta {
            next_page_url: Option<String>,
        }
        let fields = self.fields()?;
        let text = |raw: Option<&&serde_json::value::RawValue>| -> Option<String> {
            serde_json::from_str::<Option<String>>(raw?.get())
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
        };
        if let Some(link) = text(fields.get("next_page_uri")) {
            return Ok(Some(link));
        }
        Ok(fields
            .get("meta")
            .and_then(|m| serde_json::from_str::<Meta>(m.get()).ok())
            .and_then(|m| m.next_page_url)
            .filter(|s| !s.is_empty()))
    }

    fn shape_error(&self, what: &str) -> ApiError {
        ApiError {
            status: Some(200),
            code: None,
            message: format!(
                "GET {}: unexpected response: {what}",
                display_url(&self.url)
            ),
        }
    }
}

/// Why streaming a body into a file stopped: the connection (worth another attempt) or the
/// local file (not).
enum StreamError {
    Transport(String),
    Local(std::io::Error),
}

/// Writes the body into `file` from its start, chunk by chunk as it arrives.
async fn stream_into(
    mut response: reqwest::Response,
    file: &mut std::fs::File,
) -> Result<(), StreamError> {
    use std::io::{Seek, Write};
    file.set_len(0)
        .and_then(|()| file.rewind())
        .map_err(StreamError::Local)?;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => file.write_all(&chunk).map_err(StreamError::Local)?,
            Ok(None) => return file.flush().map_err(StreamError::Local),
            Err(e) => return Err(StreamError::Transport(describe_transport(&e))),
        }
    }
}

/// A 2xx body as JSON: an empty one (a DELETE's 204) is null.
fn parse_json(method: &Method, url: &Url, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice::<Value>(body).map_err(|e| ApiError {
        status: Some(200),
        code: None,
        message: format!(
            "{method} {}: the response is not JSON ({e})",
            display_url(url)
        ),
    })
}

/// The account SID in a 2010 path (`/2010-04-01/Accounts/AC.../...`), if any.
fn account_in_path(url: &Url) -> Option<&str> {
    let mut segments = url.path_segments()?;
    while let Some(s) = segments.next() {
        if s == "Accounts" {
            return segments.next().map(|s| s.trim_end_matches(".json"));
        }
    }
    None
}

/// A URL for messages: decoded query (readable `DateSent>`), no userinfo.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let text = shown.to_string();
    text.replace("%3E", ">")
        .replace("%3C", "<")
        .replace("%3A", ":")
}

fn with_detail(body: &TwilioErrorBody) -> String {
    let d = body.describe();
    if d.is_empty() {
        d
    } else {
        format!(", {d}")
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL; keep only the kind and the cause chain.
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "connection error".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// `Retry-After` in seconds (Twilio sends seconds), capped so a bad value cannot stall a pull.
fn retry_after(headers: &HeaderMap, config: &ClientConfig) -> Option<Duration> {
    let secs: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !(secs.is_finite() && secs >= 0.0) {
        return None;
    }
    Some(Duration::from_secs_f64(secs).min(config.retry_cap.max(Duration::from_secs(1))))
}

/// Exponential backoff with jitter: `base * 2^n`, capped, scaled by a random factor in
/// [0.5, 1), so that concurrent workers do not retry in step.
fn backoff(config: &ClientConfig, retries: u32) -> Duration {
    let exp = config
        .retry_base
        .saturating_mul(1u32.checked_shl(retries.min(20)).unwrap_or(u32::MAX))
        .min(config.retry_cap);
    exp.mul_f64(0.5 + 0.5 * random_fraction())
}

/// A random number in [0, 1) from the standard library's randomly seeded hasher: jitter needs
/// no cryptographic quality, and it spares a dependency.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
