// Minimal forwarding (the paper's "forwarding" workload, §5.1): every packet read from the
// bundled trace leaves on the output, unchanged, and is counted on the way.
//
//   routebricks run examples/forward.click
//   routebricks run examples/forward.click IN=other.pcap OUT=/tmp/out.pcap --kp 32
//
// File names are relative to the working directory, or else to this file's directory.

define($IN data/sample.pcap, $OUT forward-out.pcap)

FromDump($IN, STOP true)
    -> received :: Counter
    -> ToDump($OUT)
    -> sent :: Counter
    -> Discard;
