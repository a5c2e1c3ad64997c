//! The ordered API requests that perform the moves: one function per step kind.

use super::*;
use crate::model::IncomingPhoneNumber;

fn field(name: &'static str, value: Template) -> FormField {
    FormField { name, value }
}

/// Writes the Consents item of `row` for `sender` (one line of a re-seed file, without its
/// line end) to `out`: a JSON object with the fields in this order, as serde_json writes it
/// (rendered by hand: the files run to millions of lines). The sender may be the placeholder
/// of the customer's new service (`${C_X_SERVICE_SID}`), known only at run time.
pub(super) fn write_consent_item(out: &mut Vec<u8>, row: &LostOptOut<'_>, sender: &str) {
    use crate::output::push_json_str;
    // Only the opt-out keyword is the end user's own message; a 21610 failure is Twilio's
    // record of an opt-out whose source it does not tell.
    let source = if row.evidence == "inbound-keyword" {
        "opt-out-message"
    } else {
        "others"
    };
    out.extend_from_slice(b"{\"contact_id\":");
    push_json_str(out, row.end_user);
    out.extend_from_slice(b",\"correlation_id\":");
    match sid_correlation_id(row.evidence_message_sid) {
        Some(hex) => {
            out.push(b'"');
            out.extend(hex.bytes().map(|b| b.to_ascii_lowercase()));
            out.push(b'"');
        }
        None => push_json_str(out, &correlation_id(row)),
    }
    out.extend_from_slice(b",\"sender_id\":");
    push_json_str(out, sender);
    out.extend_from_slice(b",\"status\":\"opt-out\",\"source\":");
    push_json_str(out, source);
    out.extend_from_slice(b",\"date_of_consent\":");
    push_json_str(out, row.opted_out_at);
    out.push(b'}');
}

/// The 32 hex digits of a message sid (`SM` and 32 hex digits), in any case.
fn sid_correlation_id(sid: &str) -> Option<&str> {
    // Without an early exit, so that the check runs over many bytes at once.
    let hex = |digits: &[u8]| {
        digits
            .iter()
            .fold(true, |all, b| all & b.is_ascii_hexdigit())
    };
    (sid.len() == 34 && sid.is_char_boundary(2) && hex(&sid.as_bytes()[2..])).then(|| &sid[2..])
}

/// 32 hex characters, unique per item: the evidence message's sid digits, which trace the
/// item back to the message that proved the opt-out; a hash where the sid has another shape.
pub(super) fn correlation_id(row: &LostOptOut<'_>) -> String {
    let sid = row.evidence_message_sid;
    if let Some(hex) = sid_correlation_id(sid) {
        return hex.to_ascii_lowercase();
    }
    // FNV-1a, twice with different seeds: stable across versions, unlike std's hasher.
    let text = format!("{}|{}|{}", row.end_user, row.twilio_number, sid);
    let fnv = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

/// Consents Bulk's documented limit: 100 requests a minute.
pub const CONSENTS_REQUESTS_PER_MINUTE: usize = 100;
/// FriendlyName's limit in the spec.
pub const SERVICE_NAME_MAX: usize = 64;
/// The folder beside plan.json that holds the re-seed files.
pub const RESEED_DIR: &str = "reseed";

pub(super) struct BuiltSteps {
    pub steps: Vec<Step>,
    pub placeholders: Vec<Placeholder>,
    pub files: Vec<ReseedFile>,
    pub suppression: Suppression,
}

/// Why Consents Bulk cannot take an end user that is not E.164: the reason column of the
/// suppression file, led by the stable code `not-e164`.
pub(super) fn not_e164_reason(end_user: &str) -> String {
    let what = if let Some((channel, _)) = end_user.split_once(':') {
        format!("{} address", channel.to_ascii_lowercase())
    } else {
        let digits = end_user.strip_prefix('+').unwrap_or(end_user);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= 8 {
            "short code".to_string()
        } else if end_user.chars().any(char::is_alphabetic) {
            "alphanumeric sender id".to_string()
        } else {
            "not a phone number in E.164".to_string()
        }
    };
    format!("not-e164: {what}, Consents Bulk takes E.164 only: re-seed by hand")
}

/// The parent sender an opt-out belongs to: its service, or the number.
pub(super) fn parent_sender<'a>(row: &LostOptOut<'a>) -> &'a str {
    if row.scope == "service" && !row.messaging_service_sid.is_empty() {
        row.messaging_service_sid
    } else {
        row.twilio_number
    }
}

/// One opt-out per (sender, end user), the earliest (the re-seed's rule; on a tie the first
/// listed), in the order of (sender, end user). `candidates` are (sender, lost row) in the
/// order the rows are met; `sender` tells a sender's text.
fn keep_earliest<'a, T: Copy>(
    lost: &'a LostRows,
    mut candidates: Vec<(T, u32)>,
    sender: impl Fn(T, LostOptOut<'a>) -> &'a str,
) -> Vec<(T, u32)> {
    let key = |&(s, row): &(T, u32)| {
        let row = lost.get(row as usize);
        (sender(s, row), row.end_user, row.opted_out_at)
    };
    // Stable: among equal times the first listed comes first, and stays.
    candidates.sort_by(|a, b| key(a).cmp(&key(b)));
    candidates.dedup_by(|later, kept| {
        let (a, b) = (key(later), key(kept));
        (a.0, a.1) == (b.0, b.1)
    });
    candidates
}

/// Where a moving number's messages go in the subaccount.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// No service: the number sends on its own.
    None,
    /// A service the plan creates (index into the customer's new services).
    Created(usize),
    /// A service of the subaccount the mapping names.
    Named(String),
}

/// A service the plan creates for a customer, copying one parent service's settings.
struct NewService {
    source_sid: String,
    friendly_name: String,
    variable: String,
    settings: Vec<(&'static str, String)>,
}

/// The settings of a parent service a new service copies, as create-service form fields
/// (the spec's names); fields the snapshot does not hold are left to Twilio's defaults.
pub fn service_settings(service: &crate::model::MessagingService) -> Vec<(&'static str, String)> {
    let text = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_string);
    let flag = |v: Option<bool>| v.map(|b| b.to_string());
    [
        ("InboundRequestUrl", text(&service.inbound_request_url)),
        ("InboundMethod", text(&service.inbound_method)),
        ("FallbackUrl", text(&service.fallback_url)),
        ("FallbackMethod", text(&service.fallback_method)),
        ("StatusCallback", text(&service.status_callback)),
        ("StickySender", flag(service.sticky_sender)),
        ("AreaCodeGeomatch", flag(service.area_code_geomatch)),
        ("SmartEncoding", flag(service.smart_encoding)),
        ("MmsConverter", flag(service.mms_converter)),
        (
            "ValidityPeriod",
            service.validity_period.map(|v| v.to_string()),
        ),
        ("Usecase", text(&service.usecase)),
        (
            "UseInboundWebhookOnNumber",
            flag(service.use_inbound_webhook_on_number),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect()
}

/// At most `max` characters, cut on a character boundary.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The new services of one customer: one when every parent service its numbers leave has the
/// same settings, else one per parent service, named "<customer> (<parent service>)".
/// `parents` are the parent services in the order the customer's numbers first name them.
fn new_services(
    snapshot: &Snapshot,
    key: &str,
    customer: &str,
    parents: &[String],
) -> Vec<NewService> {
    let settings = |sid: &str| {
        snapshot
            .services
            .iter()
            .find(|s| s.sid == sid)
            .map(service_settings)
            .unwrap_or_default()
    };
    let Some(first) = parents.first() else {
        return Vec::new();
    };
    let first_settings = settings(first);
    if parents.iter().all(|p| settings(p) == first_settings) {
        return vec![NewService {
            source_sid: first.clone(),
            friendly_name: cut(customer.trim(), SERVICE_NAME_MAX),
            variable: format!("{key}_SERVICE_SID"),
            settings: first_settings,
        }];
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    parents
        .iter()
        .enumerate()
        .map(|(i, sid)| {
            let parent_name = snapshot
                .services
                .iter()
                .find(|s| &s.sid == sid)
                .and_then(|s| s.friendly_name.clone())
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| sid.clone());
            // The parent's name tells them apart: it keeps its room, the customer's name is
            // shortened first.
            let suffix = format!(" ({})", cut(parent_name.trim(), 40));
            let room = SERVICE_NAME_MAX.saturating_sub(suffix.chars().count());
            let mut name = format!("{}{suffix}", cut(customer.trim(), room));
            let mut n = 2;
            while !used.insert(name.clone()) {
                let tag = format!(" #{n}");
                name = format!(
                    "{}{tag}",
                    cut(&name, SERVICE_NAME_MAX - tag.chars().count())
                );
                n += 1;
            }
            NewService {
                source_sid: sid.clone(),
                friendly_name: name,
                variable: format!("{key}_SERVICE_{}_SID", i + 1),
                settings: settings(sid),
            }
        })
        .collect()
}

/// Whether the parent services these numbers leave differ in the settings a new service
/// copies (the service-settings-differ finding).
pub fn settings_differ(snapshot: &Snapshot, parents: &[String]) -> bool {
    let settings = |sid: &str| {
        snapshot
            .services
            .iter()
            .find(|s| s.sid == sid)
            .map(service_settings)
            .unwrap_or_default()
    };
    parents
        .split_first()
        .is_some_and(|(first, rest)| rest.iter().any(|p| settings(p) != settings(first)))
}

/// Appends the steps of one customer, each kind from its own function.
struct CustomerSteps<'a> {
    snapshot: &'a Snapshot,
    name: String,
    key: String,
    account: Template,
    account_var: String,
    token_var: String,
    steps: &'a mut Vec<Step>,
    placeholders: &'a mut Vec<Placeholder>,
}

impl CustomerSteps<'_> {
    fn push(
        &mut self,
        kind: StepKind,
        number: Option<&NumberPlan>,
        description: String,
        request: Request,
    ) -> &mut Step {
        self.steps.push(Step {
            order: self.steps.len() + 1,
            kind,
            customer: self.name.clone(),
            customer_key: self.key.clone(),
            number_sid: number.map(|n| n.number_sid.clone()),
            phone_number: number.map(|n| n.phone_number.clone()),
            description,
            placeholders: request.placeholders(),
            request,
            captures: Vec::new(),
            source_service_sid: None,
            service_sid_source: None,
            reseed: None,
        });
        self.steps.last_mut().expect("just pushed")
    }

    fn placeholder(&mut self, name: &str, source: PlaceholderSource, description: String) {
        self.placeholders.push(Placeholder {
            name: name.to_string(),
            customer: self.name.clone(),
            source,
            description,
        });
    }

    fn service_name(&self, sid: &str) -> String {
        self.snapshot
            .services
            .iter()
            .find(|s| s.sid == sid)
            .and_then(|s| s.friendly_name.clone())
            .unwrap_or_default()
    }

    fn create_subaccount(&mut self) {
        let name = self.name.clone();
        let (account_var, token_var) = (self.account_var.clone(), self.token_var.clone());
        let step = self.push(
            StepKind::CreateSubaccount,
            None,
            format!(
                "create the subaccount {name:?}; its sid and auth token come from the response"
            ),
            Request {
                method: "POST",
                url: Template::text(format!("{API_BASE}/Accounts.json")),
                auth: Auth::Parent,
                form: vec![field("FriendlyName", Template::text(name.clone()))],
            },
        );
        step.captures = vec![
            Capture {
                variable: account_var.clone(),
                field: "sid",
            },
            Capture {
                variable: token_var.clone(),
                field: "auth_token",
            },
        ];
        self.placeholder(
            &account_var,
            PlaceholderSource::Captured,
            format!("the sid of the new subaccount {name:?}, from the create-subaccount step"),
        );
        self.placeholder(&token_var, PlaceholderSource::Captured, format!("the auth token of the new subaccount {name:?}, from the create-subaccount step; kept in the script's memory only"));
    }

    fn remove_from_service(&mut self, n: &NumberPlan, mg: &str) {
        let description = format!(
            "remove {} from the parent's Messaging Service {:?} ({mg})",
            n.phone_number,
            self.service_name(mg)
        );
        self.push(
            StepKind::RemoveFromService,
            Some(n),
            description,
            Request {
                method: "DELETE",
                url: Template::text(format!(
                    "{MESSAGING_BASE}/Services/{mg}/PhoneNumbers/{}",
                    n.number_sid
                )),
                auth: Auth::Parent,
                form: vec![],
            },
        );
    }

    /// `extra` are the BundleSid/AddressSid fields with their placeholders.
    fn transfer_number(&mut self, n: &NumberPlan, extra: Vec<FormField>, needs: &[String]) {
        let parent = self.snapshot.parent_sid().to_string();
        let mut form = vec![field("AccountSid", self.account.clone())];
        form.extend(extra);
        let extra = if needs.is_empty() {
            String::new()
        } else {
            format!(
                " ({}: the subaccount's own, which you create first)",
                needs.join(", ")
            )
        };
        let description = format!(
            "transfer {} ({}) from the parent to {:?}{extra}",
            n.phone_number, n.number_sid, self.name
        );
        self.push(
            StepKind::TransferNumber,
            Some(n),
            description,
            Request {
                method: "POST",
                url: Template::text(format!(
                    "{API_BASE}/Accounts/{parent}/IncomingPhoneNumbers/{}.json",
                    n.number_sid
                )),
                auth: Auth::Parent,
                form,
            },
        );
    }

    fn create_messaging_service(&mut self, service: &NewService) {
        let parent_name = self.service_name(&service.source_sid);
        let mut form = vec![field(
            "FriendlyName",
            Template::text(service.friendly_name.clone()),
        )];
        form.extend(
            service
                .settings
                .iter()
                .map(|(name, value)| field(name, Template::text(value.clone()))),
        );
        let copied = if service.settings.is_empty() {
            "the snapshot holds none of its settings: set the inbound webhook yourself, or inbound messages are neither delivered nor logged".to_string()
        } else {
            format!(
                "copying its {}",
                service
                    .settings
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let description = format!(
            "create the Messaging Service {:?} in the subaccount of {:?} from the parent's {parent_name:?} ({}), {copied}; its sid comes from the response",
            service.friendly_name, self.name, service.source_sid
        );
        let variable = service.variable.clone();
        let step = self.push(
            StepKind::CreateMessagingService,
            None,
            description,
            Request {
                method: "POST",
                url: Template::text(format!("{MESSAGING_BASE}/Services")),
                auth: Auth::Subaccount,
                form,
            },
        );
        step.captures = vec![Capture {
            variable: variable.clone(),
            field: "sid",
        }];
        step.source_service_sid = Some(service.source_sid.clone());
        let description = format!(
            "the sid of the new Messaging Service {:?} of {:?}, from the create-messaging-service step",
            service.friendly_name, self.name
        );
        self.placeholder(&variable, PlaceholderSource::Captured, description);
    }

    fn add_to_service(
        &mut self,
        n: &NumberPlan,
        service: Template,
        source: ServiceSidSource,
        what: String,
    ) {
        // Twilio refuses a number still in another service (error 21712): the number left the
        // parent's service in its remove-from-service step.
        let description = format!(
            "add {} to {what} (a number can be in one service only: error 21712 if it is still in another)",
            n.phone_number
        );
        let step = self.push(
            StepKind::AddToService,
            Some(n),
            description,
            Request {
                method: "POST",
                url: Template::text(format!("{MESSAGING_BASE}/Services/"))
                    .push_parts(&service)
                    .push_text("/PhoneNumbers"),
                auth: Auth::Subaccount,
                form: vec![field(
                    "PhoneNumberSid",
                    Template::text(n.number_sid.clone()),
                )],
            },
        );
        step.service_sid_source = Some(source);
    }

    fn reseed_opt_outs(&mut self, part: ReseedPart, of_file: usize) {
        let lines = match (part.first_line, part.last_line) {
            (Some(a), Some(b)) => format!("lines {a}-{b} of {}", part.reseed_file),
            _ => part.reseed_file.clone(),
        };
        let description = format!(
            "re-seed {} lost opt-out{} for sender {} in the subaccount of {:?} ({lines}, {of_file} in the file): {} request{} of at most {CONSENTS_PER_REQUEST} items, at most {CONSENTS_REQUESTS_PER_MINUTE} a minute; every item's error_code is checked",
            part.items,
            plural(part.items),
            part.sender_id,
            self.name,
            part.batches,
            plural(part.batches),
        );
        let sender_vars: Vec<String> = part.sender_id.vars().map(str::to_string).collect();
        let step = self.push(
            StepKind::ReseedOptOuts,
            None,
            description,
            Request {
                method: "POST",
                url: Template::text(CONSENTS_BULK_URL),
                auth: Auth::Subaccount,
                form: vec![field("Items", Template::text("<batch>"))],
            },
        );
        for v in sender_vars {
            if !step.placeholders.contains(&v) {
                step.placeholders.push(v);
            }
        }
        step.reseed = Some(part);
    }
}

/// Shell-safe variables for the subaccount's own bundles and addresses: one per distinct
/// parent resource, since numbers sharing a parent bundle can share the new one.
struct RequiredVars {
    key: String,
    what: &'static str,
    vars: BTreeMap<String, String>,
}

impl RequiredVars {
    fn new(key: &str, what: &'static str) -> Self {
        RequiredVars {
            key: key.to_string(),
            what,
            vars: BTreeMap::new(),
        }
    }
    fn var(&mut self, parent_sid: String) -> String {
        let n = self.vars.len() + 1;
        let (key, what) = (&self.key, self.what);
        self.vars
            .entry(parent_sid)
            .or_insert_with(|| {
                if n == 1 {
                    format!("{key}_{what}")
                } else {
                    format!("{key}_{what}_{n}")
                }
            })
            .clone()
    }
}

pub(super) fn build_steps(
    snapshot: &Snapshot,
    numbers: &[NumberPlan],
    customers: &mut [CustomerPlan],
    lost: &LostRows,
    lost_by_number: &HashMap<&str, Vec<u32>>,
) -> BuiltSteps {
    let mut steps: Vec<Step> = Vec::new();
    let mut placeholders: Vec<Placeholder> = Vec::new();
    let mut files: Vec<ReseedFile> = Vec::new();
    let mut used_files: BTreeSet<String> = BTreeSet::new();
    let mut suppression = Suppression::default();
    let by_sid: HashMap<&str, &IncomingPhoneNumber> = snapshot
        .numbers
        .iter()
        .map(|n| (n.sid.as_str(), n))
        .collect();

    for (customer_index, customer) in customers.iter_mut().enumerate() {
        let customer_index = customer_index as u32;
        let mine = |n: &&NumberPlan| {
            n.action == Action::Transfer
                && n.target_customer.as_deref() == Some(customer.customer.as_str())
                && n.target_account_sid == customer.account_sid
        };
        let own: Vec<&NumberPlan> = numbers.iter().filter(mine).filter(|n| n.moves()).collect();
        let blocked: Vec<&NumberPlan> = numbers.iter().filter(mine).filter(|n| n.blocked).collect();
        // Opt-outs of this customer's blocked numbers: not lost yet, listed with the reason.
        let mut stuck: Vec<(u32, u32)> = Vec::new();
        for n in &blocked {
            let codes: Vec<&str> = n
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .map(|f| f.code.as_str())
                .collect();
            let reason = suppression.reason(format!(
                "number-blocked: {} ({}): it does not move in this plan, so nothing is lost yet; clear the blockers and make the plan again",
                n.phone_number,
                codes.join(", ")
            ));
            for &row in lost_by_number
                .get(n.number_sid.as_str())
                .into_iter()
                .flatten()
            {
                stuck.push((reason, row));
            }
        }
        let stuck_rows: Vec<SuppressionEntry> =
            keep_earliest(lost, stuck, |_, row| parent_sender(&row))
                .into_iter()
                .map(|(reason, row)| SuppressionEntry {
                    row,
                    customer: customer_index,
                    sender: NO_SENDER,
                    what: Reseeded::Blocked(reason),
                })
                .collect();
        if own.is_empty() {
            suppression.push_customer(customer_index, stuck_rows);
            continue;
        }
        let key = customer.key.clone();
        let account_var = format!("{key}_ACCOUNT_SID");
        let mut cs = CustomerSteps {
            snapshot,
            name: customer.customer.clone(),
            key: key.clone(),
            account: match &customer.account_sid {
                Some(sid) => Template::text(sid.clone()),
                None => Template::var(&account_var),
            },
            account_var,
            token_var: format!("{key}_AUTH_TOKEN"),
            steps: &mut steps,
            placeholders: &mut placeholders,
        };

        // 1. The subaccount, where none exists.
        match &customer.account_sid {
            None => cs.create_subaccount(),
            Some(sid) => {
                let token_var = cs.token_var.clone();
                cs.placeholder(&token_var, PlaceholderSource::Fetched, format!("the auth token of subaccount {sid}, read with the parent's credentials when the script runs (or exported by you); kept in the script's memory only"));
            }
        }

        // Where each number's messages go after the move.
        let mut parents: Vec<String> = Vec::new();
        for n in &own {
            if n.target_messaging_service_sid.is_none() {
                if let Some(mg) = n.messaging_service_sids.first() {
                    if !parents.contains(mg) {
                        parents.push(mg.clone());
                    }
                }
            }
        }
        let services = new_services(snapshot, &key, &customer.customer, &parents);
        let destination = |n: &NumberPlan| match (
            &n.target_messaging_service_sid,
            n.messaging_service_sids.first(),
        ) {
            (Some(mg), _) => Destination::Named(mg.clone()),
            (None, Some(parent)) => Destination::Created(
                services
                    .iter()
                    .position(|s| &s.source_sid == parent)
                    .unwrap_or(0),
            ),
            (None, None) => Destination::None,
        };

        // 2-3. Per number: leave the parent's services, then the transfer.
        let mut bundles = RequiredVars::new(&key, "BUNDLE_SID");
        let mut addresses = RequiredVars::new(&key, "ADDRESS_SID");
        let mut identities = RequiredVars::new(&key, "IDENTITY_SID");
        for n in &own {
            let number = by_sid[n.number_sid.as_str()];
            for mg in &n.messaging_service_sids {
                cs.remove_from_service(n, mg);
            }
            let mut extra = Vec::new();
            let mut needs = Vec::new();
            if let Some(bundle) = number.bundle_sid.as_deref().filter(|s| !s.is_empty()) {
                let var = bundles.var(bundle.to_string());
                needs.push(format!("BundleSid from ${{{var}}}"));
                extra.push(field("BundleSid", Template::var(&var)));
            }
            let needs_address = number.address_sid.as_deref().is_some_and(|s| !s.is_empty())
                || number
                    .address_requirements
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && r != "none");
            if needs_address {
                let parent_address = number.address_sid.clone().unwrap_or_else(|| {
                    format!(
                        "requirement:{}",
                        number.address_requirements.as_deref().unwrap_or("")
                    )
                });
                let var = addresses.var(parent_address);
                needs.push(format!("AddressSid from ${{{var}}}"));
                extra.push(field("AddressSid", Template::var(&var)));
            }
            if let Some(identity) = number.identity_sid.as_deref().filter(|s| !s.is_empty()) {
                let var = identities.var(identity.to_string());
                needs.push(format!("IdentitySid from ${{{var}}}"));
                extra.push(field("IdentitySid", Template::var(&var)));
            }
            cs.transfer_number(n, extra, &needs);
        }
        for (what, map) in [
            ("regulatory bundle", &bundles.vars),
            ("address", &addresses.vars),
            ("identity", &identities.vars),
        ] {
            for (parent_sid, var) in map {
                let replaces = if parent_sid.starts_with("requirement:") {
                    String::new()
                } else {
                    format!(" (replacing the parent's {parent_sid})")
                };
                let name = &customer.customer;
                cs.placeholder(
                    var,
                    PlaceholderSource::Required,
                    format!(
                        "the sid of an {what} you create in the subaccount of {name:?}{replaces}"
                    ),
                );
                customer.required.push(var.clone());
            }
        }

        // 4. The customer's own services, then each number into its service.
        for service in &services {
            cs.create_messaging_service(service);
        }
        for n in &own {
            match destination(n) {
                Destination::None => {}
                Destination::Created(i) => {
                    let s = &services[i];
                    let what = format!("the new Messaging Service {:?}", s.friendly_name);
                    cs.add_to_service(
                        n,
                        Template::var(&s.variable),
                        ServiceSidSource::Created,
                        what,
                    );
                }
                Destination::Named(mg) => {
                    let what =
                        format!("the subaccount's own Messaging Service {mg} named in the mapping");
                    cs.add_to_service(n, Template::text(mg.clone()), ServiceSidSource::Named, what);
                }
            }
        }

        // 5. Re-seed the lost opt-outs in the subaccount. A number now in a service sends
        // through it, so its opt-outs go to the service; a number outside any service keeps
        // number-scoped opt-outs. Consents Bulk takes E.164 contact ids only: other end users
        // (WhatsApp, short codes, alphanumeric ids) stay in the opt-out export.
        // The senders of the customer, then (sender, row) per lost row of its numbers.
        let mut senders: Vec<(Template, usize)> = Vec::new();
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for n in &own {
            let (sender, sender_name) = match destination(n) {
                Destination::None => (
                    Template::text(n.phone_number.clone()),
                    n.phone_number.clone(),
                ),
                Destination::Created(i) => (
                    Template::var(&services[i].variable),
                    services[i].friendly_name.clone(),
                ),
                Destination::Named(mg) => {
                    let name = snapshot
                        .services
                        .iter()
                        .find(|s| s.sid == mg)
                        .and_then(|s| s.friendly_name.clone())
                        .unwrap_or_else(|| mg.clone());
                    (Template::text(mg), name)
                }
            };
            let local = match senders.iter().position(|(s, _)| *s == sender) {
                Some(i) => i,
                None => {
                    let global = suppression.sender(sender.to_string(), sender_name);
                    senders.push((sender, global));
                    senders.len() - 1
                }
            };
            for &row in lost_by_number
                .get(n.number_sid.as_str())
                .into_iter()
                .flatten()
            {
                candidates.push((local as u32, row));
            }
        }
        // One item per (sender, end user), the earliest opt-out standing, in that order:
        // the suppression file lists them all, the re-seed file the E.164 ones.
        let chosen = keep_earliest(lost, candidates, |s, _| {
            suppression.sender_id(senders[s as usize].1)
        });
        let mut items: Vec<(u32, u32)> = Vec::new();
        let mut rows: Vec<SuppressionEntry> = Vec::with_capacity(chosen.len());
        for &(local, row) in &chosen {
            let reseeded = crate::sid::is_e164(lost.get(row as usize).end_user);
            if reseeded {
                items.push((local, row));
            }
            rows.push(SuppressionEntry {
                row,
                customer: customer_index,
                sender: senders[local as usize].1 as u32,
                what: if reseeded {
                    Reseeded::Yes
                } else {
                    Reseeded::NotE164
                },
            });
        }
        customer.reseed_skipped = chosen.len() - items.len();
        rows.extend(stuck_rows);
        suppression.push_customer(customer_index, rows);
        if items.is_empty() {
            continue;
        }
        let stem = crate::output::safe_file_stem(&customer.customer);
        let mut path = format!("{RESEED_DIR}/{stem}.jsonl");
        let mut i = 2;
        while !used_files.insert(path.to_lowercase()) {
            path = format!("{RESEED_DIR}/{stem}-{i}.jsonl");
            i += 1;
        }
        // Lines grouped by sender (their order): one step per sender.
        let total = items.len();
        let mut line = 1;
        let mut batches = 0;
        let mut start = 0;
        while start < total {
            let sender = items[start].0;
            let count = items[start..]
                .iter()
                .position(|&(s, _)| s != sender)
                .unwrap_or(total - start);
            let whole = count == total;
            let part = ReseedPart {
                reseed_file: path.clone(),
                items: count,
                batches: count.div_ceil(CONSENTS_PER_REQUEST),
                sender_id: senders[sender as usize].0.clone(),
                first_line: (!whole).then_some(line),
                last_line: (!whole).then_some(line + count - 1),
            };
            batches += part.batches;
            cs.reseed_opt_outs(part, total);
            line += count;
            start += count;
        }
        customer.reseed_file = Some(path.clone());
        customer.reseed_items = total;
        customer.reseed_batches = batches;
        customer.reseed_estimate_seconds = reseed_seconds(batches);
        files.push(ReseedFile {
            path,
            senders: senders.into_iter().map(|(s, _)| s).collect(),
            items,
        });
    }
    BuiltSteps {
        steps,
        placeholders,
        files,
        suppression,
    }
}

/// Seconds `batches` Consents Bulk requests take at 100 a minute.
pub fn reseed_seconds(batches: usize) -> u64 {
    (batches as u64 * 60).div_ceil(CONSENTS_REQUESTS_PER_MINUTE as u64)
}
