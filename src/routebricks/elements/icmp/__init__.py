"""ICMP elements (Click's elements/icmp): ICMPError, ICMPPingResponder."""
