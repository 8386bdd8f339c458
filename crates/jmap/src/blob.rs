//! Blob ids and access to their bytes.
//!
//! A stored blob's id is the hex SHA-256 of its bytes. A body part has no
//! blob of its own; its id is `<blobId>_<partId>` (and `_<partId>` again for
//! a part of an attached message), resolved by parsing the owning blob.
//! Either way a blob is reached only through the account that owns its
//! root, as recorded by the store: a guessed id of another account's blob
//! reads as absent.

use mail_parser::{MessageParser, PartType};
use stormproof_store::{BlobStore, Store};
use stormproof_types::TenantName;

/// Whether `id` is a stored blob's id: 64 lowercase hex digits.
pub(crate) fn is_root_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The id of part `part` of the message in blob `blob_id`.
pub(crate) fn part_id(blob_id: &str, part: usize) -> String {
    format!("{blob_id}_{part}")
}

/// Splits an id into its root blob and the part path below it.
pub(crate) fn split(id: &str) -> Option<(&str, Vec<usize>)> {
    let mut segments = id.split('_');
    let root = segments.next().filter(|root| is_root_id(root))?;
    let path = segments
        .map(|s| {
            (!s.is_empty() && s.len() < 10 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        })
        .collect::<Option<Vec<usize>>>()?;
    Some((root, path))
}

/// The decoded bytes of one part of a raw message: a nested message's raw
/// bytes, or a leaf's decoded content. Multipart containers have none.
pub(crate) fn part_bytes(raw: &[u8], part: usize) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let part = message.parts.get(part)?;
    match &part.body {
        PartType::Multipart(_) => None,
        _ => Some(part.contents().to_vec()),
    }
}

/// Reads a blob or part the account owns; `Ok(None)` when it does not
/// exist or is not the account's.
pub(crate) fn read(
    store: &dyn Store,
    blobs: &BlobStore,
    tenant: &TenantName,
    account_id: &str,
    id: &str,
) -> Result<Option<Vec<u8>>, stormproof_store::Error> {
    let Some((root, path)) = split(id) else {
        return Ok(None);
    };
    if !store.owns_blob(tenant, account_id, root)? {
        return Ok(None);
    }
    let mut bytes = match blobs.get(root) {
        Ok(bytes) => bytes,
        Err(e) if matches!(e.kind, stormproof_store::ErrorKind::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    for part in path {
        match part_bytes(&bytes, part) {
            Some(inner) => bytes = inner,
            None => return Ok(None),
        }
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_and_part_ids() {
        let root = "ab".repeat(32);
        type Split = Option<(String, Vec<usize>)>;
        let cases: Vec<(String, Split)> = vec![
            (root.clone(), Some((root.clone(), vec![]))),
            (format!("{root}_2"), Some((root.clone(), vec![2]))),
            (format!("{root}_2_0"), Some((root.clone(), vec![2, 0]))),
            (format!("{root}_"), None),
            (format!("{root}_x"), None),
            (format!("{root}_-1"), None),
            ("AB".repeat(32), None),
            ("../../etc/passwd".into(), None),
            (String::new(), None),
        ];
        for (id, expect) in cases {
            let got = split(&id).map(|(r, p)| (r.to_owned(), p));
            assert_eq!(got, expect, "{id}");
        }
    }
}
