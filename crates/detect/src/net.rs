//! Networks: the network an address belongs to at a given prefix length,
//! and a set of CIDR blocks that answers "is this address inside any?" with
//! one hash lookup per distinct prefix length, so a list of thousands of Tor
//! exits costs a handful of lookups per event, not a scan.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::{ErrorKind, Result};

/// A network: the masked address bits, its family and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Network {
    bits: u128,
    v6: bool,
    prefix: u8,
}

impl Network {
    /// The network of `ip` at `v4_prefix` or `v6_prefix` bits.
    pub(crate) fn of(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Self {
        // An IPv4 address mapped into IPv6 is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => Self::masked(u128::from(u32::from(v4)), false, v4_prefix.min(32)),
            IpAddr::V6(v6) => Self::masked(u128::from(v6), true, v6_prefix.min(128)),
        }
    }

    fn masked(bits: u128, v6: bool, prefix: u8) -> Self {
        let width = if v6 { 128 } else { 32 };
        let host_bits = u32::from(width - prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        Self {
            bits: bits & mask,
            v6,
            prefix,
        }
    }

    /// Reads the form [`std::fmt::Display`] writes.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let net: IpNet = text.parse().ok()?;
        Some(Self::of(net.addr(), net.prefix_len(), net.prefix_len()))
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", std::net::Ipv6Addr::from(self.bits), self.prefix)
        } else {
            let v4 = u32::try_from(self.bits).unwrap_or(0);
            write!(f, "{}/{}", std::net::Ipv4Addr::from(v4), self.prefix)
        }
    }
}

/// A set of CIDR blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct CidrSet {
    /// The distinct (family, prefix) pairs present, longest first, so the
    /// most specific block is reported.
    prefixes: Vec<(bool, u8)>,
    networks: HashSet<Network>,
}

impl CidrSet {
    /// Parses CIDR blocks (`192.0.2.0/24`, `2001:db8::/32`) or single
    /// addresses. `what` names the setting in errors.
    pub(crate) fn parse(blocks: &[String], what: &str) -> Result<Self> {
        let mut set = Self::default();
        for block in blocks {
            let block = block.trim();
            let (addr, prefix) = match block.parse::<IpNet>() {
                Ok(net) => (net.addr(), net.prefix_len()),
                Err(_) => match block.parse::<IpAddr>() {
                    Ok(ip @ IpAddr::V4(_)) => (ip, 32),
                    Ok(ip) => (ip, 128),
                    Err(_) => {
                        return Err(ErrorKind::Config(format!(
                            "{what}: {block:?} is not a CIDR block or address"
                        ))
                        .into());
                    }
                },
            };
            let network = Network::of(addr, prefix, prefix);
            set.networks.insert(network);
            if !set.prefixes.contains(&(network.v6, network.prefix)) {
                set.prefixes.push((network.v6, network.prefix));
            }
        }
        set.prefixes
            .sort_by_key(|&(_, prefix)| std::cmp::Reverse(prefix));
        Ok(set)
    }

    /// Whether the set has no blocks.
    pub(crate) fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// The block containing `ip`, if any.
    pub(crate) fn find(&self, ip: IpAddr) -> Option<Network> {
        let v6 = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none());
        self.prefixes
            .iter()
            .filter(|(family, _)| *family == v6)
            .map(|&(_, prefix)| Network::of(ip, prefix, prefix))
            .find(|network| self.networks.contains(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_of_addresses() {
        let cases = [
            ("203.0.113.77", 24, 48, "203.0.113.0/24"),
            ("203.0.113.77", 16, 48, "203.0.0.0/16"),
            ("::ffff:203.0.113.77", 24, 48, "203.0.113.0/24"),
            ("2001:db8:1:2::5", 24, 48, "2001:db8:1::/48"),
            ("2001:db8:1:2::5", 24, 0, "::/0"),
            ("203.0.113.77", 32, 128, "203.0.113.77/32"),
        ];
        for (addr, v4, v6, expected) in cases {
            let network = Network::of(ip(addr), v4, v6);
            assert_eq!(network.to_string(), expected, "{addr}");
            assert_eq!(Network::parse(expected), Some(network), "{expected}");
        }
    }

    #[test]
    fn cidr_sets() {
        let blocks: Vec<String> = ["185.220.100.0/22", "198.51.100.7", "2001:db8:dead::/48"]
            .map(String::from)
            .into();
        let set = CidrSet::parse(&blocks, "test").unwrap();
        let cases = [
            ("185.220.101.4", Some("185.220.100.0/22")),
            ("185.220.104.4", None),
            ("198.51.100.7", Some("198.51.100.7/32")),
            ("198.51.100.8", None),
            ("2001:db8:dead:1::1", Some("2001:db8:dead::/48")),
            ("2001:db8:beef::1", None),
            ("::ffff:185.220.101.4", Some("185.220.100.0/22")),
        ];
        for (addr, expected) in cases {
            let found = set.find(ip(addr)).map(|n| n.to_string());
            assert_eq!(found.as_deref(), expected, "{addr}");
        }
        assert!(CidrSet::parse(&["not-a-network".into()], "test").is_err());
    }
}
