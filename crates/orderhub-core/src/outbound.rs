//! The outbound URL policy: which addresses the hub may call on behalf of a tenant (webhook
//! subscriptions, a channel shop's API base URL). Without it a tenant could make the hub call its
//! own loopback, the private network or the cloud metadata service, and learn from the recorded
//! failure whether a port is open there.
//!
//! Pure: the classification of an address. Resolving names is the callers' (the HTTP layer at
//! creation, the delivery and channel clients at every call, since DNS can change); each keeps
//! only the addresses [`OutboundPolicy::permits`], and a call left with none fails with
//! [`REFUSED`] and nothing else (no connect error: it would tell what is listening there).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a call refused by the policy records, in full.
pub const REFUSED: &str = "refused by the outbound URL policy";

/// The error rule of a URL refused at creation.
pub const RULE: &str = "private_address";

/// Where an address points, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 site-local fec0::/10.
    Private,
    /// Carrier-grade NAT, 100.64.0.0/10 (RFC 6598).
    SharedAddressSpace,
    /// 169.254.0.0/16 (the cloud metadata service is 169.254.169.254), fe80::/10.
    LinkLocal,
    /// IPv6 unique local addresses, fc00::/7.
    UniqueLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 192.0.0/24, 198.18/15 (benchmarking), 240/4, 100::/64 (discard).
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared_address_space",
            AddressClass::LinkLocal => "link_local",
            AddressClass::UniqueLocal => "unique_local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (169, 254, _) => AddressClass::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (192, 0, 0) | (198, 18..=19, _) => AddressClass::Reserved,
        (224..=239, _, _) => AddressClass::Multicast,
        (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    // Forms that carry an IPv4 address are that address: mapped ::ffff:a.b.c.d, compatible
    // ::a.b.c.d (deprecated, still routed by some stacks), NAT64 64:ff9b::/96, 6to4 2002::/16.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        0xfc00..=0xfdff => AddressClass::UniqueLocal,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff => AddressClass::Private,
        0xff00..=0xffff => AddressClass::Multicast,
        0x2001 if s[1] == 0x0db8 => AddressClass::Documentation,
        0x3fff if s[1] <= 0x0fff => AddressClass::Documentation,
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn embedded(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The operator's choice: `allow_private` lets every address through (local simulators, the demo,
/// the benchmarks, a hub whose receivers live on its private network); otherwise only public
/// addresses. `orderhub serve` refuses private addresses unless `--allow-private-urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub allow_private: bool,
}

impl OutboundPolicy {
    /// Only public addresses.
    pub const PUBLIC_ONLY: OutboundPolicy = OutboundPolicy {
        allow_private: false,
    };
    /// Every address (tests and tools that talk to local simulators).
    pub const ALLOW_PRIVATE: OutboundPolicy = OutboundPolicy {
        allow_private: true,
    };

    /// `Err` with the address's class when the policy refuses it.
    pub fn permits(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match classify(ip) {
            AddressClass::Public => Ok(()),
            _ if self.allow_private => Ok(()),
            class => Err(class),
        }
    }
}

/// The host of a URL as an address, when it is written as one (`http://10.0.0.1/`,
/// `http://[::1]:8080/`). Clients do not resolve such hosts, so they check them themselves.
pub fn literal_host(host: &str) -> Option<IpAddr> {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    h.unwrap_or(host).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_non_public_range_is_named() {
        for (addr, want) in [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.10", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Reserved),
            ("240.0.0.1", Reserved),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("100::1", Reserved),
            // IPv4 inside IPv6: the IPv4 address decides.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:7f00:1::1", Loopback),
            ("2002:c0a8:101::1", Private),
        ] {
            assert_eq!(class(addr), want, "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_public_at_every_range_edge() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2400:3200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:db9::1",
            "fbff::1",
        ] {
            assert_eq!(class(addr), Public, "{addr}");
        }
    }

    #[test]
    fn the_policy_refuses_with_the_class_unless_private_is_allowed() {
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(OutboundPolicy::PUBLIC_ONLY.permits(ip), Err(LinkLocal));
        assert_eq!(OutboundPolicy::ALLOW_PRIVATE.permits(ip), Ok(()));
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(OutboundPolicy::PUBLIC_ONLY.permits(public), Ok(()));
    }

    #[test]
    fn literal_hosts_are_read_with_or_without_brackets() {
        assert_eq!(literal_host("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_host("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(literal_host("localhost"), None);
        assert_eq!(literal_host("example.com"), None);
    }
}
