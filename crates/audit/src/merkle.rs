//! RFC 6962 Merkle trees (section 2.1): hashing, roots, and the inclusion and
//! consistency proofs a client checks a checkpoint's claims with.
//!
//! A leaf is `SHA-256(0x00 || record)`, an interior node
//! `SHA-256(0x01 || left || right)`, and the tree over `n` leaves splits at
//! the largest power of two below `n`. The empty tree's root is
//! `SHA-256("")`. Proof verification follows RFC 9162 sections 2.1.3.2 and
//! 2.1.4.2, which check the same proofs RFC 6962 defines.
//!
//! The log builds proofs from stored node hashes through [`NodeSource`]; the
//! public in-memory [`inclusion_proof`] and [`consistency_proof`] run the same
//! code over a slice of leaves.
//!
//! ```
//! use stormproof_audit::merkle;
//! let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| merkle::leaf_hash(&[i])).collect();
//! let root = merkle::root(&leaves);
//! let proof = merkle::inclusion_proof(&leaves, 3).unwrap_or_default();
//! assert!(merkle::verify_inclusion(&leaves[3], 3, 5, &proof, &root));
//! ```

use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind};

/// Domain separation prefixes of RFC 6962 section 2.1.
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf: `SHA-256(0x00 || record)`.
pub fn leaf_hash(record: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(record);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> [u8; 32] {
    Sha256::digest(b"").into()
}

/// The Merkle tree hash (MTH) of `leaves`, which are leaf hashes.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf, |_, _, _| {});
    }
    frontier.root()
}

/// The inclusion proof (RFC 6962 `PATH`) of leaf `index` in the tree over
/// all of `leaves`, or `None` if `index` is out of range.
pub fn inclusion_proof(leaves: &[[u8; 32]], index: u64) -> Option<Vec<[u8; 32]>> {
    inclusion_path(&mut Leaves(leaves), index, leaves.len() as u64).ok()
}

/// The consistency proof (RFC 6962 `PROOF`) between the tree over the first
/// `old` leaves and the tree over all of `leaves`, or `None` if `old` is
/// larger than the tree.
pub fn consistency_proof(leaves: &[[u8; 32]], old: u64) -> Option<Vec<[u8; 32]>> {
    consistency_path(&mut Leaves(leaves), old, leaves.len() as u64).ok()
}

/// Checks that `proof` shows `leaf` at `index` in the tree of `size` leaves
/// whose root is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks that `proof` shows the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root
/// `new_root` (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty one; there is nothing to prove.
        return proof.is_empty();
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    // When the old tree is a complete subtree its root is the proof's
    // implicit first element.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// Where the hashes of complete, aligned subtrees come from: node `index` at
/// `level` covers leaves `[index << level, (index + 1) << level)`.
pub(crate) trait NodeSource {
    fn node(&mut self, level: u32, index: u64) -> Result<[u8; 32], Error>;
}

/// The leaves of an in-memory tree.
struct Leaves<'a>(&'a [[u8; 32]]);

impl NodeSource for Leaves<'_> {
    fn node(&mut self, level: u32, index: u64) -> Result<[u8; 32], Error> {
        let (start, end) = subtree_range(level, index)?;
        let leaves = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(start, end)| self.0.get(start..end))
            .ok_or_else(|| bad_request("subtree beyond the tree"))?;
        Ok(perfect_root(leaves.to_vec()))
    }
}

/// The leaf range `[start, end)` of node `index` at `level`.
pub(crate) fn subtree_range(level: u32, index: u64) -> Result<(u64, u64), Error> {
    if level >= 64 {
        return Err(bad_request("subtree out of range"));
    }
    let width = 1u64 << level;
    let start = index
        .checked_mul(width)
        .ok_or_else(|| bad_request("subtree out of range"))?;
    let end = start
        .checked_add(width)
        .ok_or_else(|| bad_request("subtree out of range"))?;
    Ok((start, end))
}

/// The root of a complete subtree given all its leaf hashes (a power of two
/// of them).
pub(crate) fn perfect_root(mut level: Vec<[u8; 32]>) -> [u8; 32] {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(left, right),
                [single] => *single,
                _ => empty_root(),
            })
            .collect();
    }
    level.first().copied().unwrap_or_else(empty_root)
}

fn bad_request(what: &str) -> Error {
    ErrorKind::BadRequest(what.to_owned()).into()
}

/// The largest power of two strictly below `n` (`n >= 2`): RFC 6962's split.
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves `[lo, hi)`, where `lo` is a multiple of a power of two at
/// least `hi - lo`, as every range in RFC 6962's recursion is: the range is a
/// run of complete aligned subtrees, largest first, folded from the right.
pub(crate) fn range_hash(src: &mut impl NodeSource, lo: u64, hi: u64) -> Result<[u8; 32], Error> {
    if hi <= lo {
        return Ok(empty_root());
    }
    let mut parts = Vec::with_capacity(64);
    let mut start = lo;
    let width = hi - lo;
    for level in (0..64u32).rev() {
        if width & (1u64 << level) != 0 {
            parts.push(src.node(level, start >> level)?);
            start += 1u64 << level;
        }
    }
    let mut parts = parts.into_iter().rev();
    let mut acc = parts.next().unwrap_or_else(empty_root);
    for left in parts {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// RFC 6962 `PATH(index, D[0:size])`, leaf to root.
pub(crate) fn inclusion_path(
    src: &mut impl NodeSource,
    index: u64,
    size: u64,
) -> Result<Vec<[u8; 32]>, Error> {
    if index >= size {
        return Err(bad_request("leaf index beyond the tree size"));
    }
    // Walk down from the root, collecting siblings root-first.
    let mut siblings = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            siblings.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            siblings.push(range_hash(src, lo, lo + k)?);
            lo += k;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// RFC 6962 `PROOF(old, D[0:new])`, in the RFC's order.
pub(crate) fn consistency_path(
    src: &mut impl NodeSource,
    old: u64,
    new: u64,
) -> Result<Vec<[u8; 32]>, Error> {
    if old > new {
        return Err(bad_request("old size beyond the new size"));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: collect root-first, then reverse.
    let mut nodes = Vec::new();
    let (mut lo, mut hi, mut whole) = (0, new, true);
    loop {
        if old == hi {
            if !whole {
                nodes.push(range_hash(src, lo, hi)?);
            }
            break;
        }
        let k = split(hi - lo);
        if old <= lo + k {
            nodes.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            nodes.push(range_hash(src, lo, lo + k)?);
            lo += k;
            whole = false;
        }
    }
    nodes.reverse();
    Ok(nodes)
}

/// The compact range `[0, size)`: one complete-subtree hash per set bit of
/// `size`, largest (leftmost) first. Enough to compute the root and to keep
/// appending, so it is what the writer keeps in memory and what a pruned log
/// keeps in place of the leaves it removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Frontier {
    size: u64,
    nodes: Vec<[u8; 32]>,
}

impl Frontier {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A frontier from its parts, if `nodes` has one hash per set bit.
    pub(crate) fn from_parts(size: u64, nodes: Vec<[u8; 32]>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// The frontier at `size`, read from `src`.
    pub(crate) fn load(src: &mut impl NodeSource, size: u64) -> Result<Self, Error> {
        let mut nodes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                nodes.push(src.node(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn nodes(&self) -> &[[u8; 32]] {
        &self.nodes
    }

    /// The `(level, index)` of each frontier node, in order.
    pub(crate) fn positions(size: u64) -> impl Iterator<Item = (u32, u64)> {
        let mut start = 0u64;
        (0..64u32)
            .rev()
            .filter(move |level| size & (1u64 << level) != 0)
            .map(move |level| {
                let at = (level, start >> level);
                start += 1u64 << level;
                at
            })
    }

    /// Appends a leaf hash. `completed` is called with `(level, index, hash)`
    /// for every interior node the new leaf completes, lowest first.
    pub(crate) fn push(&mut self, leaf: [u8; 32], mut completed: impl FnMut(u32, u64, &[u8; 32])) {
        let new_size = self.size + 1;
        let mut hash = leaf;
        let mut level = 0u32;
        while (self.size >> level) & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, (new_size >> level) - 1, &hash);
        }
        self.nodes.push(hash);
        self.size = new_size;
    }

    /// The root of the tree over `[0, size)`.
    pub(crate) fn root(&self) -> [u8; 32] {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's MTH, written out as the RFC states it, to check the
    /// frontier against.
    fn reference_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn the_split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "{n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
    }

    #[test]
    fn frontier_roots_match_the_rfc_recursion() {
        let all = leaves(130);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            let mut completed = Vec::new();
            frontier.push(*leaf, |level, index, hash| {
                completed.push((level, index, *hash))
            });
            let size = i + 1;
            assert_eq!(frontier.root(), reference_root(&all[..size]), "size {size}");
            for (level, index, hash) in completed {
                let start = (index << level) as usize;
                let end = ((index + 1) << level) as usize;
                assert_eq!(
                    hash,
                    reference_root(&all[start..end]),
                    "node {level}/{index}"
                );
            }
        }
    }

    #[test]
    fn frontier_loads_from_nodes() {
        let all = leaves(77);
        for size in 0..=77u64 {
            let loaded = Frontier::load(&mut Leaves(&all), size).unwrap();
            assert_eq!(loaded.root(), reference_root(&all[..size as usize]));
            let positions: Vec<_> = Frontier::positions(size).collect();
            assert_eq!(positions.len(), loaded.nodes().len());
        }
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        let all = leaves(5);
        assert!(inclusion_proof(&all, 5).is_none());
        assert!(consistency_proof(&all, 6).is_none());
        assert!(subtree_range(64, 0).is_err());
        assert!(subtree_range(63, 2).is_err());
    }
}
