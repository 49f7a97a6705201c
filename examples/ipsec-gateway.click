// An IPsec ESP tunnel gateway (RFC 4303 tunnel mode), the RouteBricks paper's third
// application, on real interfaces. The LAN side's traffic for the peer's protected networks
// leaves the WAN side encrypted (ESPEncap); ESP from the peer is verified, decrypted and
// delivered to the LAN (ESPDecap). Plaintext from the WAN never reaches the LAN.
//
//   routebricks testbed up examples/ipsec-testbed.toml --prefix rb000002-
//   routebricks run examples/ipsec-gateway.click --netns rb000002-west --workers 1 -u /tmp/west.sock
//   routebricks run examples/ipsec-gateway.click --netns rb000002-east --workers 1 \
//       LAN_IP=10.2.0.1 LAN_NET=10.2.0.0/24 LAN_MAC=02:00:00:02:00:01 \
//       WAN_IP=192.0.2.2 WAN_MAC=02:00:00:02:01:01
//   ip netns exec rb000002-a ping 10.2.0.2
//   routebricks handler read encap.sa -u /tmp/west.sock        (keys are never shown)
//
// The defaults are the "west" gateway of examples/ipsec-testbed.toml. The SAs come from the
// SAS file (examples/ipsec-sas.txt, TEST keys), narrowed to this gateway by its tunnel
// address: keep keys in that file (chmod 600), not in the configuration. ESPEncap and
// ESPDecap keep per-SA sequence numbers and replay windows in one process: --workers 1.

define(
    $LAN eth0, $LAN_IP 10.1.0.1, $LAN_NET 10.1.0.0/24, $LAN_MAC 02:00:00:01:00:01,
    $WAN eth1, $WAN_IP 192.0.2.1, $WAN_MAC 02:00:00:01:01:01,
    $SAS ipsec-sas.txt,
    // Largest inner packet whose ESP packet fits a 1500-byte WAN MTU, for both algorithms
    // (GCM: 20 + 8 + 8 + 16 bytes and padding to 4; CBC: 20 + 8 + 16 + 12 and padding to 16).
    $TUN_MTU 1438
)

lan_out :: ToDevice($LAN);
wan_out :: ToDevice($WAN);
lan_arp :: ARPQuerier($LAN_IP, $LAN_MAC);
wan_arp :: ARPQuerier($WAN_IP, $WAN_MAC);
lan_arp -> lan_out;
wan_arp -> wan_out;

lan_c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
wan_c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
FromDevice($LAN) -> lan_c;
FromDevice($WAN) -> wan_c;
lan_c [0] -> ARPResponder($LAN_IP $LAN_MAC) -> lan_out;
wan_c [0] -> ARPResponder($WAN_IP $WAN_MAC) -> wan_out;
lan_c [1] -> [1] lan_arp;
wan_c [1] -> [1] wan_arp;
lan_c [3] -> Discard;
wan_c [3] -> Discard;

// The security policy, one per side: [0] PROTECT (a selector of one of our outbound SAs
// covers the destination), [1] ESP addressed to us, [2] BYPASS (everything else).
lan_spd :: IPsecLookup(SAS $SAS, LOCAL $WAN_IP);
wan_spd :: IPsecLookup(SAS $SAS, LOCAL $WAN_IP);
lan_c [2] -> Strip(14) -> CheckIPHeader -> lan_spd;
wan_c [2] -> Strip(14) -> CheckIPHeader -> wan_spd;

// LAN -> tunnel: forward (TTL), fit the tunnel MTU (ICMP "fragmentation needed" for
// don't-fragment packets: path MTU discovery), encrypt, send to the peer's tunnel address
// (ESPEncap sets dst_ip to it).
lan_spd [0] -> lan_ttl :: DecIPTTL
            -> frag :: IPFragmenter($TUN_MTU)
            -> encap :: ESPEncap(SAS $SAS, LOCAL $WAN_IP)
            -> [0] wan_arp;
frag [1] -> ICMPError($LAN_IP, unreachable, needfrag) -> rt;
lan_ttl [1] -> ICMPError($LAN_IP, timeexceeded) -> rt;
lan_spd [1] -> Discard;               // ESP from the LAN side is not ours to decrypt

// Tunnel -> LAN: verify and decrypt (replay window, ICV, padding, selector), check the inner
// header, forward to the LAN host (ESPDecap sets dst_ip to the inner destination) or to
// this gateway's own LAN address.
wan_spd [1] -> decap :: ESPDecap(SAS $SAS, LOCAL $WAN_IP)
            -> CheckIPHeader
            -> inner :: IPClassifier(dst host $LAN_IP, -);
inner [1] -> wan_ttl :: DecIPTTL -> [0] lan_arp;
wan_ttl [1] -> ICMPError($LAN_IP, timeexceeded) -> rt;
wan_spd [0] -> Discard;               // plaintext for a protected network: policy violation

// Packets for the gateway itself: answer pings on both sides, drop the rest.
lan_spd [2] -> lan_local :: IPClassifier(dst host $LAN_IP and icmp type echo, -);
inner [0] -> lan_local;
lan_local [0] -> ICMPPingResponder -> rt;
lan_local [1] -> Discard;
wan_spd [2] -> wan_local :: IPClassifier(dst host $WAN_IP and icmp type echo, -);
wan_local [0] -> ICMPPingResponder -> GetIPAddress(16) -> [0] wan_arp;
wan_local [1] -> Discard;

// Packets the gateway makes (ICMP errors, ping replies): straight to a LAN host, or back
// through the tunnel to a host behind the peer.
rt :: IPClassifier(dst net $LAN_NET, -);
rt [0] -> GetIPAddress(16) -> [0] lan_arp;
rt [1] -> lan_spd;
