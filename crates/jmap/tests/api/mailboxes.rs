//! Mailbox/get, /changes, /query, /queryChanges and /set.

use serde_json::{Value, json};

use crate::kit::*;

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

#[test]
fn get_lists_the_standard_mailboxes_with_counts_and_rights() {
    let w = world();
    let first = w.deliver(
        &simple("Plans", "bob@globex.test", "root@x", "a"),
        "inbox",
        &[],
        T0,
    );
    w.deliver(
        &reply("Re: Plans", "r1@x", "root@x", "b"),
        "inbox",
        &["$seen"],
        T0 + 1,
    );
    w.deliver(
        &simple("Other", "bob@globex.test", "o@x", "c"),
        "inbox",
        &["$seen"],
        T0 + 2,
    );
    assert!(!first.is_empty());

    let got = w.call("Mailbox/get", json!({"accountId": w.account()}));
    assert_eq!(got["state"], w.state());
    let list = &got["list"];
    assert_eq!(list.as_array().unwrap().len(), 6);
    let inbox = by_name(list, "Inbox");
    assert_eq!(inbox["role"], "inbox");
    assert_eq!(inbox["parentId"], Value::Null);
    assert_eq!(inbox["totalEmails"], 3);
    assert_eq!(inbox["unreadEmails"], 1);
    assert_eq!(inbox["totalThreads"], 2, "the reply joined its thread");
    assert_eq!(inbox["unreadThreads"], 1);
    assert_eq!(inbox["isSubscribed"], true);
    assert_eq!(inbox["myRights"]["mayDelete"], true);
    assert_eq!(by_name(list, "Trash")["totalEmails"], 0);

    let some = w.call(
        "Mailbox/get",
        json!({"accountId": w.account(), "ids": [w.mailbox("sent"), "nope"], "properties": ["name"]}),
    );
    assert_eq!(
        some["list"],
        json!([{"id": w.mailbox("sent"), "name": "Sent"}])
    );
    assert_eq!(some["notFound"], json!(["nope"]));
}

#[test]
fn set_creates_children_by_creation_id_renames_moves_and_destroys() {
    let w = world();
    let before = w.state();
    let set = w.call(
        "Mailbox/set",
        json!({
            "accountId": w.account(),
            "ifInState": before,
            "create": {
                "child": {"name": "Storm-0558", "parentId": "#parent"},
                "parent": {"name": "Projects", "sortOrder": 10},
                "dup": {"name": "Inbox"},
                "badRole": {"name": "Weird", "role": "nonsense"},
                "takenRole": {"name": "Second inbox", "role": "inbox"},
                "serverSet": {"name": "Counts", "totalEmails": 5},
                "noName": {"sortOrder": 1},
                "orphan": {"name": "Orphan", "parentId": "#missing"}
            }
        }),
    );
    assert_eq!(set["oldState"], before);
    assert_ne!(set["newState"], before);
    let parent = set["created"]["parent"]["id"].as_str().unwrap().to_owned();
    let child = set["created"]["child"]["id"].as_str().unwrap().to_owned();
    assert_eq!(set["created"]["parent"]["totalEmails"], 0);
    assert_eq!(set["created"]["parent"]["isSubscribed"], false);
    assert_eq!(set["created"]["child"]["myRights"]["mayRename"], true);
    let not_created = &set["notCreated"];
    for (cid, property) in [
        ("dup", "name"),
        ("badRole", "role"),
        ("takenRole", "role"),
        ("serverSet", "totalEmails"),
        ("noName", "name"),
        ("orphan", "parentId"),
    ] {
        assert_eq!(not_created[cid]["type"], "invalidProperties", "{cid}");
        assert!(
            not_created[cid]["properties"]
                .as_array()
                .unwrap()
                .contains(&json!(property)),
            "{cid}: {}",
            not_created[cid]
        );
    }
    let got = w.call(
        "Mailbox/get",
        json!({"accountId": w.account(), "ids": [child.clone()]}),
    );
    assert_eq!(got["list"][0]["parentId"], parent);

    let update = w.call(
        "Mailbox/set",
        json!({
            "accountId": w.account(),
            "update": {
                child.clone(): {"name": "Storm", "parentId": null, "isSubscribed": true},
                parent.clone(): {"role": null, "myRights": {"mayReadItems": true}},
                w.mailbox("inbox"): {"role": "trash"},
                "nope": {"name": "x"},
                w.mailbox("sent"): {"parentId": w.mailbox("sent")}
            }
        }),
    );
    assert_eq!(update["updated"][&child], Value::Null);
    assert!(update["updated"].as_object().unwrap().contains_key(&child));
    assert!(
        update["notUpdated"][&parent]["properties"]
            .as_array()
            .unwrap()
            .contains(&json!("myRights"))
    );
    assert_eq!(
        update["notUpdated"][w.mailbox("inbox")]["properties"],
        json!(["role"])
    );
    assert_eq!(update["notUpdated"]["nope"]["type"], "notFound");
    assert_eq!(
        update["notUpdated"][w.mailbox("sent")]["properties"],
        json!(["parentId"])
    );
    let got = w.call(
        "Mailbox/get",
        json!({"accountId": w.account(), "ids": [child.clone()]}),
    );
    assert_eq!(got["list"][0]["name"], "Storm");
    assert_eq!(got["list"][0]["parentId"], Value::Null);
    assert_eq!(got["list"][0]["isSubscribed"], true);

    // A parent with a child, a mailbox with mail, the inbox.
    let grandchild = w.call(
        "Mailbox/set",
        json!({"accountId": w.account(), "create": {"g": {"name": "Sub", "parentId": parent}}}),
    )["created"]["g"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.deliver_to(
        &w.alice,
        &simple("x", "b@x", "x@x", "x"),
        std::slice::from_ref(&child),
        &[],
        T0,
    );
    let destroy = w.call(
        "Mailbox/set",
        json!({"accountId": w.account(), "destroy": [parent.clone(), child.clone(), w.mailbox("inbox"), "nope"]}),
    );
    assert_eq!(destroy["notDestroyed"][&parent]["type"], "mailboxHasChild");
    assert_eq!(destroy["notDestroyed"][&child]["type"], "mailboxHasEmail");
    assert_eq!(
        destroy["notDestroyed"][w.mailbox("inbox")]["type"],
        "forbidden"
    );
    assert_eq!(destroy["notDestroyed"]["nope"]["type"], "notFound");
    assert_eq!(destroy["destroyed"], Value::Null);

    let destroy = w.call(
        "Mailbox/set",
        json!({
            "accountId": w.account(),
            "destroy": [parent.clone(), grandchild.clone(), child.clone()],
            "onDestroyRemoveEmails": true
        }),
    );
    let mut destroyed: Vec<String> = serde_json::from_value(destroy["destroyed"].clone()).unwrap();
    destroyed.sort();
    let mut expect = vec![parent, grandchild, child];
    expect.sort();
    assert_eq!(destroyed, expect, "children go before parents: {destroy}");
    assert_eq!(destroy["notDestroyed"], Value::Null);
}

#[test]
fn changes_report_created_updated_and_destroyed_mailboxes() {
    let w = world();
    let since = w.state();
    let created = w.call(
        "Mailbox/set",
        json!({"accountId": w.account(), "create": {"a": {"name": "A"}, "b": {"name": "B"}}}),
    );
    let a = created["created"]["a"]["id"].as_str().unwrap().to_owned();
    let b = created["created"]["b"]["id"].as_str().unwrap().to_owned();
    let middle = w.state();
    w.call("Mailbox/set", json!({"accountId": w.account(), "update": {a.clone(): {"name": "A2"}}, "destroy": [b.clone()]}));
    w.deliver(&simple("x", "b@x", "x@x", "x"), "inbox", &[], T0);

    let all = w.call(
        "Mailbox/changes",
        json!({"accountId": w.account(), "sinceState": since}),
    );
    assert_eq!(all["oldState"], since);
    assert_eq!(all["newState"], w.state());
    assert_eq!(all["created"], json!([a.clone()]), "b came and went");
    assert_eq!(all["updated"], json!([w.mailbox("inbox")]));
    assert_eq!(all["destroyed"], json!([]));
    assert_eq!(all["hasMoreChanges"], false);
    assert_eq!(all["updatedProperties"], Value::Null);

    let later = w.call(
        "Mailbox/changes",
        json!({"accountId": w.account(), "sinceState": middle}),
    );
    assert_eq!(later["created"], json!([]));
    assert_eq!(later["destroyed"], json!([b]));
    let mut updated: Vec<String> = serde_json::from_value(later["updated"].clone()).unwrap();
    updated.sort();
    let mut expect = vec![a, w.mailbox("inbox")];
    expect.sort();
    assert_eq!(updated, expect);

    let paged = w.call(
        "Mailbox/changes",
        json!({"accountId": w.account(), "sinceState": since, "maxChanges": 1}),
    );
    assert_eq!(paged["hasMoreChanges"], true);
    assert_ne!(paged["newState"], w.state());

    let now = w.call(
        "Mailbox/changes",
        json!({"accountId": w.account(), "sinceState": w.state()}),
    );
    assert_eq!(
        (now["created"].clone(), now["newState"].clone()),
        (json!([]), json!(w.state()))
    );
}

#[test]
fn query_filters_sorts_and_builds_trees() {
    let w = world();
    let made = w.call(
        "Mailbox/set",
        json!({"accountId": w.account(), "create": {
            "p": {"name": "Projects", "sortOrder": 50},
            "c": {"name": "Apollo", "parentId": "#p", "sortOrder": 50, "isSubscribed": true}
        }}),
    );
    let projects = made["created"]["p"]["id"].as_str().unwrap().to_owned();
    let apollo = made["created"]["c"]["id"].as_str().unwrap().to_owned();
    let id = |role: &str| json!(w.mailbox(role));
    let query = |args: Value| {
        let mut args = args;
        args["accountId"] = json!(w.account());
        w.call("Mailbox/query", args)
    };

    let cases: Vec<(Value, Value)> = vec![
        (json!({"filter": {"role": "inbox"}}), json!([id("inbox")])),
        (
            json!({"filter": {"hasAnyRole": false}, "sort": [{"property": "name"}]}),
            json!([apollo, projects]),
        ),
        (json!({"filter": {"parentId": projects}}), json!([apollo])),
        (json!({"filter": {"name": "ARCH"}}), json!([id("archive")])),
        (
            json!({"filter": {"operator": "AND", "conditions": [{"hasAnyRole": false}, {"isSubscribed": true}]}}),
            json!([apollo]),
        ),
        (
            json!({"filter": {"operator": "NOT", "conditions": [{"hasAnyRole": true}, {"parentId": null}]}}),
            json!([apollo]),
        ),
        (
            json!({"sort": [{"property": "sortOrder", "isAscending": false}, {"property": "name"}], "limit": 3}),
            json!([apollo, projects, id("archive")]),
        ),
        (
            json!({"filter": {"hasAnyRole": false}, "sort": [{"property": "name"}], "sortAsTree": true}),
            json!([projects, apollo]),
        ),
        (
            json!({"filter": {"name": "apollo"}, "filterAsTree": true}),
            json!([]),
        ),
        (
            json!({"sort": [{"property": "name"}], "position": 1, "limit": 2}),
            json!([id("archive"), id("drafts")]),
        ),
    ];
    for (args, expect) in cases {
        let got = query(args.clone());
        assert_eq!(got["ids"], expect, "{args}");
        assert_eq!(got["queryState"], w.state());
        assert_eq!(got["canCalculateChanges"], false);
    }
    let total = query(json!({"calculateTotal": true, "limit": 1}));
    assert_eq!(total["total"], 8);
    assert_eq!(total["ids"].as_array().unwrap().len(), 1);

    let unchanged = w.call(
        "Mailbox/queryChanges",
        json!({"accountId": w.account(), "sinceQueryState": w.state(), "calculateTotal": true}),
    );
    assert_eq!(unchanged["added"], json!([]));
    assert_eq!(unchanged["removed"], json!([]));
    assert_eq!(unchanged["newQueryState"], w.state());
    assert_eq!(unchanged["total"], 8);
}
