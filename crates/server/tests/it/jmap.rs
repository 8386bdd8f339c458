//! JMAP (RFC 8620, RFC 8621) against the real server: the real
//! `jmap-client` crate for what a client does, raw HTTP for what a
//! well-behaved client never sends, and plain SMTP for delivery.
//!
//! The testkit's HTTP client is `reqwest::blocking`, which must not be built
//! or dropped inside an async context; so each test starts the server
//! outside the runtime and runs its `jmap-client` part in [`block_on`].

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::StreamExt;
use jmap_client::client::{Client, Credentials};
use jmap_client::core::query::{Comparator, Filter};
use jmap_client::core::set::SetErrorType;
use jmap_client::event_source::PushNotification;
use jmap_client::mailbox::Role;
use jmap_client::{DataType, email, mailbox};
use serde_json::{Value, json};
use stormproof_store::{MailStore, Store};
use stormproof_types::{Email, TenantName};

use crate::testkit::Server;

pub(crate) const CORE: &str = "urn:ietf:params:jmap:core";
pub(crate) const MAIL: &str = "urn:ietf:params:jmap:mail";

/// Bounds every wait on the server so that a regression fails the test
/// rather than hanging it. Never a performance threshold.
const BOUND: Duration = Duration::from_secs(60);

pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// A `jmap-client` session for `token`. The client itself appends
/// `/.well-known/jmap`; redirects are followed only to loopback.
pub(crate) async fn connect(server: &Server, token: &str) -> Client {
    Client::new()
        .credentials(Credentials::bearer(token))
        .follow_redirects(["127.0.0.1"])
        .timeout(BOUND)
        .connect(&server.url)
        .await
        .expect("jmap-client connects")
}

/// The user's mail account id, read from the store rather than from JMAP.
pub(crate) fn account_id(server: &Server, tenant: &str, user: &str) -> String {
    let store = stormproof_store::SqliteStore::open(server.data.path()).expect("store");
    let tenant = TenantName::parse(tenant).expect("tenant");
    let user = store
        .user_by_email(&tenant, &Email::parse(user).expect("email"))
        .expect("user lookup")
        .expect("user exists");
    store
        .mail_account_for_user(&tenant, &user.id)
        .expect("account lookup")
        .expect("mail account")
        .account_id
}

/// A minimal SMTP client: one message per connection, every reply checked.
pub(crate) struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn reply(&mut self) -> String {
        let mut last = String::new();
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).expect("smtp read");
            assert!(read > 0, "SMTP server closed the connection");
            if line.as_bytes().get(3) != Some(&b'-') {
                last.push_str(line.trim_end());
                return last;
            }
        }
    }

    fn command(&mut self, line: &str, expect: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("smtp write");
        let reply = self.reply();
        assert!(reply.starts_with(expect), "{line}: {reply}");
    }

    /// Delivers `message` (CRLF lines, none starting with '.') and waits
    /// for the final `250`, which the server sends only once it is stored.
    pub(crate) fn deliver(address: &str, from: &str, to: &str, message: &str) {
        let stream = TcpStream::connect(address).expect("smtp connect");
        stream.set_read_timeout(Some(BOUND)).expect("timeout");
        let mut smtp = Self {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        let greeting = smtp.reply();
        assert!(greeting.starts_with("220"), "{greeting}");
        smtp.command("EHLO client.test", "250");
        smtp.command(&format!("MAIL FROM:<{from}>"), "250");
        smtp.command(&format!("RCPT TO:<{to}>"), "250");
        smtp.command("DATA", "354");
        smtp.writer
            .write_all(message.as_bytes())
            .expect("smtp data");
        smtp.command(".", "250");
        smtp.command("QUIT", "221");
    }
}

pub(crate) fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob Example <bob@globex.test>\r\nTo: Alice <alice@acme.test>\r\n\
         Subject: {subject}\r\nMessage-ID: <{}@globex.test>\r\n\
         Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{body}",
        subject.replace(' ', "-").to_ascii_lowercase()
    )
}

/// No filter or sort, with the types `jmap-client` wants spelled out.
fn no_mailbox_sort() -> Option<Vec<Comparator<mailbox::query::Comparator>>> {
    None
}

fn no_email_sort() -> Option<Vec<Comparator<email::query::Comparator>>> {
    None
}

async fn inbox_id(client: &Client) -> String {
    let mut found = client
        .mailbox_query(
            Some(mailbox::query::Filter::role(Role::Inbox)),
            no_mailbox_sort(),
        )
        .await
        .expect("Mailbox/query role=inbox");
    let ids = found.take_ids();
    assert_eq!(ids.len(), 1, "exactly one inbox: {ids:?}");
    ids[0].clone()
}

async fn email_ids(client: &Client, filter: email::query::Filter) -> Vec<String> {
    client
        .email_query(Some(filter), no_email_sort())
        .await
        .expect("Email/query")
        .take_ids()
}

/// The account's current Email state, from an `Email/get` of no ids.
async fn email_state(client: &Client) -> String {
    let mut request = client.build();
    request.get_email().ids(Vec::<String>::new());
    request
        .send_get_email()
        .await
        .expect("Email/get")
        .take_state()
}

async fn mailbox_state(client: &Client) -> String {
    let mut request = client.build();
    request.get_mailbox().ids(Vec::<String>::new());
    request
        .send_get_mailbox()
        .await
        .expect("Mailbox/get")
        .take_state()
}

async fn keywords(client: &Client, id: &str) -> Vec<String> {
    let email = client
        .email_get(id, Some([email::Property::Keywords]))
        .await
        .expect("Email/get")
        .expect("the email exists");
    let mut keywords: Vec<String> = email.keywords().into_iter().map(str::to_owned).collect();
    keywords.sort();
    keywords
}

async fn mailboxes_of(client: &Client, id: &str) -> Vec<String> {
    let email = client
        .email_get(id, Some([email::Property::MailboxIds]))
        .await
        .expect("Email/get")
        .expect("the email exists");
    email.mailbox_ids().into_iter().map(str::to_owned).collect()
}

/// Expands an RFC 6570 level-1 template the way RFC 8620 uses them.
fn expand(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_owned(), |url, (name, value)| {
        url.replace(&format!("{{{name}}}"), value)
    })
}

/// A raw POST to the API endpoint: status, content type and JSON body.
pub(crate) fn post_api(server: &Server, token: &str, body: &str) -> (u16, String, Value) {
    let response = server
        .http
        .post(format!("{}/jmap/api", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("POST /jmap/api");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, json)
}

/// One method call through raw HTTP; returns the single method response
/// as (name, arguments) and the whole body as text.
pub(crate) fn call(
    server: &Server,
    token: &str,
    method: &str,
    args: Value,
) -> (String, Value, String) {
    let request = json!({"using": [CORE, MAIL], "methodCalls": [[method, args, "c0"]]});
    let (status, _, body) = post_api(server, token, &request.to_string());
    assert_eq!(status, 200, "{method}: {body}");
    let response = &body["methodResponses"][0];
    assert_eq!(response[2], "c0", "{body}");
    let name = response[0].as_str().expect("response name").to_owned();
    (name, response[1].clone(), body.to_string())
}

/// A GET with a bearer token: status and body bytes.
pub(crate) fn get(server: &Server, token: &str, url: &str) -> (u16, Vec<u8>) {
    let response = server.http.get(url).bearer_auth(token).send().expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().expect("body").to_vec())
}

#[test]
fn session_names_alices_mail_account_and_its_absolute_urls_work() {
    let server = Server::with_tenants();
    let alice_account = account_id(&server, "acme", "alice@acme.test");
    let bob_account = account_id(&server, "globex", "bob@globex.test");
    assert_ne!(alice_account, bob_account);
    let token = server.issue("alice@acme.test");
    let content = b"Notes for the quarterly review.\r\n".to_vec();

    let (urls, blob_id) = block_on(async {
        let client = connect(&server, &token).await;
        let session = client.session();
        assert_eq!(session.username(), "alice@acme.test");
        // Mail is alice's account; any other capability the server lists
        // (submission, ...) names the same one, for she has no other.
        let primary: Vec<(&String, &String)> = session.primary_accounts().collect();
        assert!(
            primary.contains(&(&MAIL.to_owned(), &alice_account)),
            "{primary:?}"
        );
        assert!(
            primary.iter().all(|(_, id)| **id == alice_account),
            "{primary:?}"
        );
        assert_eq!(client.default_account_id(), alice_account);
        let accounts: Vec<&String> = session.accounts().collect();
        assert_eq!(
            accounts,
            vec![&alice_account],
            "alice sees only her account"
        );
        let account = session.account(&alice_account).expect("account object");
        assert!(account.is_personal());
        assert!(!account.is_read_only());
        assert!(account.capability(MAIL).is_some());
        assert!(session.has_capability(CORE) && session.has_capability(MAIL));
        let core = session.core_capabilities().expect("core capability");
        assert!(core.max_size_upload() > content.len());
        assert!(core.max_calls_in_request() > 0 && core.max_objects_in_get() > 0);

        let urls = [
            session.api_url().to_owned(),
            session.download_url().to_owned(),
            session.upload_url().to_owned(),
            session.event_source_url().to_owned(),
        ];
        for url in &urls {
            let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.scheme(), "http", "{url}");
            assert_eq!(parsed.host_str(), Some("127.0.0.1"), "{url}");
            assert!(url.starts_with(&format!("{}/", server.url)), "{url}");
        }
        for var in ["{accountId}", "{blobId}", "{name}", "{type}"] {
            assert!(urls[1].contains(var), "downloadUrl {} lacks {var}", urls[1]);
        }
        assert!(urls[2].contains("{accountId}"), "{}", urls[2]);
        for var in ["{types}", "{closeafter}", "{ping}"] {
            assert!(
                urls[3].contains(var),
                "eventSourceUrl {} lacks {var}",
                urls[3]
            );
        }

        // apiUrl works: the inbox is there.
        assert!(!inbox_id(&client).await.is_empty());
        // uploadUrl and downloadUrl work, byte for byte.
        let upload = client
            .upload(None, content.clone(), Some("text/plain"))
            .await
            .expect("upload");
        assert_eq!(upload.account_id(), alice_account);
        assert_eq!(upload.size(), content.len());
        assert_eq!(upload.content_type(), "text/plain");
        let downloaded = client.download(upload.blob_id()).await.expect("download");
        assert_eq!(downloaded, content);
        (urls, upload.blob_id().to_owned())
    });

    // The same templates expanded by hand, outside the client.
    let download = expand(
        &urls[1],
        &[
            ("accountId", &alice_account),
            ("blobId", &blob_id),
            ("name", "notes.txt"),
            ("type", "text/plain"),
        ],
    );
    let response = server
        .http
        .get(&download)
        .bearer_auth(&token)
        .send()
        .expect("download");
    assert_eq!(response.status().as_u16(), 200, "{download}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/plain");
    assert!(
        header("content-disposition").contains("notes.txt"),
        "{}",
        header("content-disposition")
    );
    assert_eq!(response.bytes().expect("bytes").to_vec(), content);

    let events = expand(
        &urls[3],
        &[("types", "*"), ("closeafter", "no"), ("ping", "0")],
    );
    let response = server
        .http
        .get(&events)
        .bearer_auth(&token)
        .send()
        .expect("event source");
    assert_eq!(response.status().as_u16(), 200, "{events}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    drop(response);

    // And the session over raw HTTP is the one the client parsed.
    let (status, body) = get(&server, &token, &format!("{}/.well-known/jmap", server.url));
    assert_eq!(status, 200);
    let session: Value = serde_json::from_slice(&body).expect("session json");
    assert_eq!(session["primaryAccounts"][MAIL], alice_account);
    assert_eq!(session["apiUrl"], urls[0]);
    assert_eq!(session["apiUrl"], format!("{}/jmap/api", server.url));
}

#[test]
fn mail_delivered_by_smtp_appears_in_alices_inbox_over_jmap() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    Smtp::deliver(
        &server.smtp,
        "bob@globex.test",
        "alice@acme.test",
        &message(
            "Quarterly numbers",
            "The numbers are attached.\r\nRegards, Bob\r\n",
        ),
    );

    block_on(async {
        let client = connect(&server, &token).await;
        let inbox = inbox_id(&client).await;
        let ids = email_ids(&client, email::query::Filter::in_mailbox(&inbox)).await;
        assert_eq!(ids.len(), 1, "{ids:?}");

        let mut request = client.build();
        request
            .get_email()
            .ids([ids[0].as_str()])
            .properties([
                email::Property::Id,
                email::Property::Subject,
                email::Property::From,
                email::Property::Preview,
                email::Property::BodyValues,
                email::Property::TextBody,
                email::Property::MailboxIds,
                email::Property::Keywords,
            ])
            .arguments()
            .fetch_text_body_values(true);
        let mut list = request
            .send_get_email()
            .await
            .expect("Email/get")
            .take_list();
        assert_eq!(list.len(), 1);
        let email = list.remove(0);
        assert_eq!(email.id(), Some(ids[0].as_str()));
        assert_eq!(email.subject(), Some("Quarterly numbers"));
        let from = email.from().expect("from");
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].email(), "bob@globex.test");
        assert_eq!(from[0].name(), Some("Bob Example"));
        let preview = email.preview().expect("preview");
        assert!(preview.contains("The numbers are attached."), "{preview}");
        let text = email.text_body().expect("textBody");
        assert_eq!(text.len(), 1);
        let part = text[0].part_id().expect("partId");
        let value = email
            .body_value(part)
            .expect("bodyValues has the text part");
        assert!(value.value().contains("Regards, Bob"), "{}", value.value());
        assert!(!value.is_truncated());
        assert_eq!(email.mailbox_ids(), vec![inbox.as_str()]);
        assert!(email.keywords().is_empty(), "{:?}", email.keywords());

        let inbox = client
            .mailbox_get(&inbox, None::<Vec<mailbox::Property>>)
            .await
            .expect("Mailbox/get")
            .expect("inbox");
        assert_eq!(inbox.total_emails(), 1);
        assert_eq!(inbox.unread_emails(), 1);
    });
}

#[test]
fn mailboxes_are_created_renamed_queried_and_destroyed_through_the_client() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");

    block_on(async {
        let client = connect(&server, &token).await;
        let inbox = inbox_id(&client).await;
        let before = mailbox_state(&client).await;

        let projects = client
            .mailbox_create("Projects", None::<String>, Role::None)
            .await
            .expect("create Projects")
            .take_id();
        let child = client
            .mailbox_create("2026", Some(projects.clone()), Role::None)
            .await
            .expect("create 2026 under Projects")
            .take_id();
        assert_ne!(projects, child);

        client
            .mailbox_rename(&projects, "Clients")
            .await
            .expect("rename");
        let got = client
            .mailbox_get(&projects, None::<Vec<mailbox::Property>>)
            .await
            .expect("Mailbox/get")
            .expect("renamed mailbox");
        assert_eq!(got.name(), Some("Clients"));
        assert_eq!(got.parent_id(), None);
        assert_eq!(got.role(), Role::None);
        let got_child = client
            .mailbox_get(&child, None::<Vec<mailbox::Property>>)
            .await
            .expect("Mailbox/get")
            .expect("child");
        assert_eq!(got_child.parent_id(), Some(projects.as_str()));

        let by_name = client
            .mailbox_query(
                Some(mailbox::query::Filter::name("Clients")),
                no_mailbox_sort(),
            )
            .await
            .expect("query by name")
            .take_ids();
        assert_eq!(by_name, vec![projects.clone()]);
        let old_name = client
            .mailbox_query(
                Some(mailbox::query::Filter::name("Projects")),
                no_mailbox_sort(),
            )
            .await
            .expect("query by old name")
            .take_ids();
        assert!(old_name.is_empty(), "{old_name:?}");
        let children = client
            .mailbox_query(
                Some(mailbox::query::Filter::parent_id(Some(projects.clone()))),
                no_mailbox_sort(),
            )
            .await
            .expect("query by parent")
            .take_ids();
        assert_eq!(children, vec![child.clone()]);
        let all = client
            .mailbox_query(
                None::<mailbox::query::Filter>,
                Some([mailbox::query::Comparator::name()]),
            )
            .await
            .expect("query all by name")
            .take_ids();
        for id in [&inbox, &projects, &child] {
            assert!(all.contains(id), "{id} missing from {all:?}");
        }

        let changes = client
            .mailbox_changes(before.clone(), 100)
            .await
            .expect("Mailbox/changes");
        for id in [&projects, &child] {
            assert!(
                changes.created().contains(id),
                "{id} not created: {:?}",
                changes.created()
            );
        }
        assert!(changes.destroyed().is_empty());
        let after_create = changes.new_state().to_owned();
        assert_ne!(after_create, before);

        match client.mailbox_destroy(&projects, false).await {
            Err(jmap_client::Error::Set(error)) => {
                assert_eq!(error.error(), &SetErrorType::MailboxHasChild, "{error:?}");
            }
            other => panic!("a mailbox with a child must not be destroyed: {other:?}"),
        }
        client
            .mailbox_destroy(&child, false)
            .await
            .expect("destroy child");
        client
            .mailbox_destroy(&projects, false)
            .await
            .expect("destroy parent");
        for id in [&projects, &child] {
            let gone = client
                .mailbox_get(id, None::<Vec<mailbox::Property>>)
                .await
                .expect("Mailbox/get");
            assert!(gone.is_none(), "{id} still there: {gone:?}");
        }
        let changes = client
            .mailbox_changes(after_create, 100)
            .await
            .expect("Mailbox/changes");
        let mut destroyed = changes.destroyed().to_vec();
        destroyed.sort();
        let mut expected = vec![projects.clone(), child.clone()];
        expected.sort();
        assert_eq!(destroyed, expected);
        assert!(
            !changes.created().contains(&projects),
            "{:?}",
            changes.created()
        );
        // The inbox is untouched.
        assert_eq!(inbox_id(&client).await, inbox);
    });
}

#[test]
fn imported_email_is_flagged_moved_searched_tracked_destroyed_and_downloads_byte_for_byte() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let raw = "From: Carol <carol@example.test>\r\nTo: alice@acme.test\r\n\
               Subject: Invoice 7731\r\nMessage-ID: <inv-7731@example.test>\r\n\
               Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\r\n\
               Please find the zanzibarite invoice below.\r\nTotal: 42 EUR\r\n"
        .as_bytes()
        .to_vec();

    block_on(async {
        let client = connect(&server, &token).await;
        let inbox = inbox_id(&client).await;
        let receipts = client
            .mailbox_create("Receipts", None::<String>, Role::None)
            .await
            .expect("create Receipts")
            .take_id();
        let before = email_state(&client).await;

        // Upload with the client, then Email/import with keywords.
        let upload = client
            .upload(None, raw.clone(), Some("message/rfc822"))
            .await
            .expect("upload");
        let mut request = client.build();
        let import = request
            .import_email()
            .email(upload.blob_id())
            .mailbox_ids([inbox.as_str()])
            .keywords(["$seen"]);
        let create_id = import.create_id();
        let mut imported = request
            .send_import_email()
            .await
            .expect("Email/import")
            .created(&create_id)
            .expect("imported");
        let id = imported.take_id();
        assert!(!id.is_empty());
        assert_eq!(imported.blob_id(), Some(upload.blob_id()));
        assert_eq!(keywords(&client, &id).await, vec!["$seen"]);
        assert_eq!(mailboxes_of(&client, &id).await, vec![inbox.clone()]);

        // Keywords: add $flagged, then replace the set.
        client
            .email_set_keyword(&id, "$flagged", true)
            .await
            .expect("set $flagged");
        assert_eq!(keywords(&client, &id).await, vec!["$flagged", "$seen"]);
        // jmap-client patches a removal as `"keywords/$flagged": false`;
        // RFC 8620/8621 spell it `null`. Refusing it is correct, but it must
        // never succeed while leaving the keyword set.
        let removal = client.email_set_keyword(&id, "$flagged", false).await;
        let after_removal = keywords(&client, &id).await;
        match &removal {
            Ok(_) => assert_eq!(after_removal, vec!["$seen"], "removal reported done"),
            Err(jmap_client::Error::Set(error)) => {
                assert_eq!(error.error(), &SetErrorType::InvalidProperties, "{error:?}");
                assert_eq!(after_removal, vec!["$flagged", "$seen"]);
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
        client
            .email_set_keywords(&id, ["$seen"])
            .await
            .expect("replace keywords");
        assert_eq!(keywords(&client, &id).await, vec!["$seen"]);

        // Move from the inbox to Receipts.
        client
            .email_set_mailboxes(&id, [receipts.as_str()])
            .await
            .expect("move");
        assert_eq!(mailboxes_of(&client, &id).await, vec![receipts.clone()]);
        assert!(
            !email_ids(&client, email::query::Filter::in_mailbox(&inbox))
                .await
                .contains(&id)
        );
        assert_eq!(
            email_ids(&client, email::query::Filter::in_mailbox(&receipts)).await,
            vec![id.clone()]
        );
        let receipts_box = client
            .mailbox_get(&receipts, None::<Vec<mailbox::Property>>)
            .await
            .expect("Mailbox/get")
            .expect("Receipts");
        assert_eq!(receipts_box.total_emails(), 1);
        assert_eq!(receipts_box.unread_emails(), 0, "the email is $seen");

        // Full-text search.
        assert_eq!(
            email_ids(&client, email::query::Filter::text("zanzibarite")).await,
            vec![id.clone()]
        );
        assert!(
            email_ids(&client, email::query::Filter::text("quokkaberry"))
                .await
                .is_empty()
        );
        let both = client
            .email_query(
                Some(Filter::and([
                    email::query::Filter::text("invoice"),
                    email::query::Filter::in_mailbox(&receipts),
                ])),
                no_email_sort(),
            )
            .await
            .expect("Email/query AND")
            .take_ids();
        assert_eq!(both, vec![id.clone()]);

        // Changes since the state before the import.
        let changes = client
            .email_changes(before.clone(), None)
            .await
            .expect("Email/changes");
        assert!(changes.created().contains(&id), "{:?}", changes.created());
        assert!(changes.destroyed().is_empty());
        assert_ne!(changes.new_state(), before);
        let after_import = changes.new_state().to_owned();
        assert_eq!(after_import, email_state(&client).await);

        // The email's blob downloads as the bytes that were uploaded.
        let blob = imported.blob_id().expect("blobId").to_owned();
        assert_eq!(client.download(&blob).await.expect("download"), raw);

        // Destroy.
        client.email_destroy(&id).await.expect("destroy");
        assert!(
            client
                .email_get(&id, None::<Vec<email::Property>>)
                .await
                .expect("Email/get")
                .is_none()
        );
        let changes = client
            .email_changes(after_import, None)
            .await
            .expect("Email/changes");
        assert_eq!(changes.destroyed(), std::slice::from_ref(&id));
        assert!(
            email_ids(&client, email::query::Filter::text("zanzibarite"))
                .await
                .is_empty()
        );
        let receipts_box = client
            .mailbox_get(&receipts, None::<Vec<mailbox::Property>>)
            .await
            .expect("Mailbox/get")
            .expect("Receipts");
        assert_eq!(receipts_box.total_emails(), 0);
        match client.email_destroy(&id).await {
            Err(jmap_client::Error::Set(error)) => {
                assert_eq!(error.error(), &SetErrorType::NotFound, "{error:?}");
            }
            other => panic!("destroying twice must be notFound: {other:?}"),
        }
    });
}

#[test]
fn event_source_pushes_a_state_change_when_mail_is_delivered() {
    let server = Server::with_tenants();
    let alice = account_id(&server, "acme", "alice@acme.test");
    let token = server.issue("alice@acme.test");
    let smtp = server.smtp.clone();

    block_on(async {
        let client = connect(&server, &token).await;
        let before = email_state(&client).await;
        let mut stream = client
            .event_source(
                Some([DataType::Email, DataType::Mailbox]),
                false,
                None,
                None,
            )
            .await
            .expect("event source");

        let address = smtp.clone();
        tokio::task::spawn_blocking(move || {
            Smtp::deliver(
                &address,
                "bob@globex.test",
                "alice@acme.test",
                &message("Pushed", "Arrives while the stream is open.\r\n"),
            );
        })
        .await
        .expect("delivery");

        // Events before the delivery (a server may announce the current
        // state on connect) are skipped; the delivery must move the state.
        let pushed = loop {
            let event = tokio::time::timeout(BOUND, stream.next())
                .await
                .expect("a state change within the bound")
                .expect("the stream stays open")
                .expect("a well-formed event");
            let mut changes = match event {
                PushNotification::StateChange(changes) => changes,
                other => panic!("unexpected event: {other:?}"),
            };
            let accounts: Vec<&String> = changes.changed_accounts().collect();
            assert_eq!(accounts, vec![&alice], "only alice's account is named");
            let mut changed = changes.account_changes(&alice).expect("alice's changes");
            let email = changed.remove(&DataType::Email).expect("an Email state");
            assert!(changed.contains_key(&DataType::Mailbox), "{changed:?}");
            if email != before {
                break email;
            }
        };
        // The pushed state is the one the API now reports.
        assert_eq!(pushed, email_state(&client).await);
        let changes = client
            .email_changes(before, None)
            .await
            .expect("Email/changes");
        assert_eq!(changes.created().len(), 1, "{:?}", changes.created());
        drop(stream);

        // closeafter=state: every response ends after a state event, and a
        // client that reconnects each time sees the change.
        let before = email_state(&client).await;
        let mut delivered = false;
        let mut saw_change = false;
        for _connection in 0..5 {
            let mut stream = client
                .event_source(None::<Vec<DataType>>, true, None, None)
                .await
                .expect("event source, closeafter=state");
            if !delivered {
                let address = smtp.clone();
                tokio::task::spawn_blocking(move || {
                    Smtp::deliver(
                        &address,
                        "bob@globex.test",
                        "alice@acme.test",
                        &message("Pushed again", "And closes the stream.\r\n"),
                    );
                })
                .await
                .expect("delivery");
                delivered = true;
            }
            let mut events = 0;
            loop {
                let next = tokio::time::timeout(BOUND, stream.next())
                    .await
                    .expect("a closeafter=state stream ends within the bound");
                let Some(event) = next else { break };
                events += 1;
                let PushNotification::StateChange(mut changes) = event.expect("event") else {
                    panic!("unexpected event");
                };
                let changed = changes.account_changes(&alice).expect("alice's changes");
                if changed.get(&DataType::Email).is_some_and(|s| *s != before) {
                    saw_change = true;
                }
            }
            assert!(events > 0, "the stream ended without a state event");
            if saw_change {
                break;
            }
        }
        assert!(saw_change, "no connection pushed the change");
    });
}

#[test]
fn event_source_ends_when_its_sign_in_session_is_revoked() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let sid = crate::testkit::claims(&token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    block_on(async {
        let client = connect(&server, &token).await;
        let mut stream = client
            .event_source(None::<Vec<DataType>>, false, None, None)
            .await
            .expect("event source");
        server.cli_ok(&["session", "revoke", "--tenant", "acme", "--sid", &sid]);
        // Whatever was pushed before the revocation, the stream must end.
        loop {
            let next = tokio::time::timeout(BOUND, stream.next())
                .await
                .expect("the stream ends after the revocation");
            match next {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            }
        }
        match client
            .mailbox_query(None::<mailbox::query::Filter>, no_mailbox_sort())
            .await
        {
            Err(jmap_client::Error::Server(status)) => {
                assert!(status.starts_with("401"), "{status}")
            }
            other => panic!("a revoked token still reaches the API: {other:?}"),
        }
    });
}

/// RFC 8620 section 7.3: with `ping=N` the server "MUST send an event called
/// ping" whose data is `{"interval": N}`.
#[test]
fn event_source_sends_ping_events_with_their_interval() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let response = server
        .http
        .get(format!(
            "{}/jmap/eventsource?types=*&closeafter=no&ping=1",
            server.url
        ))
        .bearer_auth(&token)
        .send()
        .expect("event source");
    assert_eq!(response.status().as_u16(), 200);
    let mut lines = BufReader::new(response).lines();
    let mut comments = 0;
    loop {
        let line = lines
            .next()
            .expect("the stream stays open")
            .expect("a line");
        if line == "event: ping" {
            let data = lines.next().expect("data line").expect("a line");
            let data: Value =
                serde_json::from_str(data.strip_prefix("data:").expect("a data field").trim())
                    .expect("ping data is JSON");
            assert!(data["interval"].as_u64().is_some_and(|i| i >= 1), "{data}");
            return;
        }
        if line.starts_with(':') {
            comments += 1;
            assert!(comments < 3, "three keep-alive comments and no ping event");
        }
    }
}

/// RFC 8620 section 3.6.1: a request over `maxSizeRequest` is refused with
/// the `limit` problem naming the limit.
#[test]
fn request_over_max_size_request_is_a_limit_problem() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let (_, session) = get(&server, &token, &format!("{}/.well-known/jmap", server.url));
    let session: Value = serde_json::from_slice(&session).expect("session");
    let max = session["capabilities"][CORE]["maxSizeRequest"]
        .as_u64()
        .expect("maxSizeRequest") as usize;
    let head = r#"{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"pad":""#;
    let tail = r#""},"c0"]]}"#;
    let body = format!(
        "{head}{}{tail}",
        "x".repeat(max + 1 - head.len() - tail.len())
    );
    assert_eq!(body.len(), max + 1);
    let (status, content_type, problem) = post_api(&server, &token, &body);
    assert_eq!(status, 400, "{problem}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    assert_eq!(
        problem["type"], "urn:ietf:params:jmap:error:limit",
        "{problem}"
    );
    assert_eq!(problem["limit"], "maxSizeRequest", "{problem}");
}

#[test]
fn bob_cannot_reach_alices_mail_and_tokens_without_mail_scope_are_refused() {
    let server = Server::with_tenants();
    let alice_account = account_id(&server, "acme", "alice@acme.test");
    let bob_account = account_id(&server, "globex", "bob@globex.test");
    let alice = server.issue("alice@acme.test");
    let bob = server.issue("bob@globex.test");
    const SECRET_SUBJECT: &str = "Merger codename Bluejay";
    const SECRET_WORD: &str = "xylophonist";
    Smtp::deliver(
        &server.smtp,
        "bob@globex.test",
        "alice@acme.test",
        &message(
            SECRET_SUBJECT,
            &format!("The {SECRET_WORD} signs on Friday.\r\n"),
        ),
    );

    // Alice's real ids, as alice sees them.
    let (_, inbox, _) = call(
        &server,
        &alice,
        "Mailbox/query",
        json!({"accountId": alice_account, "filter": {"role": "inbox"}}),
    );
    let alice_inbox = inbox["ids"][0].as_str().expect("inbox").to_owned();
    let (_, query, _) = call(
        &server,
        &alice,
        "Email/query",
        json!({"accountId": alice_account, "filter": {"inMailbox": alice_inbox}}),
    );
    let alice_email = query["ids"][0].as_str().expect("email").to_owned();
    let (_, got, _) = call(
        &server,
        &alice,
        "Email/get",
        json!({"accountId": alice_account, "ids": [alice_email],
               "properties": ["blobId", "threadId", "subject"]}),
    );
    let alice_blob = got["list"][0]["blobId"].as_str().expect("blob").to_owned();
    let alice_thread = got["list"][0]["threadId"]
        .as_str()
        .expect("thread")
        .to_owned();
    assert_eq!(got["list"][0]["subject"], SECRET_SUBJECT);
    let (_, bob_inbox, _) = call(
        &server,
        &bob,
        "Mailbox/query",
        json!({"accountId": bob_account, "filter": {"role": "inbox"}}),
    );
    let bob_inbox = bob_inbox["ids"][0]
        .as_str()
        .expect("bob's inbox")
        .to_owned();

    let leaks = |text: &str| text.contains(SECRET_SUBJECT) || text.contains(SECRET_WORD);

    // Bob names alice's account: accountNotFound, whatever the method.
    let in_alices_account = [
        (
            "Email/get",
            json!({"accountId": alice_account, "ids": [alice_email]}),
        ),
        ("Email/query", json!({"accountId": alice_account})),
        (
            "Email/query",
            json!({"accountId": alice_account, "filter": {"text": SECRET_WORD}}),
        ),
        (
            "Mailbox/get",
            json!({"accountId": alice_account, "ids": null}),
        ),
        ("Mailbox/query", json!({"accountId": alice_account})),
        (
            "Email/changes",
            json!({"accountId": alice_account, "sinceState": "0"}),
        ),
        (
            "Thread/get",
            json!({"accountId": alice_account, "ids": [alice_thread]}),
        ),
        (
            "Email/parse",
            json!({"accountId": alice_account, "blobIds": [alice_blob]}),
        ),
        (
            "SearchSnippet/get",
            json!({"accountId": alice_account, "emailIds": [alice_email],
                   "filter": {"text": SECRET_WORD}}),
        ),
        (
            "Email/set",
            json!({"accountId": alice_account, "destroy": [alice_email]}),
        ),
    ];
    for (method, args) in in_alices_account {
        let (name, response, text) = call(&server, &bob, method, args);
        assert_eq!(name, "error", "{method}: {text}");
        assert_eq!(response["type"], "accountNotFound", "{method}: {text}");
        assert!(!leaks(&text), "{method} leaked: {text}");
    }

    // Email/copy from alice's account into bob's.
    let (name, response, text) = call(
        &server,
        &bob,
        "Email/copy",
        json!({"fromAccountId": alice_account, "accountId": bob_account,
               "create": {"c1": {"id": alice_email, "mailboxIds": {bob_inbox.clone(): true}}}}),
    );
    assert_eq!(name, "error", "{text}");
    assert!(
        response["type"] == "fromAccountNotFound" || response["type"] == "accountNotFound",
        "{text}"
    );
    assert!(!leaks(&text), "{text}");

    // Bob names alice's real ids in his own account: notFound.
    let (name, response, text) = call(
        &server,
        &bob,
        "Email/get",
        json!({"accountId": bob_account, "ids": [alice_email]}),
    );
    assert_eq!(name, "Email/get", "{text}");
    assert_eq!(response["list"], json!([]), "{text}");
    assert_eq!(response["notFound"], json!([alice_email]), "{text}");
    let (_, response, text) = call(
        &server,
        &bob,
        "Mailbox/get",
        json!({"accountId": bob_account, "ids": [alice_inbox]}),
    );
    assert_eq!(response["list"], json!([]), "{text}");
    assert_eq!(response["notFound"], json!([alice_inbox]), "{text}");
    let (_, response, text) = call(
        &server,
        &bob,
        "Thread/get",
        json!({"accountId": bob_account, "ids": [alice_thread]}),
    );
    assert_eq!(response["list"], json!([]), "{text}");
    let (_, response, text) = call(
        &server,
        &bob,
        "Email/parse",
        json!({"accountId": bob_account, "blobIds": [alice_blob]}),
    );
    assert!(!leaks(&text), "{text}");
    assert_eq!(response["notFound"], json!([alice_blob]), "{text}");
    for filter in [
        json!({"text": SECRET_WORD}),
        json!({"subject": "Bluejay"}),
        json!({"inMailbox": alice_inbox}),
    ] {
        let (_, response, text) = call(
            &server,
            &bob,
            "Email/query",
            json!({"accountId": bob_account, "filter": filter}),
        );
        assert!(!text.contains(&alice_email), "{text}");
        if response["ids"].is_array() {
            assert_eq!(response["ids"], json!([]), "{text}");
        }
    }
    let (_, response, text) = call(
        &server,
        &bob,
        "Email/import",
        json!({"accountId": bob_account, "emails": {"i1": {
            "blobId": alice_blob, "mailboxIds": {bob_inbox.clone(): true}}}}),
    );
    assert_eq!(response["created"], Value::Null, "{text}");
    assert_eq!(
        response["notCreated"]["i1"]["type"], "blobNotFound",
        "{text}"
    );
    let (_, response, text) = call(
        &server,
        &bob,
        "Email/set",
        json!({"accountId": bob_account,
               "update": {alice_email.clone(): {"keywords/$flagged": true}},
               "destroy": [alice_email]}),
    );
    assert_eq!(
        response["notUpdated"][&alice_email]["type"], "notFound",
        "{text}"
    );
    assert_eq!(
        response["notDestroyed"][&alice_email]["type"], "notFound",
        "{text}"
    );

    // Blobs: download and upload under either account.
    for account in [&alice_account, &bob_account] {
        for blob in [alice_blob.clone(), format!("{alice_blob}_1")] {
            let url = format!("{}/jmap/download/{account}/{blob}/x.eml", server.url);
            let (status, body) = get(&server, &bob, &url);
            assert_eq!(status, 404, "{url}");
            assert!(!leaks(&String::from_utf8_lossy(&body)), "{url}");
        }
    }
    let upload = server
        .http
        .post(format!("{}/jmap/upload/{alice_account}/", server.url))
        .bearer_auth(&bob)
        .body("planted by bob")
        .send()
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 404);

    // Alice's mail is intact and still hers.
    let (_, got, text) = call(
        &server,
        &alice,
        "Email/get",
        json!({"accountId": alice_account, "ids": [alice_email],
               "properties": ["subject", "keywords", "mailboxIds"]}),
    );
    assert_eq!(got["list"][0]["subject"], SECRET_SUBJECT, "{text}");
    assert_eq!(got["list"][0]["keywords"], json!({}), "{text}");
    assert_eq!(
        got["list"][0]["mailboxIds"],
        json!({alice_inbox.clone(): true}),
        "{text}"
    );
    let url = format!(
        "{}/jmap/download/{alice_account}/{alice_blob}/x.eml",
        server.url
    );
    let (status, body) = get(&server, &alice, &url);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(SECRET_WORD));

    // Bob's own client session knows only bob's account.
    block_on(async {
        let client = connect(&server, &bob).await;
        assert_eq!(client.default_account_id(), bob_account);
        let session = client.session();
        let accounts: Vec<&String> = session.accounts().collect();
        assert_eq!(accounts, vec![&bob_account]);
        match client
            .email_copy(
                alice_account.clone(),
                alice_email.clone(),
                [bob_inbox.as_str()],
                None::<Vec<String>>,
                None,
            )
            .await
        {
            Err(jmap_client::Error::Method(error)) => assert!(
                matches!(
                    error.error(),
                    jmap_client::core::error::MethodErrorType::FromAccountNotFound
                        | jmap_client::core::error::MethodErrorType::AccountNotFound
                ),
                "{error:?}"
            ),
            other => panic!("copy from alice's account: {other:?}"),
        }
    });

    // A token without the `mail` scope is forbidden on every JMAP route.
    let openid_only = server
        .cli_ok(&[
            "token",
            "issue",
            "--user",
            "alice@acme.test",
            "--scope",
            "openid",
        ])
        .trim()
        .to_owned();
    let (status, _) = get(
        &server,
        &openid_only,
        &format!("{}/.well-known/jmap", server.url),
    );
    assert_eq!(status, 403);
    let session_url = format!("{}/.well-known/jmap", server.url);
    let api = r#"{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{},"c0"]]}"#;
    let download = format!(
        "{}/jmap/download/{alice_account}/{alice_blob}/x.eml",
        server.url
    );
    let events = format!(
        "{}/jmap/eventsource?types=*&closeafter=no&ping=0",
        server.url
    );
    let (status, _, _) = post_api(&server, &openid_only, api);
    assert_eq!(status, 403);
    for url in [&download, &events] {
        let (status, body) = get(&server, &openid_only, url);
        assert_eq!(status, 403, "{url}");
        assert!(!leaks(&String::from_utf8_lossy(&body)), "{url}");
    }
    let status = block_on(async {
        match Client::new()
            .credentials(Credentials::bearer(openid_only.as_str()))
            .timeout(BOUND)
            .connect(&server.url)
            .await
        {
            Ok(_) => panic!("jmap-client connected without the mail scope"),
            Err(jmap_client::Error::Problem(problem)) => problem.status,
            Err(jmap_client::Error::Server(status)) => {
                status.split(' ').next().and_then(|s| s.parse().ok())
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    });
    assert_eq!(status, Some(403));

    // A forged or garbage token is unauthenticated on every JMAP route.
    let mut tampered = alice.clone();
    tampered.pop();
    tampered.push(if alice.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "garbage", "a.b.c"] {
        for url in [&session_url, &download, &events] {
            let (status, body) = get(&server, bad, url);
            assert_eq!(status, 401, "{bad} {url}");
            assert!(!leaks(&String::from_utf8_lossy(&body)));
        }
        let (status, _, _) = post_api(&server, bad, api);
        assert_eq!(status, 401, "{bad}");
    }
    let anonymous = server.http.get(&session_url).send().expect("anonymous");
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[test]
fn malformed_requests_get_the_rfc_8620_request_and_method_errors() {
    let server = Server::with_tenants();
    let alice_account = account_id(&server, "acme", "alice@acme.test");
    let token = server.issue("alice@acme.test");

    let problem = |body: &str, kind: &str| {
        let (status, content_type, problem) = post_api(&server, &token, body);
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(
            content_type.starts_with("application/problem+json"),
            "{body}: {content_type}"
        );
        assert_eq!(
            problem["type"],
            format!("urn:ietf:params:jmap:error:{kind}"),
            "{body}: {problem}"
        );
        assert_eq!(problem["status"], 400, "{body}: {problem}");
    };
    problem("{not json", "notJSON");
    problem("", "notJSON");
    problem("[1, 2, 3]", "notRequest");
    problem(r#""a string""#, "notRequest");
    problem(r#"{"using": ["urn:ietf:params:jmap:core"]}"#, "notRequest");
    problem(r#"{"methodCalls": []}"#, "notRequest");
    problem(
        r#"{"using": "urn:ietf:params:jmap:core", "methodCalls": []}"#,
        "notRequest",
    );
    problem(
        r#"{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {}]]}"#,
        "notRequest",
    );
    problem(
        r#"{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", [], "c0"]]}"#,
        "notRequest",
    );
    problem(
        r#"{"using": ["urn:ietf:params:jmap:core", "urn:example:teleport"], "methodCalls": [["Core/echo", {}, "c0"]]}"#,
        "unknownCapability",
    );

    // Method-level errors: 200, an "error" response per failing call, and
    // the other calls still answered in order.
    let request = json!({
        "using": [CORE, MAIL],
        "methodCalls": [
            ["Mailbox/teleport", {"accountId": alice_account}, "c0"],
            ["Mailbox/get", {"accountId": 42}, "c1"],
            ["Mailbox/get", {"accountId": alice_account, "ids": null, "frobnicate": true}, "c2"],
            ["Email/query", {"accountId": alice_account, "limit": -1}, "c3"],
            ["Email/get", {"accountId": alice_account, "ids": "not-a-list"}, "c4"],
            ["Core/echo", {"hello": [1, 2]}, "c5"],
            ["Mailbox/get", {"accountId": alice_account, "ids": []}, "c6"],
        ],
    });
    let (status, content_type, body) = post_api(&server, &token, &request.to_string());
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let responses = body["methodResponses"].as_array().expect("methodResponses");
    assert_eq!(responses.len(), 7, "{body}");
    let expect_error = |i: usize, kind: &str| {
        let response = &responses[i];
        assert_eq!(response[0], "error", "c{i}: {body}");
        assert_eq!(response[1]["type"], kind, "c{i}: {body}");
        assert_eq!(response[2], format!("c{i}"), "{body}");
    };
    expect_error(0, "unknownMethod");
    for i in 1..=4 {
        expect_error(i, "invalidArguments");
    }
    assert_eq!(responses[5], json!(["Core/echo", {"hello": [1, 2]}, "c5"]));
    assert_eq!(responses[6][0], "Mailbox/get", "{body}");
    assert_eq!(responses[6][1]["list"], json!([]), "{body}");
    assert!(body["sessionState"].is_string(), "{body}");

    // A mail method without the mail capability in `using` is unknownMethod.
    let request = json!({
        "using": [CORE],
        "methodCalls": [["Mailbox/get", {"accountId": alice_account}, "c0"]],
    });
    let (status, _, body) = post_api(&server, &token, &request.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["methodResponses"][0][0], "error", "{body}");
    assert_eq!(body["methodResponses"][0][1]["type"], "unknownMethod");

    // Through jmap-client too: a bad state is a typed method error.
    block_on(async {
        let client = connect(&server, &token).await;
        match client.email_changes("not-a-state", None).await {
            Err(jmap_client::Error::Method(error)) => assert_eq!(
                error.error(),
                &jmap_client::core::error::MethodErrorType::CannotCalculateChanges,
                "{error:?}"
            ),
            other => panic!("Email/changes from a bogus state: {other:?}"),
        }
    });
}

#[test]
fn a_draft_sent_with_email_submission_through_the_client_reaches_a_local_recipient() {
    let server = Server::with_tenants();
    let token = server.issue("alice@acme.test");
    let bob_account = account_id(&server, "globex", "bob@globex.test");
    block_on(async {
        let client = connect(&server, &token).await;
        let drafts = client
            .mailbox_query(
                Some(mailbox::query::Filter::role(Role::Drafts)),
                no_mailbox_sort(),
            )
            .await
            .expect("Mailbox/query role=drafts")
            .take_ids()
            .pop()
            .expect("a drafts mailbox");
        let identity = client
            .identity_create("Alice", "alice@acme.test")
            .await
            .expect("Identity/set");
        let identity_id = identity.id().expect("identity id").to_owned();
        let raw = "From: Alice <alice@acme.test>\r\nTo: Bob <bob@globex.test>\r\nSubject: Lunch on Friday?\r\nMessage-ID: <draft-1@acme.test>\r\n\r\nShall we?\r\n";
        let draft = client
            .email_import(
                raw.as_bytes().to_vec(),
                [drafts.as_str()],
                Some(["$draft"]),
                None,
            )
            .await
            .expect("Email/import");
        let submission = client
            .email_submission_create(draft.id().expect("email id"), &identity_id)
            .await
            .expect("EmailSubmission/set");
        assert!(submission.id().is_some());

        // Sending as someone else is refused.
        let forged =
            "From: Mallory <mallory@acme.test>\r\nTo: bob@globex.test\r\nSubject: x\r\n\r\nx\r\n";
        let forged = client
            .email_import(
                forged.as_bytes().to_vec(),
                [drafts.as_str()],
                None::<Vec<String>>,
                None,
            )
            .await
            .expect("Email/import");
        assert!(
            client
                .email_submission_create(forged.id().expect("id"), &identity_id)
                .await
                .is_err()
        );
    });
    let store = stormproof_store::SqliteStore::open(server.data.path()).expect("store");
    let globex = TenantName::parse("globex").expect("tenant");
    let inbox = store
        .mailbox_id_by_role(&globex, &bob_account, "inbox")
        .expect("lookup")
        .expect("inbox");
    let ids = store
        .mailbox_email_ids(&globex, &bob_account, &inbox)
        .expect("ids");
    let received = store.emails(&globex, &bob_account, &ids).expect("emails");
    assert_eq!(received.len(), 1, "exactly the genuine message arrived");
    assert_eq!(received[0].subject.as_deref(), Some("Lunch on Friday?"));
}
