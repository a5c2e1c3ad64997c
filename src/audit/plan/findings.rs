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
        }
        Some(NumberTarget::Move(t)) => {
            plan.action = Action::Transfer;
            plan.target_customer = Some(t.customer.clone());
            plan.target_account_sid = t.account_sid.clone();
            plan.target_account_status =
                Some(account_status(ctx.snapshot, t.account_sid.as_deref()));
            plan.mapping_lines = t.lines.clone();
            plan.opt_outs_lost = opt_outs_lost;
            findings.extend(target_findings(ctx, t));
            findings.extend(number_risks(ctx, number, &services, Some(t)));
            findings.extend(traffic_finding(ctx, &recent));
            if opt_outs_lost > 0 {
                findings.push(Finding::new(
                    Code::OptOutsLost,
                    format!(
                        "{opt_outs_lost} opt-out{} in force would be lost: Twilio keeps opt-outs per account. They are listed in optouts/{}.csv; the plan re-seeds them in the subaccount (Consents Bulk, a pilot API: if your account lacks it, import them another way); send nothing from the number until that is done",
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
    let Some(account) = ctx.snapshot.account(sid) else {
        return out;
    };
    let parent = ctx.snapshot.parent_sid();
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
        out.push(Finding::new(
            Code::InMessagingService,
            format!(
                "in the parent's Messaging Service {name:?} ({sid}): it must leave that service before the transfer (a number can be in one service only, error 21712), and the service's opt-outs and campaign stop covering it; the plan removes it and adds it to a new service of {customer} in the subaccount: copy the settings you rely on{inbound} to the new service"
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
            out.push(Finding::new(
                Code::A2pCampaign,
                format!(
                    "its parent service {name:?} ({sid}) {what}: the registration does not follow the number; register a brand and campaign for {customer} in the subaccount and attach it to the new service before sending to US numbers, or carriers filter the traffic"
                ),
            ));
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
    if number.origin.as_deref() == Some("hosted") {
        out.push(Finding::new(
            Code::HostedNumber,
            "hosted number (origin \"hosted\"): Twilio cannot transfer it by API (error 22121); ask Twilio support to move the hosted number order to the subaccount, or leave it in the parent (delete its mapping line)".to_string(),
        ));
    }
    out
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
