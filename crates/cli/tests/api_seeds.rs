//! `contactdb api`: the three hosted APIs' bodies, as their documents show them,
//! answered on a local file with their response shapes and exit codes 0 / 3 / 1.

use std::path::Path;

use serde_json::{Value, json};

mod common;

/// Runs `contactdb --db DB args` with `body` on stdin; (exit code, stdout JSON).
fn call(db: &Path, args: &[&str], body: Option<&Value>) -> (i32, Value) {
    let body = body.map(Value::to_string);
    let o = common::call(db, args, body.as_deref().map(str::as_bytes));
    let v = serde_json::from_str(&o.stdout).unwrap_or(Value::String(o.stdout));
    (o.code, v)
}

fn api(db: &Path, name: &str, body: &Value) -> (i32, Value) {
    call(db, &["api", name], Some(body))
}

/// Each body is refused as a whole (exit 1) with its error code.
fn refused(db: &Path, name: &str, cases: &[(Value, &str)]) {
    for (body, code) in cases {
        let (exit, r) = api(db, name, body);
        assert_eq!(
            (exit, r.pointer("/error/code")),
            (1, Some(&json!(code))),
            "{body}: {r}"
        );
    }
}

// R4/R15 seed mapping (bulk-upsert): positional rows, insertIfNotExists, forceUpdate,
// new_contact_key refused with insertIfNotExists.
#[test]
fn bulk_upsert_body() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let (code, r) = api(
        &db,
        "bulk-upsert",
        &json!({"columns": ["contact_key", "email", "name"],
                "contactDatas": [["c-1", "Ann@X.com", "Ann"], ["c-2", "bob@x.com", "Bob"]],
                "insertIfNotExists": true}),
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["success"], true);
    assert_eq!(r["summary"]["inserted"], 2);
    assert_eq!(r["warnings"][0]["code"], "value_normalized");
    // Update only (the default), forceUpdate (the default): one bad row refuses all.
    let (code, r) = api(
        &db,
        "bulk-upsert",
        &json!({"columns": ["contact_key", "email"],
                "contactDatas": [{"contact_key": "c-1", "email": "new@x.com"},
                                 {"contact_key": "nobody", "email": "n@x.com"}]}),
    );
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["errors"][0]["code"], "not_found");
    // forceUpdate=false: the good row applies, the response is partial.
    let (code, r) = api(
        &db,
        "bulk-upsert",
        &json!({"columns": ["contact_key", "email"], "forceUpdate": false,
                "contactDatas": [{"contact_key": "c-1", "email": "new@x.com"},
                                 {"contact_key": "nobody", "email": "n@x.com"}]}),
    );
    assert_eq!(code, 3, "{r}");
    assert_eq!(r["summary"]["updated"], 1);
    refused(
        &db,
        "bulk-upsert",
        &[
            (
                json!({"columns": ["new_contact_key"], "insertIfNotExists": true,
                       "contactDatas": [{"contact_key": "c-1", "new_contact_key": "c-9"}]}),
                "new_key_not_allowed",
            ),
            (json!({"columns": []}), "malformed_body"),
        ],
    );
}

// R15/R16/R18 seed mapping (bulk-add): 201 / 207 / 400 as exit 0 / 3 / 1, the
// counts, campaign membership, the trigger on the change events.
#[test]
fn bulk_add_body() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    refused(
        &db,
        "bulk-add",
        &[(
            json!({"campaignId": "spring", "records": [{"loan_id": "L1"}]}),
            "no_such_campaign",
        )],
    );
    assert_eq!(call(&db, &["campaign", "create", "spring"], None).0, 0);
    let body = json!({
        "campaignId": "spring",
        "records": [
            {"loan_id": "L1", "first_name": "Ann", "last_name": "Lee", "phone_number": "+905551112233",
             "loan_amount": 1200.5, "emi_amount": 100, "loan_period": 12, "current_emi": 3,
             "emi_due_date": "2026-12-15", "payment_status": "due", "language": "tr",
             "lead_id": "LD-1", "lead_date": "2026-01-02"},
            {"loan_id": "L2", "first_name": "Bob", "phone_number": "not a phone"}
        ],
        "initiateCall": true,
        "callConfig": {"agentId": "ag-1", "dispositionId": "d-1"}
    });
    let (code, r) = api(&db, "bulk-add", &body);
    assert_eq!(code, 3, "{r}");
    assert_eq!(r["success"], false);
    assert_eq!(r["message"], "Added 1 of 2 records");
    assert_eq!(
        r["results"],
        json!({"total": 2, "valid": 1, "invalid": 1, "successful": 1, "failed": 1,
               "batchesProcessed": 1, "errors": r["results"]["errors"].clone()})
    );
    assert_eq!(r["results"]["errors"][0]["code"], "invalid_phone");
    assert_eq!(r["callResults"], json!({"queued": 1, "batches": 1}));
    let (_, ann) = call(&db, &["get", "L1"], None);
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["loan_amount"], json!(1200.5));
    assert_eq!(ann["emi_due_date"], "2026-12-15");
    let (_, members) = call(&db, &["campaign", "members", "spring"], None);
    assert_eq!(members["contact_key"], "L1");
    let (_, feed) = call(&db, &["feed", "read", "--limit", "1"], None);
    assert_eq!(feed["trigger"]["call"]["agentId"], "ag-1", "{feed}");
    // All added: 201 as exit 0.
    let (code, r) = api(
        &db,
        "bulk-add",
        &json!({"campaignId": "spring", "useWorkflow": true,
                "records": [{"loan_id": "L3", "phone_number": "+905551112244"}]}),
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["workflowTriggered"], true);
    refused(
        &db,
        "bulk-add",
        &[
            (
                json!({"campaignId": "spring", "initiateCall": true, "useWorkflow": true,
                       "callConfig": {"agentId": "a"}, "records": [{"loan_id": "L4"}]}),
                "conflicting_trigger",
            ),
            (
                json!({"campaignId": "spring", "initiateCall": true, "records": [{"loan_id": "L4"}]}),
                "call_config_required",
            ),
        ],
    );
}

// R17 seed mapping (customer-import): a job id at once; the job does the import.
#[test]
fn customer_import_body() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let (code, r) = api(
        &db,
        "customer-import",
        &json!({"customers": [
            {"identifier": "cu-1", "name": "Ann", "phoneNumber": "+12345678901",
             "email": "ann@x.com", "metadata": {"tier": "gold"}, "priority": 1},
            {"identifier": "cu-2"}
        ]}),
    );
    assert_eq!(code, 0, "{r}");
    let id = r["jobId"].as_str().unwrap().to_owned();
    assert_eq!(call(&db, &["job", "run"], None).0, 0);
    let (_, st) = call(&db, &["job", "status", &id], None);
    assert_eq!(st["state"], "succeeded", "{st}");
    assert_eq!(st["report"]["summary"]["inserted"], 2);
    let (_, cu) = call(&db, &["get", "cu-1"], None);
    assert_eq!(cu["gsm"], "+12345678901");
    assert_eq!(cu["metadata"], json!({"tier": "gold"}));
    refused(
        &db,
        "customer-import",
        &[(
            json!({"customers": [{"identifier": "x"}], "strategy": "upsert", "partial": true}),
            "partial_with_upsert",
        )],
    );
}
