//! `audit.query`: the audit log over the gateway, for `pincer audit`.

use serde_json::{Value, json};

use super::AuditFilter;
use crate::gateway::{CallContext, MethodRegistry};
use crate::protocol::{ErrorShape, scopes};
use crate::store::Store;

/// Registers `audit.query {since?, agentId?, kind?, limit?}` (operator.read): the newest
/// `limit` matching records (default 1,000, at most 10,000), oldest first, as
/// `{records: [{seq, ts, kind, actor, target?, agents?, correlationId?, outcome, detail?}]}`.
pub fn register(registry: &mut MethodRegistry, store: Store) {
    registry.method(
        "audit.query",
        scopes::READ,
        move |_cc: CallContext, p: Value| {
            let store = store.clone();
            async move { query(&store, &p) }
        },
    );
}

fn query(store: &Store, p: &Value) -> Result<Value, ErrorShape> {
    let filter = AuditFilter::from_params(p).map_err(ErrorShape::invalid_request)?;
    let rows = store
        .audit_query(&filter)
        .map_err(|e| ErrorShape::unavailable(format!("cannot read the audit log: {e}")))?;
    let records: Vec<Value> = rows
        .into_iter()
        .map(|(seq, rec)| {
            let mut v = serde_json::to_value(&rec).expect("audit records serialise");
            v["seq"] = json!(seq);
            v
        })
        .collect();
    Ok(json!({ "records": records }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;

    #[test]
    fn answers_records_with_their_sequence_numbers_and_refuses_bad_params() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("state.redb")).unwrap();
        let seq = s
            .audit_append(&AuditRecord::config_change(
                "operator",
                &["logging.level".into()],
                &[],
            ))
            .unwrap();
        let v = query(&s, &json!({"kind": "config"})).unwrap();
        let r = &v["records"][0];
        assert_eq!(r["seq"], seq);
        assert_eq!(r["kind"], "config.change");
        assert_eq!(r["detail"]["paths"], json!(["logging.level"]));
        assert!(
            r.get("correlationId").is_none(),
            "empty fields are left out"
        );
        let v = query(&s, &json!({"kind": "approval"})).unwrap();
        assert_eq!(v["records"], json!([]));
        let err = query(&s, &json!({"limit": -1})).unwrap_err();
        assert!(err.message.contains("limit must be"), "{}", err.message);
    }
}
