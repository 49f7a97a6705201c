"""IPsec ESP (RFC 4303) tunnel mode for packet batches: SAs and batched crypto.

:mod:`.sa` holds security associations, their file format and the SA table; :mod:`.esp` the
batch encapsulation/decapsulation (and per-packet reference versions); :mod:`.crypto` the
batched AES-GCM / AES-CBC / HMAC-SHA1 primitives; :mod:`.kernels` the numba loops.
"""

from routebricks.ipsec.esp import (
    DECAP_DROP_REASONS,
    ENCAP_DROP_REASONS,
    decapsulate,
    decapsulate_reference,
    encapsulate,
    encapsulate_reference,
)
from routebricks.ipsec.sa import (
    ALG_CBC,
    ALG_GCM,
    ALGORITHMS,
    REPLAY_WINDOW,
    SEQ_MAX,
    SAFileError,
    SATable,
    SecurityAssociation,
    format_sa_file,
    load_sa_file,
    parse_sa_line,
    parse_sa_text,
)

__all__ = [
    "ALGORITHMS",
    "ALG_CBC",
    "ALG_GCM",
    "DECAP_DROP_REASONS",
    "ENCAP_DROP_REASONS",
    "REPLAY_WINDOW",
    "SEQ_MAX",
    "SAFileError",
    "SATable",
    "SecurityAssociation",
    "decapsulate",
    "decapsulate_reference",
    "encapsulate",
    "encapsulate_reference",
    "format_sa_file",
    "load_sa_file",
    "parse_sa_line",
    "parse_sa_text",
]
