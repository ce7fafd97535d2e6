//! Finding the other nodes through DNS (`cluster-discovery dns:NAME[:port]`), as a Kubernetes
//! headless Service publishes them: SRV records (each target's addresses, at the record's
//! port) when the name has any, else the name's A/AAAA records at the given port (default:
//! this node's cluster port). The addresses found are seeds like `cluster-seeds`, looked up
//! again on every formation round, so nodes that start later are found too.

use std::io;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

/// A DNS name to look nodes up by.
pub struct Discovery {
    name: String,
    port: u16,
    resolver: TokioResolver,
}

impl Discovery {
    /// Parses `dns:NAME[:port]` (`port` defaults to `default_port`); `resolver` is the name
    /// server to ask (`ip` or `ip:port`), else the system's (`/etc/resolv.conf`).
    pub fn new(spec: &str, resolver: Option<&str>, default_port: u16) -> io::Result<Discovery> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("cluster-discovery '{spec}': {why}"));
        let rest = spec.strip_prefix("dns:").ok_or_else(|| bad("expected dns:NAME[:port]"))?;
        let (name, port) = match rest.rsplit_once(':') {
            Some((name, port)) => (name, port.parse::<u16>().map_err(|_| bad("bad port"))?),
            None => (rest, default_port),
        };
        if name.is_empty() {
            return Err(bad("no name"));
        }
        let resolver = match resolver {
            Some(addr) => {
                let (ip, dns_port) = match addr.parse::<SocketAddr>() {
                    Ok(sa) => (sa.ip(), sa.port()),
                    Err(_) => (addr.parse::<IpAddr>().map_err(|_| bad(&format!("bad resolver address '{addr}'")))?, 53),
                };
                let mut ns = NameServerConfig::udp_and_tcp(ip);
                for c in &mut ns.connections {
                    c.port = dns_port;
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
                .build()
            }
            None => TokioResolver::builder_tokio().and_then(|b| b.build()),
        }
        .map_err(|e| io::Error::other(format!("DNS resolver: {e}")))?;
        Ok(Discovery { name: name.to_string(), port, resolver })
    }

    /// The cluster addresses the name stands for now (sorted; empty if the lookup failed).
    pub async fn addresses(&self) -> Vec<String> {
        let mut out: Vec<SocketAddr> = Vec::new();
        if let Ok(srv) = self.resolver.srv_lookup(self.name.as_str()).await {
            for record in srv.answers() {
                let RData::SRV(s) = &record.data else { continue };
                if let Ok(ips) = self.resolver.lookup_ip(s.target.to_string()).await {
                    out.extend(ips.iter().map(|ip| SocketAddr::new(ip, s.port)));
                }
            }
        }
        if out.is_empty() {
            if let Ok(ips) = self.resolver.lookup_ip(self.name.as_str()).await {
                out.extend(ips.iter().map(|ip| SocketAddr::new(ip, self.port)));
            }
        }
        out.sort();
        out.dedup();
        out.into_iter().map(|a| a.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _g = rt.enter();
        let d = Discovery::new("dns:nodes.tandem.test:7000", Some("127.0.0.1:5353"), 16379).unwrap();
        assert_eq!((d.name.as_str(), d.port), ("nodes.tandem.test", 7000));
        let d = Discovery::new("dns:nodes.tandem.test", Some("127.0.0.1"), 16379).unwrap();
        assert_eq!(d.port, 16379);
        for bad in ["nodes", "dns:", "dns:x:notaport", "srv:x"] {
            assert!(Discovery::new(bad, Some("127.0.0.1"), 1).is_err(), "{bad}");
        }
        assert!(Discovery::new("dns:x", Some("not-an-ip"), 1).is_err());
    }
}
