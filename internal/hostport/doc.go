// Package hostport is skillbox's one reader of host names and HOST[:PORT]
// destinations. A manifest's permissions.network, --allow-net and the policy
// file's net and secrets hosts, the egress proxy's rules and request
// targets, --egress-resolve names and serve's --allow-host all parse here,
// so that a string means the same thing (or is refused for the same reason)
// wherever it is written.
//
// The language:
//
//   - a host name: letters, digits and '-' in dot-separated labels of 1-63
//     bytes (no '-' at either end of a label, no '_'), 253 bytes in all;
//     lower-cased, one trailing dot dropped, an internationalised name
//     converted to punycode (IDNA 2008, UTS #46 lookup); a name whose last
//     label is all digits ("127.1", "2130706433") is refused, since
//     resolvers and clients disagree on whether it is an address;
//   - "*." and a name: a pattern matching strict subdomains of the name
//     (only where a pattern is allowed);
//   - an IP address: IPv4 in dotted decimal, IPv6 bare ("::1") or in
//     brackets ("[::1]"), written back in canonical form; zones refused;
//     brackets only around IPv6;
//   - optionally ":PORT", 1-65535 in at most five decimal digits; no port
//     means any port.
//
// No scheme, path, user, query or white space. ParseHost (serve's
// --allow-host, matched against Host headers and never resolved) also
// takes '_' in a label.
package hostport
