//! The graded findings of one number: its target, what it carries, its traffic.

use super::*;
use crate::model::IncomingPhoneNumber;

pub(super) fn plan_number(
    ctx: &Context<'_>,
    number: &IncomingPhoneNumber,
    target: Option<&NumberTarget>,
    opt_outs_lost: usize,
) -> NumberPlan {
    let services = ctx
        .memberships
        .get(&number.sid)
        .cloned()
        .unwrap_or_default();
    let recent = ctx.traffic.get(&number.sid).copied().unwrap_or_default();
    let mut plan = NumberPlan {
        number_sid: number.sid.clone(),
        phone_number: number.phone_number.clone(),
        friendly_name: number.friendly_name.clone(),
        action: Action::Stay,
        target_customer: None,
        target_account_sid: None,
        target_messaging_service_sid: None,
        target_account_status: None,
        blocked: false,
        mapping_lines: Vec::new(),
        messaging_service_sids: services.clone(),
        opt_outs_lost: 0,
        recent_messages: recent.messages,
        worst_severity: None,
        findings: Vec::new(),
    };
    let mut findings = Vec::new();
    match target {
        None => {
            // It stays where it is: no transfer risk applies.
            findings.push(Finding::new(
                Code::Unmapped,
                "not in the mapping: it stays in the parent account; add a line for it to the mapping if it belongs to a customer".to_string(),
            ));
        }
        Some(NumberTarget::Conflict(targets)) => {
            plan.mapping_lines = targets
                .iter()
                .flat_map(|t| t.lines.iter().copied())
                .collect();
            plan.mapping_lines.sort_unstable();
            let names: Vec<String> = targets
                .iter()
                .map(|t| {
                    let lines: Vec<String> = t.lines.iter().map(usize::to_string).collect();
                    let account = t
                        .account_sid
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default();
                    format!("{:?}{account} (line {})", t.customer, lines.join(", "))
                })
                .collect();
            findings.push(Finding::new(
                Code::MappingConflict,
                format!(
                    "mapped to {} different targets: {}; it stays in the parent until the mapping names one target: delete the other lines",
                    targets.len(),
                    names.join(", ")
                ),
            ));
            // Where it would go is open, but what the number itself carries is known: list it
            // now so that it is not a surprise once the conflict is settled.
            findings.extend(number_risks(ctx, number, &services, None));
            findings.extend(traffic_finding(ctx, &recent));
            findings.extend(whatsapp_finding(&recent));
        }
        Some(NumberTarget::Move(t)) => {
            plan.action = Action::Transfer;
            plan.target_customer = Some(t.customer.clone());
            plan.target_account_sid = t.account_sid.clone();
            plan.target_messaging_service_sid = t.messaging_service_sid.clone();
            plan.target_account_status =
                Some(account_status(ctx.snapshot, t.account_sid.as_deref()));
            plan.mapping_lines = t.lines.clone();
            plan.opt_outs_lost = opt_outs_lost;
            findings.extend(target_findings(ctx, t));
            findings.extend(number_risks(ctx, number, &services, Some(t)));
            findings.extend(traffic_finding(ctx, &recent));
            findings.extend(whatsapp_finding(&recent));
            findings.extend(shared_senders_finding(ctx, &services));
            findings.push(Finding::new(
                Code::WebhookSignature,
                format!(
                    "after the transfer Twilio signs this number's webhooks (X-Twilio-Signature) with the auth token of {:?}'s subaccount, not the parent's: update every handler that validates signatures before the move, or it rejects each inbound message and status callback; the parent's API keys do not reach the subaccount's resources (create keys there); the Messaging Service sid changes",
                    t.customer
                ),
            ));
            if recent.total > 0 {
                findings.push(Finding::new(
                    Code::HistoryStays,
                    format!(
                        "{} message{} on the number in the snapshot: message logs and recordings stay in the parent account; keep the parent (and this snapshot) for the record",
                        recent.total,
                        plural(recent.total as usize)
                    ),
                ));
            }
            if opt_outs_lost > 0 {
                let toll_free = if number.is_toll_free() {
                    " The toll-free network also keeps these opt-outs for the number wherever it goes (Twilio cannot lift them), so they stay in force on top of the re-seed."
                } else {
                    ""
                };
                findings.push(Finding::new(
                    Code::OptOutsLost,
                    format!(
                        "{opt_outs_lost} opt-out{} in force would be lost: Twilio keeps opt-outs per account. They are listed in optouts/{}.csv; the plan re-seeds them in the subaccount (Consents Bulk, a pilot API: if your account lacks it, import them another way); send nothing from the number until that is done.{toll_free}",
                        plural(opt_outs_lost),
                        crate::output::safe_file_stem(&t.customer)
                    ),
                ));
            }
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    plan.blocked = findings.iter().any(|f| f.severity == Severity::Blocker);
    plan.worst_severity = findings.iter().map(|f| f.severity).max();
    plan.findings = findings;
    plan
}

/// Findings about the gaining account.
fn target_findings(ctx: &Context<'_>, t: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(sid) = t.account_sid.as_deref() else {
        return out;
    };
    let parent = ctx.snapshot.parent_sid();
    let Some(account) = ctx.snapshot.account(sid) else {
        // Another parent's account, a deleted one, a typo: this number stays, the audit goes on.
        out.push(Finding::new(
            Code::TargetNotChild,
            format!(
                "target account {sid} is not one of the parent's subaccounts in the snapshot (another parent's account, a deleted one, or a typo): Twilio refuses the transfer (error 21473); correct subaccount_sid on mapping line {}, or leave it empty to create a subaccount for {:?}",
                t.lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                t.customer
            ),
        ));
        return out;
    };
    if let Some(owner) = account
        .owner_account_sid
        .as_deref()
        .filter(|o| *o != parent)
    {
        out.push(Finding::new(
            Code::TargetNotChild,
            format!(
                "target account {sid} ({:?}) is owned by {owner}, not by this parent {parent}: Twilio refuses the transfer (error 21473); map the number to one of the parent's subaccounts, or leave subaccount_sid empty to create one",
                account.name()
            ),
        ));
    }
    match account.status.as_deref() {
        Some("suspended") => out.push(Finding::new(
            Code::TargetSuspended,
            format!(
                "target subaccount {sid} ({:?}) is suspended: the transfer cannot proceed; reactivate it first (POST {API_BASE}/Accounts/{sid}.json with Status=active) and run the plan again, or map the number elsewhere",
                account.name()
            ),
        )),
        Some("closed") => out.push(Finding::new(
            Code::TargetClosed,
            format!(
                "target subaccount {sid} ({:?}) is closed, and a closed account cannot be reopened: map the number to another subaccount, or to a new customer name with subaccount_sid empty so that the plan creates a new subaccount",
                account.name()
            ),
        )),
        _ => {}
    }
    out
}

/// Findings about what the number carries with it; `target` is None for a conflict.
fn number_risks(
    ctx: &Context<'_>,
    number: &IncomingPhoneNumber,
    services: &[String],
    target: Option<&Target>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let snapshot = ctx.snapshot;
    let customer = target.map_or("the customer", |t| t.customer.as_str());
    for sid in services {
        let service = snapshot.services.iter().find(|s| &s.sid == sid);
        let name = service
            .and_then(|s| s.friendly_name.as_deref())
            .unwrap_or("");
        let inbound = service
            .and_then(|s| s.inbound_request_url.as_deref())
            .filter(|u| !u.is_empty())
            .map(|u| format!(" (inbound webhook {u})"))
            .unwrap_or_default();
        let joins = match target.and_then(|t| t.messaging_service_sid.as_deref()) {
            Some(named) => format!("adds it to the subaccount's service {named} named in the mapping"),
            None => format!("adds it to a new service of {customer} in the subaccount that copies this service's settings{inbound}"),
        };
        out.push(Finding::new(
            Code::InMessagingService,
            format!(
                "in the parent's Messaging Service {name:?} ({sid}): the service's opt-outs and campaign stop covering it when it leaves; the plan removes it before the transfer and {joins}"
            ),
        ));
        let campaigns: Vec<_> = snapshot
            .campaigns
            .iter()
            .filter(|c| &c.messaging_service_sid == sid)
            .collect();
        let registered = service.and_then(|s| s.us_app_to_person_registered) == Some(true);
        if !campaigns.is_empty() || registered {
            let what = if campaigns.is_empty() {
                "is registered for US A2P 10DLC".to_string()
            } else {
                let list: Vec<String> = campaigns
                    .iter()
                    .map(|c| {
                        let id = c.campaign_id.as_deref().unwrap_or(c.sid.as_str());
                        match c.us_app_to_person_usecase.as_deref() {
                            Some(u) => format!("{id} ({u})"),
                            None => id.to_string(),
                        }
                    })
                    .collect();
                format!("carries the US A2P 10DLC campaign {}", list.join(", "))
            };
            let us_long_code = number.phone_number.starts_with("+1")
                && number.phone_number.len() == 12
                && !number.is_toll_free();
            match target.map(|t| t.messaging_service_sid.as_deref()) {
                Some(Some(named)) => out.push(Finding::new(
                    Code::A2pCampaign,
                    format!(
                        "its parent service {name:?} ({sid}) {what}: the registration does not follow the number; it joins {named}, the service named in the mapping, which must carry an approved campaign of {customer} before the number sends to US numbers"
                    ),
                )),
                Some(None) if us_long_code => out.push(Finding::blocker(
                    Code::A2pCampaign,
                    format!(
                        "its parent service {name:?} ({sid}) {what}, and the number is a US long code: in the subaccount it would send as unregistered 10DLC traffic, which carriers block (error 30034), and registration takes days. To clear this: register a brand and campaign for {customer} in the subaccount, wait for approval, then name that campaign's Messaging Service in the mapping's messaging_service_sid column for this number and run the plan again"
                    ),
                )),
                _ => out.push(Finding::new(
                    Code::A2pCampaign,
                    format!(
                        "its parent service {name:?} ({sid}) {what}: the registration does not follow the number; register a brand and campaign for {customer} in the subaccount and attach it to the new service before sending to US numbers, or carriers filter the traffic"
                    ),
                )),
            }
        }
    }
    if number.is_toll_free() {
        out.push(Finding::new(
            Code::TollFreeVerification,
            "toll-free number: its toll-free verification stays with the parent; submit a new verification for it from the subaccount right after the transfer and hold sending until it is approved, or carriers block the messages".to_string(),
        ));
    }
    if let Some(bundle) = number.bundle_sid.as_deref().filter(|s| !s.is_empty()) {
        out.push(Finding::new(
            Code::RegulatoryBundle,
            format!(
                "regulatory bundle {bundle} belongs to the parent: create an equivalent bundle in the subaccount and have it approved before the transfer, which sends it as BundleSid (a placeholder in the transfer step; error 21649 otherwise)"
            ),
        ));
    }
    let requirement = number
        .address_requirements
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "none");
    let address = number.address_sid.as_deref().filter(|s| !s.is_empty());
    if requirement.is_some() || address.is_some() {
        let what = match (requirement, address) {
            (Some(r), Some(a)) => format!("address requirement {r:?} (address {a} of the parent)"),
            (Some(r), None) => format!("address requirement {r:?}"),
            (None, Some(a)) => format!("address {a} of the parent"),
            (None, None) => unreachable!(),
        };
        out.push(Finding::new(
            Code::AddressRequired,
            format!(
                "{what}: create a matching address in the subaccount before the transfer, which sends it as AddressSid (a placeholder in the transfer step; error 21613 otherwise)"
            ),
        ));
    }
    let emergency_sid = number
        .emergency_address_sid
        .as_deref()
        .filter(|s| !s.is_empty());
    let emergency_active = number
        .emergency_status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("active"));
    if emergency_sid.is_some() || emergency_active {
        out.push(Finding::new(
            Code::EmergencyAddress,
            format!(
                "emergency calling is {} (emergency address {}): the address belongs to the parent; create the emergency address in the subaccount and register it on the number right after the transfer (EmergencyAddressSid), or emergency calls lose their address",
                if emergency_active { "active" } else { "configured" },
                emergency_sid.unwrap_or("none")
            ),
        ));
    }
    if let Some(trunk) = number.trunk_sid.as_deref().filter(|s| !s.is_empty()) {
        out.push(Finding::new(
            Code::SipTrunk,
            format!(
                "routed to SIP trunk {trunk} of the parent: voice breaks after the move; create a trunk in the subaccount with the same termination and origination and attach the number to it (TrunkSid) right after the transfer"
            ),
        ));
    }
    let apps: Vec<String> = [
        ("voice", number.voice_application_sid.as_deref()),
        ("sms", number.sms_application_sid.as_deref()),
    ]
    .into_iter()
    .filter_map(|(kind, sid)| sid.filter(|s| !s.is_empty()).map(|s| format!("{kind} {s}")))
    .collect();
    if !apps.is_empty() {
        out.push(Finding::new(
            Code::TwimlApp,
            format!(
                "uses TwiML app{} of the parent ({}): the app does not follow the number; create the app in the subaccount and point the number at it (VoiceApplicationSid / SmsApplicationSid) right after the transfer",
                plural(apps.len()),
                apps.join(", ")
            ),
        ));
    }
    if let Some(identity) = number.identity_sid.as_deref().filter(|s| !s.is_empty()) {
        out.push(Finding::new(
            Code::IdentityRequired,
            format!(
                "identity {identity} belongs to the parent: create an identity in the subaccount before the transfer, which sends it as IdentitySid (a placeholder in the transfer step)"
            ),
        ));
    }
    let parent = snapshot.parent_sid();
    let handlers: Vec<String> = [
        ("sms_url", number.sms_url.as_deref()),
        ("sms_fallback_url", number.sms_fallback_url.as_deref()),
        ("voice_url", number.voice_url.as_deref()),
        ("voice_fallback_url", number.voice_fallback_url.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, url)| {
        let url = url?;
        parent_hosted(url, parent).map(|what| format!("{field} {url} ({what})"))
    })
    .collect();
    if !handlers.is_empty() {
        out.push(Finding::new(
            Code::ParentHostedHandler,
            format!(
                "webhooks point at handlers the parent owns: {}; they do not move with the number: recreate them in the subaccount and re-point the number right after the transfer",
                handlers.join(", ")
            ),
        ));
    }
    if number.origin.as_deref() == Some("hosted") {
        out.push(Finding::new(
            Code::HostedNumber,
            "hosted number (origin \"hosted\"): Twilio cannot transfer it by API (error 22121); ask Twilio support to move the hosted number order to the subaccount, or leave it in the parent (delete its mapping line)".to_string(),
        ));
    }
    out
}

/// The parent services the number leaves that also hold short codes or alphanumeric senders:
/// those stay behind. Not raised when the snapshot does not hold the services' senders (made
/// before they were pulled): unknown is not none.
fn shared_senders_finding(ctx: &Context<'_>, services: &[String]) -> Option<Finding> {
    let snapshot = ctx.snapshot;
    if snapshot.service_short_codes.is_none() && snapshot.service_alpha_senders.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    for mg in services {
        let short_codes: Vec<&str> = snapshot
            .service_short_codes
            .iter()
            .flatten()
            .filter(|s| &s.service_sid == mg)
            .map(|s| s.short_code.as_deref().unwrap_or(s.sid.as_str()))
            .collect();
        let alpha: Vec<&str> = snapshot
            .service_alpha_senders
            .iter()
            .flatten()
            .filter(|s| &s.service_sid == mg)
            .map(|s| s.alpha_sender.as_deref().unwrap_or(s.sid.as_str()))
            .collect();
        if short_codes.is_empty() && alpha.is_empty() {
            continue;
        }
        let mut senders = Vec::new();
        if !short_codes.is_empty() {
            senders.push(format!(
                "short code{} {}",
                plural(short_codes.len()),
                short_codes.join(", ")
            ));
        }
        if !alpha.is_empty() {
            senders.push(format!(
                "alphanumeric sender{} {}",
                plural(alpha.len()),
                alpha.join(", ")
            ));
        }
        let name = snapshot
            .services
            .iter()
            .find(|s| &s.sid == mg)
            .and_then(|s| s.friendly_name.as_deref())
            .unwrap_or("");
        parts.push(format!("{name:?} ({mg}) keeps {}", senders.join(" and ")));
    }
    (!parts.is_empty()).then(|| Finding::new(
        Code::ServiceSharedSenders,
        format!(
            "the parent service{} this number leaves also hold{} other senders, which stay behind in the parent: {}; they do not follow the number, so if this customer's messages go out through them, set up the customer's own short code or alphanumeric sender in the subaccount's service",
            plural(parts.len()),
            if parts.len() == 1 { "s" } else { "" },
            parts.join("; ")
        ),
    ))
}

fn whatsapp_finding(traffic: &Traffic) -> Option<Finding> {
    (traffic.whatsapp > 0).then(|| Finding::new(
        Code::WhatsappSender,
        format!(
            "{} message{} in the logs use the number as a WhatsApp sender (whatsapp: addresses): the WhatsApp sender does not move with the number; have Twilio Support move it to the subaccount first, then run the plan again",
            traffic.whatsapp,
            plural(traffic.whatsapp as usize)
        ),
    ))
}

/// Where a webhook URL points at a handler the parent owns: its Studio Flows, Functions or
/// TwiML Bins.
fn parent_hosted(url: &str, parent: &str) -> Option<&'static str> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    if host == "webhooks.twilio.com" && parsed.path().contains(&format!("/Accounts/{parent}/Flows"))
    {
        Some("a Studio Flow")
    } else if host.ends_with(".twil.io") {
        Some("a Function")
    } else if host == "handler.twilio.com" {
        Some("a TwiML Bin")
    } else {
        None
    }
}

fn traffic_finding(ctx: &Context<'_>, recent: &Traffic) -> Option<Finding> {
    let last = recent.last?;
    Some(Finding::new(
        Code::RecentTraffic,
        format!(
            "{} message{} in the {RECENT_DAYS} days before the snapshot ends (since {}), the last at {}: the number is in use; move it in a quiet window and pause sending for the customer while its part of the plan runs",
            recent.messages,
            plural(recent.messages as usize),
            rfc3339(&ctx.recent_since),
            rfc3339(&last)
        ),
    ))
}
