//! The ordered API requests that perform the moves: one function per step kind.

use super::*;
use crate::model::IncomingPhoneNumber;

fn field(name: &'static str, value: Template) -> FormField {
    FormField { name, value }
}

/// A Consents Bulk item, as the JSON text Twilio takes in each `Items` field. The sender is a
/// template: it may be the customer's new service, known only at run time.
fn consent_item(row: &LostOptOut, sender: &Template) -> Template {
    let correlation = correlation_id(row);
    // Only the opt-out keyword is the end user's own message; a 21610 failure is Twilio's
    // record of an opt-out whose source it does not tell.
    let source = if row.evidence == "inbound-keyword" {
        "opt-out-message"
    } else {
        "others"
    };
    let mut t = Template::text(format!(
        "{{\"contact_id\":{},\"correlation_id\":\"{correlation}\",\"sender_id\":\"",
        serde_json::Value::String(row.end_user.to_string())
    ));
    for part in &sender.parts {
        t.parts.push(part.clone());
    }
    t.push_text(format!(
        "\",\"status\":\"opt-out\",\"source\":\"{source}\",\"date_of_consent\":\"{}\"}}",
        row.opted_out_at
    ))
}

/// 32 hex characters, unique per item: the evidence message's sid digits, which trace the
/// item back to the message that proved the opt-out; a hash where the sid has another shape.
pub(super) fn correlation_id(row: &LostOptOut) -> String {
    let sid = &row.evidence_message_sid;
    if sid.len() == 34 && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return sid[2..].to_ascii_lowercase();
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

pub(super) fn build_steps(
    snapshot: &Snapshot,
    numbers: &[NumberPlan],
    customers: &mut [CustomerPlan],
    lost_by_number: &HashMap<&str, Vec<&LostOptOut>>,
) -> (Vec<Step>, Vec<Placeholder>) {
    let parent = snapshot.parent_sid();
    let mut steps: Vec<Step> = Vec::new();
    let mut placeholders: Vec<Placeholder> = Vec::new();
    let by_sid: HashMap<&str, &IncomingPhoneNumber> = snapshot
        .numbers
        .iter()
        .map(|n| (n.sid.as_str(), n))
        .collect();
    let service_name = |sid: &str| {
        snapshot
            .services
            .iter()
            .find(|s| s.sid == sid)
            .and_then(|s| s.friendly_name.clone())
            .unwrap_or_default()
    };

    for customer in customers.iter_mut() {
        let own: Vec<&NumberPlan> = numbers
            .iter()
            .filter(|n| {
                n.moves()
                    && n.target_customer.as_deref() == Some(customer.customer.as_str())
                    && n.target_account_sid == customer.account_sid
            })
            .collect();
        if own.is_empty() {
            continue;
        }
        let key = customer.key.clone();
        let name = customer.customer.clone();
        let account_var = format!("{key}_ACCOUNT_SID");
        let token_var = format!("{key}_AUTH_TOKEN");
        let service_var = format!("{key}_SERVICE_SID");
        let push = |steps: &mut Vec<Step>,
                    kind: StepKind,
                    number: Option<&NumberPlan>,
                    description: String,
                    request: Request,
                    captures: Vec<Capture>| {
            steps.push(Step {
                order: steps.len() + 1,
                kind,
                customer: name.clone(),
                customer_key: key.clone(),
                number_sid: number.map(|n| n.number_sid.clone()),
                phone_number: number.map(|n| n.phone_number.clone()),
                description,
                placeholders: request.placeholders(),
                request,
                captures,
            });
        };
        let account: Template = match &customer.account_sid {
            Some(sid) => Template::text(sid.clone()),
            None => Template::var(&account_var),
        };

        // 1. The subaccount, where none exists.
        if customer.account_sid.is_none() {
            push(
                &mut steps,
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
                vec![
                    Capture {
                        variable: account_var.clone(),
                        field: "sid",
                    },
                    Capture {
                        variable: token_var.clone(),
                        field: "auth_token",
                    },
                ],
            );
            placeholders.push(Placeholder {
                name: account_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!(
                    "the sid of the new subaccount {name:?}, from the create-subaccount step"
                ),
            });
            placeholders.push(Placeholder {
                name: token_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!("the auth token of the new subaccount {name:?}, from the create-subaccount step; kept in the script's memory only"),
            });
        } else {
            placeholders.push(Placeholder {
                name: token_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Fetched,
                description: format!("the auth token of subaccount {}, read with the parent's credentials when the script runs (or exported by you); kept in the script's memory only", customer.account_sid.as_deref().unwrap_or("")),
            });
        }

        // Placeholders for the subaccount's own bundles and addresses: one per distinct
        // parent resource, since numbers sharing a parent bundle can share the new one.
        let mut bundle_vars: BTreeMap<String, String> = BTreeMap::new();
        let mut address_vars: BTreeMap<String, String> = BTreeMap::new();
        let next_var = |map: &mut BTreeMap<String, String>, what: &str, parent_sid: String| {
            let n = map.len() + 1;
            map.entry(parent_sid)
                .or_insert_with(|| {
                    if n == 1 {
                        format!("{key}_{what}")
                    } else {
                        format!("{key}_{what}_{n}")
                    }
                })
                .clone()
        };

        // 2-3. Per number: leave the parent's services, then the transfer.
        let mut in_service: Vec<&NumberPlan> = Vec::new();
        for n in &own {
            let number = by_sid[n.number_sid.as_str()];
            for mg in &n.messaging_service_sids {
                push(
                    &mut steps,
                    StepKind::RemoveFromService,
                    Some(n),
                    format!(
                        "remove {} from the parent's Messaging Service {:?} ({mg})",
                        n.phone_number,
                        service_name(mg)
                    ),
                    Request {
                        method: "DELETE",
                        url: Template::text(format!(
                            "{MESSAGING_BASE}/Services/{mg}/PhoneNumbers/{}",
                            n.number_sid
                        )),
                        auth: Auth::Parent,
                        form: vec![],
                    },
                    vec![],
                );
            }
            if !n.messaging_service_sids.is_empty() {
                in_service.push(n);
            }
            let mut form = vec![field("AccountSid", account.clone())];
            let mut needs = Vec::new();
            if let Some(bundle) = number.bundle_sid.as_deref().filter(|s| !s.is_empty()) {
                let var = next_var(&mut bundle_vars, "BUNDLE_SID", bundle.to_string());
                needs.push(format!("BundleSid from ${{{var}}}"));
                form.push(field("BundleSid", Template::var(&var)));
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
                let var = next_var(&mut address_vars, "ADDRESS_SID", parent_address);
                needs.push(format!("AddressSid from ${{{var}}}"));
                form.push(field("AddressSid", Template::var(&var)));
            }
            let extra = if needs.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}: the subaccount's own, which you create first)",
                    needs.join(", ")
                )
            };
            push(
                &mut steps,
                StepKind::TransferNumber,
                Some(n),
                format!(
                    "transfer {} ({}) from the parent to {name:?}{extra}",
                    n.phone_number, n.number_sid
                ),
                Request {
                    method: "POST",
                    url: Template::text(format!(
                        "{API_BASE}/Accounts/{parent}/IncomingPhoneNumbers/{}.json",
                        n.number_sid
                    )),
                    auth: Auth::Parent,
                    form,
                },
                vec![],
            );
        }
        for (what, map) in [
            ("regulatory bundle", &bundle_vars),
            ("address", &address_vars),
        ] {
            for (parent_sid, var) in map {
                let replaces = if parent_sid.starts_with("requirement:") {
                    String::new()
                } else {
                    format!(" (replacing the parent's {parent_sid})")
                };
                placeholders.push(Placeholder {
                    name: var.clone(),
                    customer: name.clone(),
                    source: PlaceholderSource::Required,
                    description: format!(
                        "the sid of an {what} you create in the subaccount of {name:?}{replaces}"
                    ),
                });
                customer.required.push(var.clone());
            }
        }

        // 4. The customer's own service, for the numbers that were in one.
        if !in_service.is_empty() {
            push(
                &mut steps,
                StepKind::CreateMessagingService,
                None,
                format!("create the Messaging Service {name:?} in the subaccount (its sid comes from the response); then copy the settings you rely on from the parent's service"),
                Request {
                    method: "POST",
                    url: Template::text(format!("{MESSAGING_BASE}/Services")),
                    auth: Auth::Subaccount,
                    form: vec![field("FriendlyName", Template::text(name.clone()))],
                },
                vec![Capture {
                    variable: service_var.clone(),
                    field: "sid",
                }],
            );
            placeholders.push(Placeholder {
                name: service_var.clone(),
                customer: name.clone(),
                source: PlaceholderSource::Captured,
                description: format!("the sid of the new Messaging Service of {name:?}, from the create-messaging-service step"),
            });
            for n in &in_service {
                push(
                    &mut steps,
                    StepKind::AddToService,
                    Some(n),
                    format!(
                        "add {} to the new Messaging Service of {name:?}",
                        n.phone_number
                    ),
                    Request {
                        method: "POST",
                        url: Template::text(format!("{MESSAGING_BASE}/Services/"))
                            .push_var(&service_var)
                            .push_text("/PhoneNumbers"),
                        auth: Auth::Subaccount,
                        form: vec![field(
                            "PhoneNumberSid",
                            Template::text(n.number_sid.clone()),
                        )],
                    },
                    vec![],
                );
            }
        }

        // 5. Re-seed the lost opt-outs in the subaccount. A number now in the customer's
        // service sends through it, so its opt-outs go to the service; a number outside any
        // service keeps number-scoped opt-outs.
        let mut items: BTreeMap<(String, String), (&LostOptOut, Template)> = BTreeMap::new();
        for n in &own {
            let sender = if n.messaging_service_sids.is_empty() {
                Template::text(n.phone_number.clone())
            } else {
                Template::var(&service_var)
            };
            for row in lost_by_number
                .get(n.number_sid.as_str())
                .into_iter()
                .flatten()
            {
                let k = (sender.to_string(), row.end_user.to_string());
                // One item per (sender, end user): the earliest opt-out stands.
                match items.get(&k) {
                    Some((kept, _)) if kept.opted_out_at <= row.opted_out_at => {}
                    _ => {
                        items.insert(k, (row, sender.clone()));
                    }
                }
            }
        }
        let items: Vec<Template> = items
            .values()
            .map(|(row, sender)| consent_item(row, sender))
            .collect();
        let chunks = items.len().div_ceil(CONSENTS_PER_REQUEST);
        for (i, chunk) in items.chunks(CONSENTS_PER_REQUEST).enumerate() {
            push(
                &mut steps,
                StepKind::ReseedOptOuts,
                None,
                format!(
                    "re-seed {} lost opt-out{} in the subaccount of {name:?} (request {} of {chunks}, at most {CONSENTS_PER_REQUEST} items each)",
                    chunk.len(),
                    plural(chunk.len()),
                    i + 1
                ),
                Request {
                    method: "POST",
                    url: Template::text(CONSENTS_BULK_URL),
                    auth: Auth::Subaccount,
                    form: chunk.iter().map(|t| field("Items", t.clone())).collect(),
                },
                vec![],
            );
        }
    }
    (steps, placeholders)
}
