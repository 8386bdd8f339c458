//! Upload and download (RFC 8620 section 6).

use stormproof_jmap::ErrorKind;

use crate::kit::*;

#[test]
fn uploads_download_byte_for_byte_and_parts_by_their_ids() {
    let w = world();
    let upload = w
        .jmap
        .upload(
            &w.alice,
            w.account(),
            "message/rfc822",
            MULTIPART.as_bytes(),
        )
        .unwrap();
    let blob = upload["blobId"].as_str().unwrap();
    assert_eq!(upload["size"], MULTIPART.len());
    assert_eq!(
        w.jmap.download(&w.alice, w.account(), blob).unwrap(),
        MULTIPART.as_bytes()
    );
    let again = w
        .jmap
        .upload(
            &w.alice,
            w.account(),
            "message/rfc822",
            MULTIPART.as_bytes(),
        )
        .unwrap();
    assert_eq!(again["blobId"], upload["blobId"], "content-addressed");

    // The attachment, decoded from base64, by the id Email/get gives it.
    let id = w.deliver(MULTIPART, "inbox", &[], T0);
    let got = w.call(
        "Email/get",
        serde_json::json!({"accountId": w.account(), "ids": [id], "properties": ["attachments", "blobId"]}),
    );
    let part = got["list"][0]["attachments"][0]["blobId"].as_str().unwrap();
    assert_eq!(
        w.jmap.download(&w.alice, w.account(), part).unwrap(),
        b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n"
    );
    let message_blob = got["list"][0]["blobId"].as_str().unwrap();
    assert_eq!(
        w.jmap
            .download(&w.alice, w.account(), message_blob)
            .unwrap(),
        MULTIPART.as_bytes(),
        "delivered mail is owned too"
    );

    for bad in [
        "nope",
        "../../etc/passwd",
        &"A".repeat(64),
        &"0".repeat(64),
        &format!("{blob}_99"),
        &format!("{blob}_0"),
        &format!("{blob}_x"),
    ] {
        assert!(
            matches!(
                w.jmap
                    .download(&w.alice, w.account(), bad)
                    .map_err(|e| e.kind),
                Err(ErrorKind::NotFound)
            ),
            "{bad}"
        );
    }
}

#[test]
fn uploads_over_the_limit_are_refused() {
    let w = world_with(|c| c.max_size_upload = 8);
    assert!(matches!(
        w.jmap
            .upload(&w.alice, w.account(), "text/plain", b"123456789")
            .map_err(|e| e.kind),
        Err(ErrorKind::TooLarge { limit: 8 })
    ));
    assert!(
        w.jmap
            .upload(&w.alice, w.account(), "text/plain", b"12345678")
            .is_ok()
    );
}
