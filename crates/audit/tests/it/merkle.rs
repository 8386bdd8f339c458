//! RFC 6962 against the published test vectors
//! (transparency-dev/merkle, certificate-transparency-go), then every proof
//! shape up to 70 leaves.

use stormproof_audit::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root, verify_consistency,
    verify_inclusion,
};

fn h(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

const INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees over the first 0..=8 inputs.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn vector_leaves() -> Vec<[u8; 32]> {
    INPUTS.iter().map(|i| leaf_hash(&unhex(i))).collect()
}

#[test]
fn roots_match_the_published_vectors() {
    let leaves = vector_leaves();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..size]), h(want), "size {size}");
    }
    assert_eq!(leaves[0], h(ROOTS[1]), "a one-leaf tree's root is its leaf");
    assert_eq!(node_hash(&leaves[0], &leaves[1]), h(ROOTS[2]));
}

#[test]
fn inclusion_proofs_match_the_published_vectors() {
    let leaves = vector_leaves();
    // (index, size, proof), indexes from 0.
    let vectors: [(u64, usize, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, proof) in vectors {
        let want: Vec<[u8; 32]> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            inclusion_proof(&leaves[..size], index).unwrap(),
            want,
            "{index} in {size}"
        );
        assert!(verify_inclusion(
            &leaves[index as usize],
            index,
            size as u64,
            &want,
            &h(ROOTS[size])
        ));
    }
}

#[test]
fn consistency_proofs_match_the_published_vectors() {
    let leaves = vector_leaves();
    let vectors: [(u64, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, proof) in vectors {
        let want: Vec<[u8; 32]> = proof.iter().map(|p| h(p)).collect();
        assert_eq!(
            consistency_proof(&leaves[..new], old).unwrap(),
            want,
            "{old} to {new}"
        );
        assert!(verify_consistency(
            old,
            new as u64,
            &h(ROOTS[old as usize]),
            &h(ROOTS[new]),
            &want
        ));
    }
}

#[test]
fn degenerate_consistency_cases() {
    let (a, b) = (h(ROOTS[1]), h(ROOTS[2]));
    let empty = h(ROOTS[0]);
    // (old, new, old root, new root, proof, verifies)
    type Case<'a> = (u64, u64, [u8; 32], [u8; 32], &'a [[u8; 32]], bool);
    let cases: [Case; 8] = [
        (0, 0, a, a, &[], true),
        (0, 0, a, b, &[], false),
        (0, 1, a, b, &[], true),
        (0, 1, empty, empty, &[empty], false),
        (1, 1, a, a, &[], true),
        (1, 1, a, a, &[empty], false),
        (2, 1, a, b, &[], false),
        (1, 2, a, b, &[], false),
    ];
    for (old, new, old_root, new_root, proof, want) in cases {
        assert_eq!(
            verify_consistency(old, new, &old_root, &new_root, proof),
            want,
            "{old} to {new}"
        );
    }
}

/// Every proof for every shape of tree up to 70 leaves verifies, and
/// stops verifying when anything about it changes.
#[test]
fn every_proof_round_trips_and_breaks_when_mutated() {
    let leaves: Vec<[u8; 32]> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let roots: Vec<[u8; 32]> = (0..=leaves.len()).map(|n| root(&leaves[..n])).collect();
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let n = size as u64;
        let r = roots[size];
        for index in 0..n {
            let leaf = &leaves[index as usize];
            let proof = inclusion_proof(tree, index).unwrap();
            assert!(
                verify_inclusion(leaf, index, n, &proof, &r),
                "{index} in {size}"
            );
            assert!(!verify_inclusion(leaf, index ^ 1, n, &proof, &r));
            assert!(!verify_inclusion(leaf, index, n * 2, &proof, &r));
            assert!(!verify_inclusion(leaf, index, n / 2, &proof, &r));
            assert!(!verify_inclusion(
                &leaves[(index as usize + 1) % 70],
                index,
                n,
                &proof,
                &r
            ));
            assert!(!verify_inclusion(leaf, index, n, &proof, &roots[size - 1]));
            let mut longer = proof.clone();
            longer.push(r);
            assert!(!verify_inclusion(leaf, index, n, &longer, &r));
            if !proof.is_empty() {
                assert!(!verify_inclusion(
                    leaf,
                    index,
                    n,
                    &proof[..proof.len() - 1],
                    &r
                ));
            }
            for at in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[at][0] ^= 8;
                assert!(
                    !verify_inclusion(leaf, index, n, &flipped, &r),
                    "{index} in {size}, bit at {at}"
                );
            }
        }
        for old in 0..=n {
            let proof = consistency_proof(tree, old).unwrap();
            let old_root = roots[old as usize];
            assert!(
                verify_consistency(old, n, &old_root, &r, &proof),
                "{old} to {size}"
            );
            if old == 0 || old == n {
                continue;
            }
            assert!(!verify_consistency(old, n, &r, &old_root, &proof));
            assert!(!verify_consistency(old - 1, n, &old_root, &r, &proof));
            assert!(!verify_consistency(old + 1, n, &old_root, &r, &proof));
            assert!(!verify_consistency(old, n * 2, &old_root, &r, &proof));
            assert!(!verify_consistency(old, n / 2, &old_root, &r, &proof));
            assert!(!verify_consistency(
                old,
                n,
                &old_root,
                &r,
                &proof[..proof.len() - 1]
            ));
            let mut longer = proof.clone();
            longer.push(old_root);
            assert!(!verify_consistency(old, n, &old_root, &r, &longer));
            for at in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[at][0] ^= 16;
                assert!(
                    !verify_consistency(old, n, &old_root, &r, &flipped),
                    "{old} to {size}, bit at {at}"
                );
            }
        }
    }
}
