// The README's example of a configuration error (a misspelt class), tested.
FromDump(data/sample.pcap, STOP true)
  -> Countr
  -> Discard;
