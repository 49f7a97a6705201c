// A 4-port IPv4 router in the shape of Click's iprouter.click / fake-iprouter.click, on real
// interfaces: ARP (ARPResponder, ARPQuerier), header checks, a DIR-24-8 route lookup, TTL and
// checksum updates, fragmentation, ICMP errors (time exceeded, fragmentation needed, parameter
// problem, redirect) and ping replies for the router's own addresses.
//
//   routebricks testbed up examples/testbed.toml --prefix rb000001-
//   routebricks run examples/iprouter.click --netns rb000001-r -u /tmp/rb.sock
//   ip netns exec rb000001-a ping 10.0.2.2
//
// The defaults match examples/testbed.toml; change them with NAME=value on the command line
// (e.g. DEV0=veth0 IP0=192.168.1.1 NET0=192.168.1.0/24 MAC0=...). More routes can be added
// while it runs: routebricks handler write rt.add 10.9.0.0/16 10.0.1.2 1 -u /tmp/rb.sock

define(
    $DEV0 eth0, $IP0 10.0.0.1, $NET0 10.0.0.0/24, $BC0 10.0.0.255, $MAC0 02:00:00:00:00:01,
    $DEV1 eth1, $IP1 10.0.1.1, $NET1 10.0.1.0/24, $BC1 10.0.1.255, $MAC1 02:00:00:00:01:01,
    $DEV2 eth2, $IP2 10.0.2.1, $NET2 10.0.2.0/24, $BC2 10.0.2.255, $MAC2 02:00:00:00:02:01,
    $DEV3 eth3, $IP3 10.0.3.1, $NET3 10.0.3.0/24, $BC3 10.0.3.255, $MAC3 02:00:00:00:03:01,
    $MTU 1500,
    $METHOD V3    // receive rings: V3 batches (kn); V2 hands over each frame (lowest latency)
)

// One router interface. Output 0: checked IP packets that arrived here (to the lookup);
// output 1: ICMP errors about packets leaving here (back to the lookup); input 0: packets
// the lookup sends out of this interface.
elementclass RouterPort { $dev, $ip, $mac, $color |
    out :: ToDevice($dev);
    c :: Classifier(12/0806 20/0001,      // ARP requests
                    12/0806 20/0002,      // ARP replies
                    12/0800,              // IPv4
                    -);                   // anything else
    arpq :: ARPQuerier($ip, $mac);

    FromDevice($dev, METHOD $METHOD) -> c;
    c [0] -> ARPResponder($ip $mac) -> out;
    c [1] -> [1] arpq;
    c [2] -> Paint($color)
          -> Strip(14)
          -> CheckIPHeader(INTERFACES $IP0/24 $IP1/24 $IP2/24 $IP3/24)
          -> [0] output;
    c [3] -> Discard;

    input [0] -> DropBroadcasts
          -> cp :: PaintTee($color)
          -> gio :: IPGWOptions($ip)
          -> FixIPSrc($ip)
          -> dt :: DecIPTTL
          -> fr :: IPFragmenter($MTU)
          -> [0] arpq
          -> out;
    cp [1] -> ICMPError($ip, redirect, host) -> [1] output;
    gio [1] -> ICMPError($ip, parameterproblem) -> [1] output;
    dt [1] -> ICMPError($ip, timeexceeded) -> [1] output;
    fr [1] -> ICMPError($ip, unreachable, needfrag) -> [1] output;
}

rt :: DirectIPLookup($IP0/32 4, $IP1/32 4, $IP2/32 4, $IP3/32 4,
                     $BC0/32 4, $BC1/32 4, $BC2/32 4, $BC3/32 4,
                     $NET0 0, $NET1 1, $NET2 2, $NET3 3);

p0 :: RouterPort($DEV0, $IP0, $MAC0, 1);
p1 :: RouterPort($DEV1, $IP1, $MAC1, 2);
p2 :: RouterPort($DEV2, $IP2, $MAC2, 3);
p3 :: RouterPort($DEV3, $IP3, $MAC3, 4);

p0 [0] -> rt;  p1 [0] -> rt;  p2 [0] -> rt;  p3 [0] -> rt;
p0 [1] -> rt;  p1 [1] -> rt;  p2 [1] -> rt;  p3 [1] -> rt;
rt [0] -> p0;  rt [1] -> p1;  rt [2] -> p2;  rt [3] -> p3;

// Packets for the router itself: answer pings, drop the rest.
rt [4] -> ping :: ICMPPingResponder -> GetIPAddress(16) -> rt;
ping [1] -> Discard;
