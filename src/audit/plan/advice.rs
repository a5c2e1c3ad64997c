//! What to do about each finding code, in one place: report.html says it once per code above
//! the numbers, and docs/finding-codes.md's table must list every code (tested below).

use super::Code;

impl Code {
    /// The advice for every number with this finding; the finding's own message adds the
    /// number's specifics.
    pub fn advice(self) -> &'static str {
        match self {
            Code::HostedNumber => "Twilio cannot transfer a hosted number by API (error 22121): ask Twilio support to move the hosted number order, or keep the number in the parent.",
            Code::TargetSuspended => "The target subaccount is suspended: reactivate it, or map the number elsewhere, then run the audit again.",
            Code::TargetClosed => "A closed subaccount cannot be reopened: map the number to another subaccount or to a new customer name (the plan then creates the subaccount).",
            Code::TargetNotChild => "The target account is not a subaccount of this parent (error 21473): map the number to one of the parent's subaccounts, or leave subaccount_sid empty to create one.",
            Code::MappingConflict => "The mapping names two different targets: the number stays in the parent until you delete the wrong mapping lines.",
            Code::InMessagingService => "The number must leave the parent's Messaging Service (one service per number, error 21712); the plan adds it to a new service of the customer that copies the parent service's settings, or to the service the mapping names.",
            Code::A2pCampaign => "The US A2P 10DLC registration does not follow the number: register a brand and campaign for the customer in the subaccount before it sends to US numbers (error 30034 otherwise), then name that campaign's service in the mapping's messaging_service_sid column.",
            Code::TollFreeVerification => "Submit a new toll-free verification from the subaccount right after the transfer; hold sending until it is approved.",
            Code::RegulatoryBundle => "Create an equivalent regulatory bundle in the subaccount and have it approved; export its sid as the transfer step's placeholder (error 21649 otherwise).",
            Code::AddressRequired => "Create a matching address in the subaccount; export its sid as the transfer step's placeholder (error 21613 otherwise).",
            Code::EmergencyAddress => "Create the emergency address in the subaccount and register it on the number right after the transfer.",
            Code::SipTrunk => "Voice breaks after the move: create a trunk in the subaccount and attach the number to it right after the transfer.",
            Code::TwimlApp => "The TwiML app belongs to the parent: create it in the subaccount and point the number at it right after the transfer.",
            Code::OptOutsLost => "Twilio keeps opt-outs per account: the plan re-seeds them in the subaccount (the customer's file in optouts/ lists them); send nothing from the number until that step ran.",
            Code::RecentTraffic => "The number is in use: move it in a quiet window and pause the customer's sending while its part of the plan runs.",
            Code::Unmapped => "Nothing to do: the number stays in the parent. Add a mapping line to move it.",
            Code::WebhookSignature => "Twilio signs webhooks with the owning account's auth token: switch handlers that validate X-Twilio-Signature to the subaccount's token before the move, and create API keys in the subaccount (the parent's do not reach it).",
            Code::ParentHostedHandler => "The Studio Flow, Function or TwiML Bin the number points at belongs to the parent: recreate it in the subaccount and re-point the number right after the transfer.",
            Code::WhatsappSender => "Twilio Support must move the WhatsApp sender before the number moves; then plan again.",
            Code::ServiceSettingsDiffer => "The customer's numbers come from parent services whose settings differ: the plan creates one service per parent service with that service's settings; merge them yourself if one set fits.",
            Code::IdentityRequired => "Create an identity in the subaccount and export its sid as the transfer's IdentitySid placeholder.",
            Code::HistoryStays => "Message logs and recordings stay in the parent: keep the parent (and this snapshot) for the record.",
            Code::ServiceSharedSenders => "Short codes and alphanumeric sender IDs of the parent service do not follow the number: if the customer's messages go out through them, set up the customer's own in the subaccount's service.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// docs/finding-codes.md is the reference users read: every code has its row there, with
    /// the severity the code has, and every code has advice.
    #[test]
    fn every_code_has_advice_and_a_row_in_the_docs() {
        let docs = include_str!("../../../docs/finding-codes.md");
        for code in Code::ALL {
            assert!(!code.advice().is_empty(), "{code} has no advice");
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{code}` |")))
                .unwrap_or_else(|| panic!("docs/finding-codes.md has no row for {code}"));
            let severity = row.split('|').nth(2).unwrap_or_default();
            assert!(
                severity.contains(code.severity().as_str()),
                "docs/finding-codes.md gives {code} the severity {severity:?}"
            );
        }
    }
}
