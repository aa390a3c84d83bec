//! `--connect-to HOST1:PORT1:HOST2:PORT2`, curl's flag of the same name: requests for
//! `HOST1:PORT1` go to `HOST2:PORT2` while the URL, the `Host` header and TLS's server name
//! stay `HOST1`. This is how a host-routed load balancer (an ALB with host rules) is checked
//! before — or without — DNS pointing the host at it: the request must carry the real host
//! name or the balancer answers its default action.
//!
//! Pure: parsing and matching. Plan hands the result to the HTTP client as a resolver
//! override (reqwest's `resolve`), which takes the address's port when the URL names no
//! port of its own — so a URL with a port other than its scheme's default cannot be
//! redirected, and that is refused as a usage error rather than silently not applied.

use crate::check::Target;
use std::net::{IpAddr, SocketAddr};

/// One `--connect-to` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// The host the URL names (lower case).
    pub host: String,
    /// The URL's port it applies to; `None`: any (curl's empty PORT1).
    pub port: Option<u16>,
    /// Where the connection goes instead.
    pub to: SocketAddr,
}

impl ConnectTo {
    /// Parses `HOST1:PORT1:HOST2:PORT2`; HOST2 must be an IP address (`[::1]` for IPv6)
    /// and PORT1 may be empty.
    pub fn parse(text: &str) -> Result<ConnectTo, String> {
        let invalid = |why: &str| {
            format!(
                "--connect-to {text:?}: {why} (expected HOST1:PORT1:HOST2:PORT2, e.g. staging.example.com:80:127.0.0.1:8080)"
            )
        };
        let (host, rest) = text
            .split_once(':')
            .ok_or_else(|| invalid("too few parts"))?;
        let (port, rest) = rest
            .split_once(':')
            .ok_or_else(|| invalid("too few parts"))?;
        let (to_host, to_port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("too few parts"))?;
        if host.is_empty() {
            return Err(invalid("HOST1 is empty"));
        }
        let port = match port {
            "" => None,
            port => Some(parse_port(port).ok_or_else(|| invalid("PORT1 is not a port"))?),
        };
        let to_ip: IpAddr = to_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| invalid("HOST2 must be an IP address"))?;
        let to_port = parse_port(to_port).ok_or_else(|| invalid("PORT2 is not a port"))?;
        Ok(ConnectTo {
            host: host.to_ascii_lowercase(),
            port,
            to: SocketAddr::new(to_ip, to_port),
        })
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse().ok().filter(|port| *port != 0)
}

/// The rules the HTTP client needs (one per host), checked against the targets: two rules
/// for one host, or a rule for a URL that names a non-default port, are usage errors.
/// Rules that match no target are returned too (harmless, as with curl).
pub fn rules_for(rules: &[ConnectTo], targets: &[Target]) -> Result<Vec<ConnectTo>, String> {
    for (i, rule) in rules.iter().enumerate() {
        if rules[..i].iter().any(|earlier| earlier.host == rule.host) {
            return Err(format!(
                "--connect-to: two rules for {}: give one per host",
                rule.host
            ));
        }
    }
    for target in targets {
        let Target::Http(url) = target else { continue };
        let Some(host) = url.host_str() else { continue };
        let Some(rule) = rules.iter().find(|r| r.host.eq_ignore_ascii_case(host)) else {
            continue;
        };
        let port = url.port_or_known_default();
        if url.port().is_some() {
            return Err(format!(
                "--connect-to {}: {url} names port {}; only URLs on their scheme's default port can be redirected",
                rule.host,
                url.port().unwrap_or_default()
            ));
        }
        if let (Some(wanted), Some(port)) = (rule.port, port) {
            if wanted != port {
                return Err(format!(
                    "--connect-to {}:{wanted}: {url} is on port {port}",
                    rule.host
                ));
            }
        }
    }
    Ok(rules.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::parse_url;

    #[test]
    fn parses_curls_syntax() {
        let rule = ConnectTo::parse("Staging.Example.com:80:127.0.0.1:19001").unwrap();
        assert_eq!(rule.host, "staging.example.com");
        assert_eq!(rule.port, Some(80));
        assert_eq!(rule.to, "127.0.0.1:19001".parse().unwrap());
        let any_port = ConnectTo::parse("a.example::[::1]:8443").unwrap();
        assert_eq!(any_port.port, None);
        assert_eq!(any_port.to, "[::1]:8443".parse().unwrap());
    }

    #[test]
    fn bad_rules_say_which_part() {
        for (text, why) in [
            ("a.example:80:127.0.0.1", "too few parts"),
            (":80:127.0.0.1:1", "HOST1 is empty"),
            ("a:http:127.0.0.1:1", "PORT1"),
            ("a:80:lb.internal:1", "HOST2 must be an IP"),
            ("a:80:127.0.0.1:0", "PORT2"),
        ] {
            let err = ConnectTo::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_rule_applies_to_default_port_urls_of_its_host_only() {
        let rule = ConnectTo::parse("staging.example.com:80:127.0.0.1:19001").unwrap();
        let ok = [
            parse_url("http://staging.example.com/auth").unwrap(),
            parse_url("http://staging.example.com:80/auth").unwrap(),
            parse_url("http://other.example.com:8080/").unwrap(),
        ];
        assert_eq!(
            rules_for(std::slice::from_ref(&rule), &ok).unwrap(),
            vec![rule.clone()]
        );
        let explicit = [parse_url("http://staging.example.com:8080/auth").unwrap()];
        let err = rules_for(std::slice::from_ref(&rule), &explicit).unwrap_err();
        assert!(err.contains("names port 8080"), "{err}");
        let https = [parse_url("https://staging.example.com/auth").unwrap()];
        let err = rules_for(std::slice::from_ref(&rule), &https).unwrap_err();
        assert!(err.contains("is on port 443"), "{err}");
        let twice = [rule.clone(), rule];
        assert!(rules_for(&twice, &[]).unwrap_err().contains("two rules"));
    }
}
